"""Apply a shop's events to the programme: catalogue, members, and the points ledger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from loyalty.consent import apply_profile_changes
from loyalty.enrolment import enrol_member, new_member_id
from loyalty.errors import MalformedPayloadError, UnknownCurrencyError
from loyalty.ledger.model import LedgerResult
from loyalty.ledger.service import Ledger
from loyalty.observability import logger, mask_email, metrics
from loyalty.offers.programme import after_order
from loyalty.offers.records import OfferQueue
from loyalty.offers.rules import OfferRules
from loyalty.ports.directory import Directory
from loyalty.ports.reviews import Reviews
from loyalty.programme.limits import beyond_limits
from loyalty.programme.orders import Order
from loyalty.shop.events import CustomerEvent, OrderPaidEvent, ProductEvent, RefundEvent, ShopEvent, Unused
from loyalty.shop.webhooks import QueuedWebhook, shop_event


class ShopEventApplier:
    def __init__(
        self,
        ledger: Ledger,
        directory: Directory,
        reviews: Reviews,
        guest_hold_days: int,
        offer_rules: OfferRules,
        offer_queue: OfferQueue,
        member_ids: Callable[[], str] = new_member_id,
        test_orders_earn: bool = False,
    ) -> None:
        self.ledger = ledger
        self.directory = directory
        self.reviews = reviews
        self.offer_rules = offer_rules
        self.offer_queue = offer_queue
        self.guest_hold = timedelta(days=guest_hold_days)
        self.member_ids = member_ids
        self.test_orders_earn = test_orders_earn  # a development store's test orders earn (never in production)
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
        return self._refund(event)

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
        return "member profile updated"

    def _order(self, event: OrderPaidEvent) -> str:
        order = self._with_categories(event.order)
        now = self.ledger.clock()
        problem = beyond_limits(self.ledger.rules, order, now)
        if problem is not None:  # before anyone is enrolled: nothing of it is applied until an operator looks
            self.directory.hold_for_review(order, problem, now, self._known_member(event))
            logger.warning("order held for review", shop=order.shop, order_id=order.order_id, reason=problem)
            metrics.add_metric(name="OrderHeldForReview", unit="Count", value=1)
            return f"order held for review: {problem}"
        if order.currency not in self.ledger.rules.currencies:  # refused before anyone is enrolled for it
            raise UnknownCurrencyError(
                f"order {order.order_id}: no earning rate for {order.currency}; the programme has "
                f"{', '.join(sorted(self.ledger.rules.currencies))} (the dead-letter queue keeps it to replay)"
            )
        member_id = self._find_member(event.shop, event.customer_id, event.email)
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
        result = self.ledger.accrue(member_id, order)
        self._review_soon(member_id)
        # asked again on a redelivery too (the sender sends each once): a crash before this line loses nothing
        now = self.ledger.clock()
        offers = after_order(
            self.offer_rules,
            result,
            self.ledger.summary(member_id, expiry=False),
            self.ledger.rules.local_date(now),
            now,
        )
        if offers:
            self.offer_queue.send(offers)
        return "order redelivered: nothing changed" if result.duplicate else "order accrued"

    def _refund(self, event: RefundEvent) -> str:
        if event.lines == {}:
            return "refund ignored: no merchandise lines"
        result = self.ledger.reverse(event.shop, event.order_id, event.refund_id, event.lines)
        if isinstance(result, LedgerResult):
            self._review_soon(result.entry.member_id)
            return "refund redelivered" if result.duplicate else "refund applied"
        return "refund kept until its order arrives"

    def _review_soon(self, member_id: str) -> None:
        """A purchase or a refund may change the member's segment: look at it on the next daily review.

        Not part of the ledger write: if this is lost, the regular review comes at most `review_days` later."""
        tomorrow = self.ledger.rules.local_date(self.ledger.clock()) + timedelta(days=1)
        self.reviews.schedule(member_id, tomorrow)

    def _known_member(self, event: OrderPaidEvent) -> str | None:
        """The order's customer's member, if they are one (looked up only: nothing is linked or enrolled)."""
        found = self.directory.member_for_customer(event.shop, event.customer_id) if event.customer_id else None
        return found or (self.ledger.member_for_email(event.email) if event.email else None)

    def _find_member(self, shop: str, customer_id: str | None, email: str | None) -> str | None:
        if customer_id:
            member_id = self.directory.member_for_customer(shop, customer_id)
            if member_id is not None:
                return member_id
        member_id = self.ledger.member_for_email(email) if email else None
        if member_id is not None and customer_id:
            self.directory.link_customer(shop, customer_id, member_id)
        return member_id

    def _enrol(self, shop: str, customer_id: str | None, email: str | None, profile: dict[str, Any]) -> str:
        member_id = enrol_member(self.ledger, self.directory, email, profile, self.member_ids)
        if customer_id:
            self.directory.link_customer(shop, customer_id, member_id)
        return member_id

    def _with_categories(self, order: Order) -> Order:
        product_ids = [line.product_id for line in order.lines if line.product_id]
        known = self.directory.categories_for(order.shop, product_ids)
        unknown = sorted(set(product_ids) - set(known))
        if unknown:
            logger.info("unknown products earn the base rate", shop=order.shop, product_ids=unknown)
        lines = tuple(
            line.model_copy(update={"categories": known.get(line.product_id or "", line.categories)})
            for line in order.lines
        )
        return order.model_copy(update={"lines": lines})
