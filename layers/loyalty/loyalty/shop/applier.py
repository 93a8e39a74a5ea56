"""Apply a shop's events to the programme: catalogue, members, and the points ledger."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty.consent import apply_profile_changes
from loyalty.enrolment import enrol_member, new_member_id
from loyalty.errors import MalformedPayloadError, ShopRefusedError, UnknownCurrencyError
from loyalty.ledger.decisions import order_key_of
from loyalty.ledger.model import LedgerResult
from loyalty.ledger.service import Ledger
from loyalty.ledger.state import EmailMove, PreparedAccrual
from loyalty.observability import logger, mask_email, metrics
from loyalty.offers.programme import after_order
from loyalty.offers.records import OfferQueue
from loyalty.offers.rules import OfferRules
from loyalty.ports.directory import Directory
from loyalty.ports.shops import RefundedLine, ShopRefunds
from loyalty.programme.limits import beyond_limits
from loyalty.programme.orders import Order, with_catalogue_categories
from loyalty.shop.events import (
    CustomerEvent,
    OrderPaidEvent,
    PrivacyEvent,
    ProductEvent,
    RefundEvent,
    ShopEvent,
    Unused,
)
from loyalty.shop.webhooks import QueuedWebhook, shop_event
from loyalty.shop.woocommerce import kept_after_refunds


class ShopEventApplier:
    def __init__(
        self,
        ledger: Ledger,
        directory: Directory,
        guest_hold_days: int,
        offer_rules: OfferRules,
        offer_queue: OfferQueue,
        member_ids: Callable[[], str] = new_member_id,
        test_orders_earn: bool = False,
        refunds: ShopRefunds | None = None,  # the lines of the refunds a WooCommerce order lists
        reads_refunds: Callable[[str], bool] = lambda shop: False,  # a shop it can read them from (API keys)
        erase_member: Callable[[str], Any] | None = None,  # a privacy request's erasure (loyalty.privacy)
        export_member: Callable[[str, str], str] | None = None,  # and data export: (member, name) -> a link
    ) -> None:
        self.ledger = ledger
        self.directory = directory
        self.offer_rules = offer_rules
        self.offer_queue = offer_queue
        self.guest_hold = timedelta(days=guest_hold_days)
        self.member_ids = member_ids
        self.test_orders_earn = test_orders_earn  # a development store's test orders earn (never in production)
        self.refunds, self.reads_refunds = refunds, reads_refunds
        self.erase_member, self.export_member = erase_member, export_member
        self.apply_event: Callable[..., str] = self.apply  # wiring makes it idempotent per dedup key

    def deliver(self, webhook: QueuedWebhook) -> str:
        """A queued delivery turned into our event and applied; a body that cannot be mapped raises (the queue
        retries it, then keeps it in its dead-letter queue, intact, to be replayed once the mapping is fixed)."""
        try:
            event = shop_event(webhook, test_orders_earn=self.test_orders_earn)
        except MalformedPayloadError as error:  # the message names fields, never their values
            logger.warning("webhook body not mapped", platform=webhook.platform, topic=webhook.topic, error=str(error))
            metrics.add_metric(name="WebhookNotMapped", unit="Count", value=1)
            raise
        if event is None:
            logger.info("webhook ignored", platform=webhook.platform, topic=webhook.topic)
            metrics.add_metric(name="WebhookIgnored", unit="Count", value=1)
            return "ignored"
        if isinstance(event, Unused):
            logger.info(event.reason, platform=webhook.platform, topic=webhook.topic)
            metrics.add_metric(name=event.metric, unit="Count", value=1)
            return event.reason
        outcome = self.apply_event(event=event)
        logger.info(outcome, kind=event.kind, dedup_key=event.dedup_key)
        metrics.add_metric(name="ShopEventApplied", unit="Count", value=1)
        return outcome

    def apply(self, event: ShopEvent) -> str:
        """Apply one event; returns a short outcome for the log."""
        if isinstance(event, ProductEvent):
            saved = self.directory.save_product(
                event.shop, event.product_id, event.title, event.categories, event.occurred_at
            )
            return "product saved" if saved else "product ignored: a newer version is stored"
        if isinstance(event, CustomerEvent):
            return self._customer(event)
        if isinstance(event, OrderPaidEvent):
            return self._order(event)
        if isinstance(event, PrivacyEvent):
            return self._privacy(event)
        return self._refund(event)

    def _privacy(self, event: PrivacyEvent) -> str:
        """A shop's privacy request: the customer's member's data exported for the merchant (the export bucket,
        named after the request), the member erased, or, for a shop that left, each member who is a customer of
        that shop only erased and the shop's links of the others dropped."""
        if self.erase_member is None or self.export_member is None:
            raise RuntimeError("privacy requests need the privacy use case")
        metrics.add_metric(name="ShopPrivacyRequests", unit="Count", value=1)
        if event.request == "shop_erase":
            erased = kept = 0
            for customer_id, linked in self.directory.shop_customers(event.shop):
                links = self.directory.customer_links(linked)  # none kept (an older member): not known to be only here
                if links and all(link.startswith(f"{event.shop}#") for link in links):
                    self.erase_member(linked)
                    erased += 1
                else:  # a customer of another shop too: only this shop's link goes
                    self.directory.unlink_customer(event.shop, customer_id, linked)
                    kept += 1
            return f"shop's customers erased: {erased} members, {kept} kept for their other shops"
        # the shop's customer's member, or the member with the e-mail: found, not linked (a request links nothing)
        member_id = self._linked_member(event.shop, event.customer_id) or (
            self.ledger.member_for_email(event.email) if event.email else None
        )
        if member_id is None:
            return "privacy request: the customer is not a member"
        if event.request == "erase":
            self.erase_member(member_id)
            return "member erased"
        name = f"{event.shop.replace(':', '-')}-data-request-{event.request_id or event.dedup_key}"
        self.export_member(member_id, name)
        logger.info("data request answered: the export is in the export bucket", member_id=member_id, export=name)
        return "member's data exported for the merchant"

    def _customer(self, event: CustomerEvent) -> str:
        profile = {
            "first_name": event.first_name,
            "last_name": event.last_name,
            "phone": event.phone,
            "locale": event.locale,
            "email_consent": event.email_consent,
            "sms_consent": event.sms_consent,
        }
        known = {name: value for name, value in profile.items() if value is not None}
        member_id = self._find_member(event.shop, event.customer_id, event.email)
        if member_id is None:
            if not event.may_enrol:
                return "customer ignored: not a member"
            if not event.email:
                return "customer ignored: no e-mail to enrol with"
            self._enrol(event.shop, event.customer_id, event.email, known)
            return "member enrolled"
        apply_profile_changes(self.directory, member_id, known, event.occurred_at)
        return "member profile updated" + self._new_email(member_id, event.email, event.occurred_at)

    def _new_email(self, member_id: str, email: str | None, at: datetime) -> str:
        """The customer's e-mail, if it changed, as the member's (one another member holds waits, parked)."""
        if not email:
            return ""
        moved = self.ledger.change_email(member_id, email, at)
        if moved is EmailMove.CHANGED:
            metrics.add_metric(name="MemberEmailChanged", unit="Count", value=1)
            return "; e-mail changed"
        if moved is EmailMove.TAKEN:
            logger.warning("a customer's new e-mail is another member's: parked", member_id=member_id)
            metrics.add_metric(name="MemberEmailParked", unit="Count", value=1)
            return "; new e-mail parked: another member has it"
        return ""

    def _order(self, event: OrderPaidEvent) -> str:
        exact = bool(event.refunds) and self.refunds is not None and self.reads_refunds(event.shop)
        outcome = self._accrue(event, self._bought(event, exact))
        if exact and not outcome.startswith("guest order ignored"):  # held orders' refunds wait for them
            outcome += self._listed_refunds(event)
        return outcome

    @staticmethod
    def _bought(event: OrderPaidEvent, exact: bool) -> Order:
        """The order to accrue: as bought, its refunds reversed line by line after; or, for a shop whose refund lines
        cannot be read, each line less the refunds' whole total (never earned on refunded money)."""
        if not event.refunds or exact:
            return event.order
        return kept_after_refunds(event.order, sum((r.total for r in event.refunds), Decimal(0)))

    def _listed_refunds(self, event: OrderPaidEvent) -> str:
        """Each refund the order lists, reversed by what the shop says it took back of each line (once: keyed by
        the refund; kept until its order arrives if the order is held). A shop that cannot answer now raises: the
        delivery is retried (nothing is done twice). A refund the shop refuses to give is logged and left."""
        assert self.refunds is not None
        applied = 0
        for refund in event.refunds:
            try:
                lines = self.refunds.refund_lines(event.shop, event.order.order_id, refund.refund_id)
            except ShopRefusedError as refused:
                logger.warning("a refund's lines could not be read", shop=event.shop, reason=str(refused)[:200])
                metrics.add_metric(name="RefundLinesUnreadable", unit="Count", value=1)
                continue
            units = _units_refunded(event.order, lines)
            if not units:  # the order's amount refunded without lines: nothing bought is taken back
                continue
            result = self.ledger.reverse(event.shop, event.order.order_id, refund.refund_id, units, self._tomorrow())
            applied += isinstance(result, LedgerResult) and not result.duplicate
        return f"; {applied} refund(s) applied" if applied else ""

    def _accrue(self, event: OrderPaidEvent, bought: Order) -> str:
        prepared: PreparedAccrual | None = None
        linked = self._linked_member(event.shop, event.customer_id)
        if linked is None:
            order = self._with_categories(bought)
        else:  # the usual case: one read brings the member, the order, their next review and the catalogue's
            # categories of the products (nothing is written before the order is within bounds)
            prepared = self.ledger.prepare_accrual(linked, bought)
            order = prepared.order
            self._log_unknown_products(order.shop, prepared.unknown_products)
        now = self.ledger.clock()
        problem = beyond_limits(self.ledger.rules, order, now)
        if problem is not None:  # before anyone is enrolled: nothing of it is applied until an operator looks
            known = linked or (self.ledger.member_for_email(event.email) if event.email else None)
            self.directory.hold_for_review(order, problem, now, known)
            logger.warning("order held for review", shop=order.shop, order_id=order.order_id, reason=problem)
            metrics.add_metric(name="OrderHeldForReview", unit="Count", value=1)
            return f"order held for review: {problem}"
        if order.currency not in self.ledger.rules.currencies:  # refused before anyone is enrolled for it
            raise UnknownCurrencyError(
                f"order {order.order_id}: no earning rate for {order.currency}; the programme has "
                f"{', '.join(sorted(self.ledger.rules.currencies))} (the dead-letter queue keeps it to replay)"
            )
        if prepared is None:
            member_id = self._member_for_email(event.shop, event.customer_id, event.email)
            if member_id is None:
                if event.customer_id:
                    profile = {"first_name": event.first_name} if event.first_name else {}
                    member_id = self._enrol(event.shop, event.customer_id, event.email, profile)
                elif event.email:
                    until = self.ledger.clock() + self.guest_hold
                    self.directory.hold_guest_order(event.email, order, until)
                    logger.info("guest order held", order_id=order.order_id, email=mask_email(event.email))
                    return "guest order held for claiming"
                else:
                    return "guest order ignored: no e-mail to claim it with"
            prepared = self.ledger.prepare_accrual(member_id, order, catalogue=False)
        # a purchase may change the member's segment: their next review is brought forward to tomorrow, in the
        # accrual's write (a redelivery finds the accrual, and the review, done)
        accrual = self.ledger.accrue_prepared(prepared, review_on=self._tomorrow())
        self._codes_used(prepared, order)
        # asked again on a redelivery too (the sender sends each once): a crash before this line loses nothing
        now = self.ledger.clock()
        offers = after_order(self.offer_rules, accrual.result, accrual.summary, self.ledger.rules.local_date(now), now)
        if offers:
            self.offer_queue.send(offers)
        return "order redelivered: nothing changed" if accrual.result.duplicate else "order accrued"

    def _codes_used(self, prepared: PreparedAccrual, order: Order) -> None:
        """The programme's codes the order used: their redemptions are used, with the order (again on a
        redelivery: nothing changes)."""
        order_key = order_key_of(order.shop, order.order_id)
        for code, (member_id, redemption_id) in sorted(prepared.state.redemptions.items()):
            redemption = self.ledger.use_redemption(member_id, redemption_id, order_key)
            if redemption.order_key != order_key:  # used by another order, or ended (cancelled, expired) before
                logger.warning("a reward code used after it ended", status=redemption.status.value, code=code[:4])
                metrics.add_metric(name="RewardCodeUsedAfterEnd", unit="Count", value=1)

    def _refund(self, event: RefundEvent) -> str:
        if event.lines == {}:
            return "refund ignored: no merchandise lines"
        # a refund may change the member's segment too: their next review is brought forward in the reversal's write
        result = self.ledger.reverse(event.shop, event.order_id, event.refund_id, event.lines, self._tomorrow())
        if isinstance(result, LedgerResult):
            return "refund redelivered" if result.duplicate else "refund applied"
        return "refund kept until its order arrives"

    def _tomorrow(self) -> date:
        return self.ledger.rules.local_date(self.ledger.clock()) + timedelta(days=1)

    def _find_member(self, shop: str, customer_id: str | None, email: str | None) -> str | None:
        return self._linked_member(shop, customer_id) or self._member_for_email(shop, customer_id, email)

    def _linked_member(self, shop: str, customer_id: str | None) -> str | None:
        """The member the shop's customer is linked to, if any."""
        return self.directory.member_for_customer(shop, customer_id) if customer_id else None

    def _member_for_email(self, shop: str, customer_id: str | None, email: str | None) -> str | None:
        """The member enrolled with the e-mail, if any, linked to the shop's customer from now on."""
        member_id = self.ledger.member_for_email(email) if email else None
        if member_id is not None and customer_id:
            self.directory.link_customer(shop, customer_id, member_id)
        return member_id

    def _enrol(self, shop: str, customer_id: str | None, email: str | None, profile: dict[str, Any]) -> str:
        member_id = enrol_member(self.ledger, self.directory, email, profile, self.member_ids, via=shop)
        if customer_id:
            self.directory.link_customer(shop, customer_id, member_id)
        return member_id

    def _with_categories(self, order: Order) -> Order:
        product_ids = [line.product_id for line in order.lines if line.product_id]
        known = self.directory.categories_for(order.shop, product_ids)
        self._log_unknown_products(order.shop, tuple(sorted(set(product_ids) - set(known))))
        return with_catalogue_categories(order, known)

    @staticmethod
    def _log_unknown_products(shop: str, product_ids: tuple[str, ...]) -> None:
        if product_ids:
            logger.info("unknown products earn the base rate", shop=shop, product_ids=list(product_ids))


def _units_refunded(order: Order, lines: dict[str, RefundedLine]) -> dict[str, int]:
    """Units per order line: as refunded, or for an amount refunded on a line without units, as many units as the
    amount could have paid for (rounded up, at most the line's): never earning on refunded money."""
    units: dict[str, int] = {}
    bought = {line.line_id: line for line in order.lines}
    for line_id, refunded in lines.items():
        count = refunded.units
        line = bought.get(line_id)
        if not count and refunded.amount > 0 and line is not None and line.amount > 0:
            count = min(line.quantity, math.ceil(refunded.amount * line.quantity / line.amount))
        if count > 0:
            units[line_id] = count
    return units
