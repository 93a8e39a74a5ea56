"""The points ledger on DynamoDB: every operation is one atomic, idempotent transaction.

See loyalty/ledger.py for the invariants and the lot stream. Each write is a TransactWriteItems whose
first item is the immutable entry, put with ``attribute_not_exists``; the entry's key derives from the
source event, so a redelivery fails that condition and returns the original entry. Counters change by
``ADD`` or under a condition on the value read (optimistic concurrency), never by writing back a balance
read earlier; a lost race is retried with jittered backoff.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from loyalty.adapters.dynamodb_models import (
    BIRTHDAY_SK,
    EMAIL_SK,
    ENTRY_PREFIX,
    MEMBER_SK,
    ORDER_SK,
    REVIEW_SK,
    BirthdayItem,
    EmailItem,
    EntryItem,
    LoyaltyItem,
    MemberItem,
    OrderItem,
    ReviewItem,
    email_pk,
    member_pk,
    normalise_email,
    order_pk,
    review_due,
    table_connection,
)
from loyalty.clock import now as clock_now
from loyalty.earning import Earning, GrantedOffer, earn_for_order
from loyalty.errors import (
    ConcurrentUpdateError,
    InsufficientPointsError,
    InvalidAmountError,
    NotDueError,
    RefundExceedsOrderError,
    UnknownMemberError,
    UnknownOrderError,
)
from loyalty.ledger import (
    Entry,
    EntryKind,
    HistoryPage,
    LedgerResult,
    Lot,
    MemberProfile,
    MemberSummary,
    ParkedRefund,
    expirable,
    month_key,
    points_kept,
)
from loyalty.money import floor_points
from loyalty.offer_requests import Offer, OfferKind
from loyalty.orders import Order
from loyalty.program import ProgramRules
from loyalty.segments import assign_segment, purchases_from, segment_window_start
from loyalty.tiers import TierOverride, assess, assessment_due, replay_tier, tier_status, upgrade

T = TypeVar("T")

MAX_ATTEMPTS = 40
_CONDITION_FAILED = "ConditionalCheckFailed"
_CONFLICT = "TransactionConflict"
BONUS_KINDS = ("signup", "birthday", "referral", "review")


class _Retry(Exception):
    """Internal: a concurrent writer changed what this attempt read; try again."""


def order_key_of(shop: str, order_id: str) -> str:
    return f"{shop}#{order_id}"


class Ledger:
    """The points ledger of one programme. Clients are created once and reused."""

    def __init__(self, rules: ProgramRules, clock: Callable[[], datetime] = clock_now) -> None:
        self.rules = rules
        self.clock = clock
        self._connection = table_connection()

    # ---------------------------------------------------------------- members

    def enrol(self, member_id: str, email: str | None = None, **profile: Any) -> str:
        """Enrol a member and return their id: an existing member's when the e-mail is already enrolled.

        ``profile`` takes the member's first_name, last_name, phone, locale, email_consent, sms_consent.
        The member and their e-mail's guard item are written in one transaction, so two shops enrolling
        the same person at once end with one member.
        """
        return self._retrying(lambda: self._enrol_once(member_id, email, profile))

    def _enrol_once(self, member_id: str, email: str | None, profile: dict[str, Any]) -> str:
        if email:
            guard = _get(EmailItem, email_pk(email), EMAIL_SK)
            if guard is not None:
                return guard.member_id
        now = self.clock()
        member = MemberItem(
            member_pk(member_id),
            MEMBER_SK,
            member_id=member_id,
            email=normalise_email(email) if email else None,
            enrolled_at=now,
            last_activity=now,
            profile_updated_at=now,
            qualifying={},
            email_consent_at=now if profile.get("email_consent") is not None else None,
            sms_consent_at=now if profile.get("sms_consent") is not None else None,
            **profile,
        )
        try:
            first_review = self.rules.local_date(now) + timedelta(days=1)
            review_pk, review_sk = review_due(member_id, first_review)
            with TransactWrite(connection=self._connection) as transaction:
                transaction.save(member, condition=MemberItem.pk.does_not_exist())
                transaction.save(  # every member is in the review cycle (tier and segment) from the start
                    ReviewItem(
                        member_pk(member_id),
                        REVIEW_SK,
                        member_id=member_id,
                        review_on=first_review.isoformat(),
                        due_pk=review_pk,
                        due_sk=review_sk,
                    )
                )
                if email:
                    guard_item = EmailItem(email_pk(email), EMAIL_SK, member_id=member_id)
                    transaction.save(guard_item, condition=EmailItem.pk.does_not_exist())
        except TransactWriteError as error:
            reasons = [reason.code if reason else None for reason in (error.cancellation_reasons or [])]
            if reasons and reasons[0] == _CONDITION_FAILED:
                return member_id  # already enrolled
            if reasons:
                raise _Retry from error  # the e-mail was enrolled meanwhile: find its member
            raise
        return member_id

    def member_for_email(self, email: str) -> str | None:
        guard = _get(EmailItem, email_pk(email), EMAIL_SK)
        return guard.member_id if guard is not None else None

    def erase_personal_data(self, member_id: str) -> None:
        """GDPR erasure: the member's personal data goes, the amounts stay (entries hold none)."""
        member = _get(MemberItem, member_pk(member_id), MEMBER_SK)
        if member is None:
            raise UnknownMemberError(member_id)
        with TransactWrite(connection=self._connection) as transaction:
            if member.email:
                transaction.delete(EmailItem(email_pk(member.email), EMAIL_SK))
            transaction.delete(BirthdayItem(member_pk(member_id), BIRTHDAY_SK))
            personal = [
                MemberItem.email,
                MemberItem.first_name,
                MemberItem.last_name,
                MemberItem.phone,
                MemberItem.birthdate,
            ]
            transaction.update(
                MemberItem(member_pk(member_id), MEMBER_SK),
                [attribute.remove() for attribute in personal],
                condition=MemberItem.pk.exists(),
                add_version_condition=False,
            )

    # ---------------------------------------------------------------- orders

    def accrue(self, member_id: str, order: Order) -> LedgerResult:
        """Earn pending points for a paid order, then apply any refund that arrived before it."""
        key = order_key_of(order.shop, order.order_id)
        result, parked = self._retrying(lambda: self._accrue_once(member_id, order, key))
        for refund_id, lines in parked.items():  # the transaction proved these are all that were parked
            quantities = {line_id: int(quantity) for line_id, quantity in lines.items()} or None
            self.reverse(order.shop, order.order_id, refund_id, quantities)
        return result

    def _accrue_once(self, member_id: str, order: Order, key: str) -> tuple[LedgerResult, dict[str, Any]]:
        member, existing = self._get_member_and_order(member_id, key)
        parked = existing.parked.as_dict() if existing is not None and existing.parked is not None else {}
        if existing is not None and existing.member_id is not None:
            return self._original(existing.member_id, f"accrual#{key}"), parked
        now = self.clock()
        today = self.rules.local_date(now)
        earning_tier = self._tier_in_force(member, today)
        earned_on = self.rules.local_date(order.placed_at)
        granted = _offers_for(member, earned_on)
        earning = earn_for_order(self.rules, order, earning_tier, tuple(offer for _, offer in granted))
        line_points = {line.line_id: line.points for line in earning.lines}
        lines = {
            line.line_id: {"q": line.quantity, "ql": line.quantity, "p": line_points.get(line.line_id, 0)}
            for line in order.lines
        }
        for state in lines.values():
            state["pl"] = state["p"]
        release_on = self.rules.release_date(earned_on)
        qualifying_month = month_key(earned_on)
        buckets = _buckets(member)
        buckets[qualifying_month] = buckets.get(qualifying_month, 0) + earning.qualifying_points
        reached = upgrade(self.rules, member.tier, buckets, today)
        source_key = f"accrual#{key}"
        campaigns = f", campaigns {', '.join(earning.campaigns)}" if earning.campaigns else ""
        campaigns += f", offers {', '.join(earning.offers)}" if earning.offers else ""
        upgraded = f"; reached {reached[0].display_name}" if reached else ""
        entry = self._entry_item(
            member_id,
            source_key,
            EntryKind.ACCRUAL,
            now,
            pending=earning.points,
            lifetime=earning.points,
            qualifying=earning.qualifying_points,
            reason=(
                f"Order {order.order_id} ({order.shop}): {earning.points} points pending until {release_on}, "
                f"tier {earning_tier}{campaigns}{upgraded}"
            ),
            source=order.shop,
            order_key=key,
            campaigns=list(earning.campaigns) or None,
            lines={line_id: state["p"] for line_id, state in lines.items()},
            month=qualifying_month,
            tier=earning_tier,
            tier_reached=reached[0].name if reached else None,
            tier_period_end=reached[1].isoformat() if reached else None,
            placed_on=earned_on.isoformat(),
            base_points=_base_points(self.rules, order, earning),
            discounted=bool(order.discount_codes),
            categories=sorted({c for line in order.lines for c in line.categories}) or None,
            offers=list(earning.offers) or None,
        )
        order_item = OrderItem(order_pk(key), ORDER_SK)
        parked_seen = existing.parked_count if existing is not None else 0
        order_actions: list[Action] = [
            OrderItem.type.set(OrderItem),  # the update may create the item: it needs its discriminator
            OrderItem.member_id.set(member_id),
            OrderItem.status.set("pending"),
            OrderItem.earned.set(earning.points),
            OrderItem.left.set(earning.points),
            OrderItem.qualifying_earned.set(earning.qualifying_points),
            OrderItem.qualifying_left.set(earning.qualifying_points),
            OrderItem.qualifying_month.set(qualifying_month),
            OrderItem.earned_on.set(earned_on.isoformat()),
            OrderItem.lines.set(lines),
            OrderItem.due_pk.set(f"RELEASE#{release_on.isoformat()}"),
            OrderItem.due_sk.set(order_pk(key)),
        ]
        order_condition = OrderItem.member_id.does_not_exist() & (
            OrderItem.parked_count.does_not_exist() | (OrderItem.parked_count == parked_seen)
        )
        member_actions = [
            MemberItem.pending.add(earning.points),
            MemberItem.lifetime.add(earning.points),
            MemberItem.qualifying[qualifying_month].set(
                (MemberItem.qualifying[qualifying_month] | 0) + earning.qualifying_points
            ),
            MemberItem.qualifying_version.add(1),
            MemberItem.last_activity.set(now),
        ]
        for key, offer in granted:  # a bonus offer pays once: on the first order within its validity
            if offer.bonus_points is not None and offer.code in earning.offers:
                member_actions.append(MemberItem.offers[key]["used"].set(key_of_order(order)))
        if reached:
            member_actions += [
                MemberItem.tier.set(reached[0].name),
                MemberItem.tier_period_end.set(reached[1].isoformat()),
            ]
        reasons = self._commit(
            entry,
            [
                (order_item, order_actions, order_condition),
                (MemberItem(member_pk(member_id), MEMBER_SK), member_actions, _unchanged_qualifying(member)),
            ],
        )
        if reasons is None:
            return LedgerResult(entry=_entry_from_item(entry)), parked
        if reasons[0] == _CONDITION_FAILED:
            return self._original(member_id, source_key), parked
        raise _Retry  # the order (a refund was parked) or the member's qualifying points changed under us

    def reverse(
        self, shop: str, order_id: str, refund_id: str, lines: Mapping[str, int] | None = None
    ) -> LedgerResult | ParkedRefund:
        """Reverse what an order earned for a refund: ``lines`` maps line id to refunded quantity (None: all).

        A refund for an order not yet in the ledger is parked on the order and applied when it is earned.
        """
        if lines is not None:
            for line_id, quantity in lines.items():
                if not isinstance(quantity, int) or quantity <= 0:
                    raise InvalidAmountError(f"refund quantity for line {line_id} must be a positive integer")
        key = order_key_of(shop, order_id)
        return self._retrying(lambda: self._reverse_once(key, refund_id, lines))

    def _reverse_once(self, key: str, refund_id: str, lines: Mapping[str, int] | None) -> LedgerResult | ParkedRefund:
        order = _get(OrderItem, order_pk(key), ORDER_SK)
        if order is None or order.member_id is None:
            return self._park_refund(key, refund_id, lines, order)
        member_id = order.member_id
        source_key = f"reversal#{key}#{refund_id}"
        if refund_id in (order.refunds or set()):
            return self._original(member_id, source_key)
        state: dict[str, dict[str, int]] = {
            k: {f: int(v) for f, v in s.items()} for k, s in order.lines.as_dict().items()
        }
        wanted = dict(lines) if lines is not None else {k: s["ql"] for k, s in state.items() if s["ql"] > 0}
        if not wanted:
            raise RefundExceedsOrderError(f"order {key} has nothing left to refund")
        reversed_lines: dict[str, int] = {}
        order_actions: list[Action] = []
        order_condition: Condition = OrderItem.status == order.status
        for line_id, quantity in wanted.items():
            if line_id not in state:
                raise UnknownOrderError(f"order {key} has no line {line_id}")
            line = state[line_id]
            if quantity > line["ql"]:
                raise RefundExceedsOrderError(
                    f"refund {refund_id} asks for {quantity} of line {line_id} of order {key}; {line['ql']} left"
                )
            quantity_left = line["ql"] - quantity
            kept = points_kept(line["p"], line["q"], quantity_left)
            reversed_lines[line_id] = line["pl"] - kept
            order_actions += [
                OrderItem.lines[line_id]["ql"].set(quantity_left),
                OrderItem.lines[line_id]["pl"].set(kept),
            ]
            order_condition &= OrderItem.lines[line_id]["ql"] == line["ql"]
        points = sum(reversed_lines.values())
        left = int(order.left or 0) - points
        earned = int(order.earned or 0)
        qualifying_kept = points_kept(int(order.qualifying_earned or 0), earned, left)
        qualifying = int(order.qualifying_left or 0) - qualifying_kept
        order_actions += [
            OrderItem.left.set(left),
            OrderItem.qualifying_left.set(qualifying_kept),
            OrderItem.refunds.add({refund_id}),
        ]
        now = self.clock()
        month = order.qualifying_month or month_key(self.rules.local_date(now))
        member = _get(MemberItem, member_pk(member_id), MEMBER_SK)
        if member is None:
            raise UnknownMemberError(member_id)
        member_actions: list[Action] = [
            MemberItem.lifetime.add(-points),
            MemberItem.qualifying[month].set((MemberItem.qualifying[month] | 0) - qualifying),
            MemberItem.qualifying_version.add(1),
            MemberItem.last_activity.set(now),
        ]
        member_condition: Condition = _unchanged_qualifying(member)
        take = unrecovered = 0
        if order.status == "released":
            take = min(points, int(member.available))
            unrecovered = points - take
            member_actions += [MemberItem.available.add(-take), MemberItem.consumed.add(take)]
            member_condition &= MemberItem.available >= take
            reason = f"Refund {refund_id} of order {key}: {take} available points reversed"
            if unrecovered:
                reason += f" ({unrecovered} already spent, not recovered)"
        else:
            member_actions.append(MemberItem.pending.add(-points))
            reason = f"Refund {refund_id} of order {key}: {points} pending points cancelled"
            if left == 0:
                order_actions += [OrderItem.status.set("cancelled"), OrderItem.due_pk.remove()]
        entry = self._entry_item(
            member_id,
            source_key,
            EntryKind.REVERSAL,
            now,
            points=-take,
            pending=-points if order.status != "released" else 0,
            lifetime=-points,
            qualifying=-qualifying,
            reason=reason,
            source=key.split("#", 1)[0],
            order_key=key,
            lines=reversed_lines,
            unrecovered=unrecovered,
            month=month,
        )
        reasons = self._commit(
            entry,
            [
                (OrderItem(order_pk(key), ORDER_SK), order_actions, order_condition),
                (MemberItem(member_pk(member_id), MEMBER_SK), member_actions, member_condition),
            ],
        )
        if reasons is None:
            return LedgerResult(entry=_entry_from_item(entry))
        if reasons[0] == _CONDITION_FAILED:
            return self._original(member_id, source_key)
        raise _Retry

    def _park_refund(
        self, key: str, refund_id: str, lines: Mapping[str, int] | None, order: OrderItem | None
    ) -> ParkedRefund:
        if order is not None and order.parked is not None and refund_id in order.parked.as_dict():
            return ParkedRefund(order_key=key, refund_id=refund_id, duplicate=True)
        item = OrderItem(order_pk(key), ORDER_SK)
        actions: list[Action] = [OrderItem.type.set(OrderItem), OrderItem.parked_count.add(1)]
        if order is None or order.parked is None:
            actions.append(OrderItem.parked.set({refund_id: dict(lines or {})}))
            condition = OrderItem.pk.does_not_exist()
        else:
            actions.append(OrderItem.parked[refund_id].set(dict(lines or {})))
            condition = OrderItem.member_id.does_not_exist() & (OrderItem.parked_count == order.parked_count)
        try:
            item.update(actions=actions, condition=condition)
        except UpdateError as error:
            if _is_condition_failure(error):
                raise _Retry from error  # the order arrived or another refund was parked meanwhile
            raise
        return ParkedRefund(order_key=key, refund_id=refund_id)

    def release(self, shop: str, order_id: str) -> LedgerResult | None:
        """Make an order's pending points available (a new lot). None if nothing was pending."""
        key = order_key_of(shop, order_id)
        return self._retrying(lambda: self._release_once(key))

    def _release_once(self, key: str) -> LedgerResult | None:
        order = _get(OrderItem, order_pk(key), ORDER_SK)
        if order is None or order.member_id is None:
            raise UnknownOrderError(f"order {key} is not in the ledger")
        member_id = order.member_id
        source_key = f"release#{key}"
        if order.status == "released":
            return self._original(member_id, source_key)
        if order.status != "pending":
            return None
        member = _get(MemberItem, member_pk(member_id), MEMBER_SK)
        if member is None:
            raise UnknownMemberError(member_id)
        points = int(order.left or 0)
        now = self.clock()
        earned_on = date.fromisoformat(order.earned_on) if order.earned_on else self.rules.local_date(now)
        entry, member_actions, member_condition = self._new_lot(
            member,
            source_key,
            EntryKind.RELEASE,
            now,
            points,
            earned_on,
            reason=f"Order {key}: return window passed, {points} points available",
            source=key.split("#", 1)[0],
            order_key=key,
        )
        entry.pending = -points
        member_actions.append(MemberItem.pending.add(-points))
        reasons = self._commit(
            entry,
            [
                (
                    OrderItem(order_pk(key), ORDER_SK),
                    [OrderItem.status.set("released"), OrderItem.due_pk.remove()],
                    (OrderItem.status == "pending") & (OrderItem.left == points),
                ),
                (MemberItem(member_pk(member_id), MEMBER_SK), member_actions, member_condition),
            ],
        )
        if reasons is None:
            return LedgerResult(entry=_entry_from_item(entry))
        if reasons[0] == _CONDITION_FAILED:
            return self._original(member_id, source_key)
        raise _Retry

    def release_due(self, on: date) -> int:
        """Release every order whose return window ended on or before ``on`` and is due that day."""
        released = 0
        for item in LoyaltyItem.due.query(f"RELEASE#{on.isoformat()}"):
            shop, order_id = item.pk.removeprefix("ORDER#").split("#", 1)
            if self.release(shop, order_id) is not None:
                released += 1
        return released

    # ---------------------------------------------------------------- points outside orders

    def redeem(self, member_id: str, points: int, redemption_id: str, reason: str) -> LedgerResult:
        """Spend available points, oldest first. Beyond the balance: InsufficientPointsError, nothing written."""
        _require_positive(points)
        return self._retrying(
            lambda: self._consume(member_id, points, f"redemption#{redemption_id}", EntryKind.REDEMPTION, reason)
        )

    def adjust(self, member_id: str, points: int, actor: str, reason: str, adjustment_id: str) -> LedgerResult:
        """Goodwill credit (positive) or deduction (negative, never below zero) by a named actor."""
        if not isinstance(points, int) or points == 0:
            raise InvalidAmountError("an adjustment must be a non-zero integer number of points")
        if not actor or not reason:
            raise InvalidAmountError("an adjustment needs the actor who made it and a reason")
        source_key = f"adjustment#{adjustment_id}"
        text = f"Goodwill by {actor}: {reason}"
        if points < 0:
            return self._retrying(
                lambda: self._consume(member_id, -points, source_key, EntryKind.ADJUSTMENT, text, actor=actor)
            )
        return self._retrying(
            lambda: self._credit(member_id, points, source_key, EntryKind.ADJUSTMENT, text, actor=actor)
        )

    def bonus(self, member_id: str, kind: str, source_id: str, points: int | None = None) -> LedgerResult:
        """Bonus for an action (signup, birthday, referral, review); by default the programme's amount."""
        if kind not in BONUS_KINDS:
            raise InvalidAmountError(f"unknown bonus kind {kind!r}; expected one of {', '.join(BONUS_KINDS)}")
        amount = int(getattr(self.rules.bonuses, kind)) if points is None else points
        _require_positive(amount)
        return self._retrying(
            lambda: self._credit(member_id, amount, f"bonus#{kind}#{source_id}", EntryKind.BONUS, f"{kind} bonus")
        )

    def expire(self, member_id: str, lot_source_key: str) -> LedgerResult | None:
        """Expire what is left of a due lot (an explicit entry). None if nothing was left to expire."""
        return self._retrying(lambda: self._expire_once(member_id, lot_source_key, None))

    def expire_lot(self, lot: object) -> LedgerResult | None:
        """Expire a due lot as the due index gave it (lots are immutable, so only the member is read)."""
        if not isinstance(lot, EntryItem):
            raise UnknownOrderError(f"not a lot: {type(lot).__name__}")
        return self._retrying(lambda: self._expire_once(lot.member_id, lot.source_key, lot))

    def _expire_once(self, member_id: str, lot_source_key: str, lot: EntryItem | None) -> LedgerResult | None:
        pk = member_pk(member_id)
        if lot is None:
            items = {item.sk: item for item in _batch_get([(pk, MEMBER_SK), (pk, ENTRY_PREFIX + lot_source_key)])}
            member, found = items.get(MEMBER_SK), items.get(ENTRY_PREFIX + lot_source_key)
            lot = found if isinstance(found, EntryItem) else None
        else:
            member = _get(MemberItem, pk, MEMBER_SK)
        if not isinstance(member, MemberItem):
            raise UnknownMemberError(member_id)
        if lot is None or lot.lot_end is None or lot.expires_on is None:
            raise UnknownOrderError(f"member {member_id} has no lot {lot_source_key}")
        now = self.clock()
        if date.fromisoformat(lot.expires_on) >= self.rules.local_date(now):
            raise NotDueError(f"lot {lot_source_key} is valid until {lot.expires_on}; it expires the day after")
        source_key = f"expiry#{lot_source_key}"
        consumed = int(member.consumed)
        points = expirable(int(lot.lot_end), consumed)
        if points == 0:
            return None
        entry = self._entry_item(
            member_id,
            source_key,
            EntryKind.EXPIRY,
            now,
            points=-points,
            reason=f"{points} points from {lot_source_key} expired (valid until {lot.expires_on})",
        )
        member_actions: list[Action] = [
            MemberItem.consumed.set(int(lot.lot_end)),
            MemberItem.available.add(-points),
            MemberItem.expired.add(points),
        ]
        reasons = self._commit(entry, [(MemberItem(pk, MEMBER_SK), member_actions, MemberItem.consumed == consumed)])
        if reasons is None:
            return LedgerResult(entry=_entry_from_item(entry))
        if reasons[0] == _CONDITION_FAILED:
            return self._original(member_id, source_key)
        raise _Retry

    def expire_due(self, on: date) -> int:
        """Expire every lot whose last valid day was the day before ``on``; found through the due-date index."""
        expired = 0
        for item in LoyaltyItem.due.query(f"EXPIRE#{on.isoformat()}"):
            if isinstance(item, EntryItem) and self.expire_lot(item) is not None:
                expired += 1
        return expired

    def _consume(
        self, member_id: str, points: int, source_key: str, kind: EntryKind, reason: str, actor: str | None = None
    ) -> LedgerResult:
        entry = self._entry_item(member_id, source_key, kind, self.clock(), points=-points, reason=reason, actor=actor)
        actions: list[Action] = [MemberItem.available.add(-points), MemberItem.consumed.add(points)]
        if kind is EntryKind.REDEMPTION:
            actions.append(MemberItem.redeemed.add(points))
        reasons = self._commit(
            entry,
            [
                (
                    MemberItem(member_pk(member_id), MEMBER_SK),
                    actions,
                    MemberItem.pk.exists() & (MemberItem.available >= points),
                )
            ],
        )
        if reasons is None:
            return LedgerResult(entry=_entry_from_item(entry))
        if reasons[0] == _CONDITION_FAILED:
            return self._original(member_id, source_key)
        if reasons[1] == _CONDITION_FAILED:
            member = _get(MemberItem, member_pk(member_id), MEMBER_SK)
            if member is None:
                raise UnknownMemberError(member_id)
            raise InsufficientPointsError(
                f"member {member_id} has {int(member.available)} points available; {points} asked"
            )
        raise _Retry

    def _credit(
        self, member_id: str, points: int, source_key: str, kind: EntryKind, reason: str, actor: str | None = None
    ) -> LedgerResult:
        member = _get(MemberItem, member_pk(member_id), MEMBER_SK)
        if member is None:
            raise UnknownMemberError(member_id)
        now = self.clock()
        entry, actions, condition = self._new_lot(
            member, source_key, kind, now, points, self.rules.local_date(now), reason=reason, actor=actor
        )
        entry.lifetime = points
        actions += [MemberItem.lifetime.add(points), MemberItem.last_activity.set(now)]
        reasons = self._commit(entry, [(MemberItem(member_pk(member_id), MEMBER_SK), actions, condition)])
        if reasons is None:
            return LedgerResult(entry=_entry_from_item(entry))
        if reasons[0] == _CONDITION_FAILED:
            return self._original(member_id, source_key)
        raise _Retry

    def _new_lot(
        self,
        member: MemberItem,
        source_key: str,
        kind: EntryKind,
        now: datetime,
        points: int,
        earned_on: date,
        **fields: Any,
    ) -> tuple[EntryItem, list[Action], Condition]:
        """An entry adding ``points`` at the end of the member's lot stream, with the member update it needs."""
        start = int(member.released)
        expires_on = self.rules.expiry_date(earned_on)
        if member.lot_expiry_max and date.fromisoformat(member.lot_expiry_max) > expires_on:
            expires_on = date.fromisoformat(member.lot_expiry_max)  # never before an older lot: FIFO stays true
        entry = self._entry_item(member.member_id, source_key, kind, now, points=points, **fields)
        if points > 0:
            entry.lot_start = start
            entry.lot_end = start + points
            entry.expires_on = expires_on.isoformat()
            entry.due_pk = f"EXPIRE#{(expires_on + timedelta(days=1)).isoformat()}"  # valid through expires_on
            entry.due_sk = f"{entry.pk}#{entry.sk}"
        actions: list[Action] = [
            MemberItem.available.add(points),
            MemberItem.released.add(points),
            MemberItem.lot_expiry_max.set(expires_on.isoformat()),
        ]
        return entry, actions, MemberItem.released == start

    # ---------------------------------------------------------------- tiers over time

    def _tier_in_force(self, member: MemberItem, today: date) -> str:
        override = _override(member)
        if override is not None and override.active_on(today):
            return override.tier
        return member.tier or self.rules.tiers[0].name

    def assess_tier(self, member_id: str) -> list[LedgerResult]:
        """Decide every qualification period of the member that has ended (kept or lost), oldest first.

        Each decision is an entry keyed by the period's end, so a rerun decides nothing twice."""
        results: list[LedgerResult] = []
        while (result := self._retrying(lambda: self._assess_once(member_id))) is not None:
            results.append(result)
        return results

    def _assess_once(self, member_id: str) -> LedgerResult | None:
        member = _get(MemberItem, member_pk(member_id), MEMBER_SK)
        if member is None:
            raise UnknownMemberError(member_id)
        now = self.clock()
        today = self.rules.local_date(now)
        period_end = _period_end(member)
        due = assessment_due(self.rules, member.tier, period_end)
        if due is None or due > today or period_end is None or member.tier is None:
            return None
        decided = assess(self.rules, member.tier, period_end, _buckets(member), today)
        entry = self._entry_item(
            member_id,
            f"tier#{period_end.isoformat()}",
            EntryKind.TIER,
            now,
            reason=decided.reason,
            tier=decided.tier,
            tier_period_end=decided.period_end.isoformat() if decided.period_end else None,
        )
        actions: list[Action] = [MemberItem.tier.set(decided.tier), MemberItem.qualifying_version.add(1)]
        if decided.period_end is not None:
            actions.append(MemberItem.tier_period_end.set(decided.period_end.isoformat()))
        else:
            actions.append(MemberItem.tier_period_end.remove())
        reasons = self._commit(entry, [(MemberItem(member.pk, MEMBER_SK), actions, _unchanged_qualifying(member))])
        if reasons is None:
            return LedgerResult(entry=_entry_from_item(entry))
        raise _Retry  # decided already (the entry exists) or the member changed: look again

    def override_tier(
        self, member_id: str, tier: str, valid_until: date, reason: str, actor: str, override_id: str
    ) -> LedgerResult:
        """A tier set by a named actor until ``valid_until`` (inclusive), shown instead of the earned tier."""
        chosen = self.rules.tier(tier)
        if not actor or not reason:
            raise InvalidAmountError("a tier override needs the actor who set it and a reason")
        return self._retrying(
            lambda: self._override_once(member_id, chosen.name, valid_until, reason, actor, override_id)
        )

    def _override_once(
        self, member_id: str, tier: str, valid_until: date, reason: str, actor: str, override_id: str
    ) -> LedgerResult:
        member = _get(MemberItem, member_pk(member_id), MEMBER_SK)
        if member is None:
            raise UnknownMemberError(member_id)
        now = self.clock()
        if valid_until < self.rules.local_date(now):
            raise InvalidAmountError(f"the override's last day {valid_until} has passed")
        source_key = f"tier_override#{override_id}"
        entry = self._entry_item(
            member_id,
            source_key,
            EntryKind.TIER_OVERRIDE,
            now,
            reason=f"Tier set to {self.rules.tier(tier).display_name} until {valid_until} by {actor}: {reason}",
            actor=actor,
            tier=tier,
            valid_until=valid_until.isoformat(),
        )
        override = {"tier": tier, "valid_until": valid_until.isoformat(), "reason": reason, "actor": actor}
        actions: list[Action] = [
            MemberItem.tier_override.set(override),
            MemberItem.qualifying_version.add(1),  # orders in flight earn at the tier in force: they look again
            MemberItem.last_activity.set(now),
        ]
        member_item = MemberItem(member_pk(member_id), MEMBER_SK)
        reasons = self._commit(entry, [(member_item, actions, _unchanged_qualifying(member))])
        if reasons is None:
            return LedgerResult(entry=_entry_from_item(entry))
        if reasons[0] == _CONDITION_FAILED:
            return self._original(member_id, source_key)
        raise _Retry  # the member's points or tier changed meanwhile

    # ---------------------------------------------------------------- offers

    def grant_offer(self, member_id: str, offer: Offer) -> bool:
        """Give the member an offer that changes what they earn (a multiplier or bonus points) for its validity.

        Idempotent per code and validity; offers that ended long ago are dropped. False for an offer that does
        not change earning (a voucher, free shipping)."""
        if offer.kind not in (OfferKind.POINTS_MULTIPLIER, OfferKind.BONUS_POINTS):
            return False
        member = _get(MemberItem, member_pk(member_id), MEMBER_SK)
        if member is None:
            raise UnknownMemberError(member_id)
        key = f"{offer.code}#{offer.valid_from.isoformat()}#{offer.valid_until.isoformat()}"
        stored = member.offers.as_dict() if member.offers is not None else {}
        if key in stored:
            return True
        grant = {
            "code": offer.code,
            "multiplier": offer.multiplier,
            "bonus_points": offer.bonus_points,
            "valid_from": offer.valid_from.isoformat(),
            "valid_until": offer.valid_until.isoformat(),
        }
        long_ago = (self.rules.local_date(self.clock()) - timedelta(days=366)).isoformat()
        ended = [k for k, v in stored.items() if str(v.get("valid_until", "")) < long_ago]
        value = {k: v for k, v in grant.items() if v is not None}
        item = MemberItem(member_pk(member_id), MEMBER_SK)
        actions: list[Action] = [MemberItem.offers[key].set(value)]
        actions += [MemberItem.offers[k].remove() for k in ended]
        try:
            item.update(actions=actions, condition=MemberItem.offers.exists())
        except UpdateError as error:
            if error.cause_response_code != "ConditionalCheckFailedException":
                raise
            # a member stored before offers existed: the map comes with the first grant
            item.update(
                actions=[MemberItem.offers.set({key: value})],
                condition=MemberItem.pk.exists() & MemberItem.offers.does_not_exist(),
            )
        return True

    # ---------------------------------------------------------------- queries

    def summary(self, member_id: str) -> MemberSummary:
        member = _get(MemberItem, member_pk(member_id), MEMBER_SK)
        if member is None:
            raise UnknownMemberError(member_id)
        today = self.rules.local_date(self.clock())
        status = tier_status(self.rules, member.tier, _period_end(member), _override(member), _buckets(member), today)
        next_on: date | None = None
        next_points = 0
        for lot in self._open_lots(member):
            if next_on is not None and lot.expires_on != next_on:
                break
            next_on = lot.expires_on
            next_points += lot.remaining
        return MemberSummary(
            member_id=member_id,
            available=int(member.available),
            pending=int(member.pending),
            lifetime=int(member.lifetime),
            qualifying=status.running_total,
            tier=status.tier,
            earned_tier=status.earned_tier,
            next_tier=status.next_tier,
            points_to_next_tier=status.points_to_next,
            points_to_keep_tier=status.points_to_keep,
            tier_expires_on=status.expires_on,
            tier_period_end=status.period_end,
            tier_override_until=status.override.valid_until if status.override else None,
            tier_override_reason=status.override.reason if status.override else None,
            segment=member.segment,
            segment_reason=member.segment_reason,
            segment_rfm=member.segment_rfm,
            next_expiry_on=next_on,
            next_expiry_points=next_points,
            enrolled_at=member.enrolled_at,
            last_activity=member.last_activity,
            profile=MemberProfile(
                email=member.email,
                phone=member.phone,
                first_name=member.first_name,
                locale=member.locale,
                email_consent=member.email_consent,
                sms_consent=member.sms_consent,
                crm_contact_id=member.crm_contact_id,
                birthdate=date.fromisoformat(member.birthdate) if member.birthdate else None,
                updated_at=member.profile_updated_at,
                email_consent_at=member.email_consent_at or member.profile_updated_at,
                sms_consent_at=member.sms_consent_at or member.profile_updated_at,
            ),
        )

    def open_lots(self, member_id: str) -> list[Lot]:
        member = _get(MemberItem, member_pk(member_id), MEMBER_SK)
        if member is None:
            raise UnknownMemberError(member_id)
        return list(self._open_lots(member))

    def _open_lots(self, member: MemberItem) -> Iterator[Lot]:
        consumed = int(member.consumed)
        for item in LoyaltyItem.open_lots.query(
            member.pk, LoyaltyItem.lot_end > consumed, consistent_read=True, page_size=25
        ):
            assert isinstance(item, EntryItem) and item.lot_start is not None and item.expires_on is not None
            end = int(item.lot_end or 0)
            yield Lot(
                source_key=item.source_key,
                earned_at=item.created_at,
                expires_on=date.fromisoformat(item.expires_on),
                points=end - int(item.lot_start),
                remaining=end - max(consumed, int(item.lot_start)),
            )

    def history(self, member_id: str, limit: int = 20, cursor: str | None = None) -> HistoryPage:
        """Entries newest first, ``limit`` a page; each says why it was written."""
        if not 1 <= limit <= 100:
            raise InvalidAmountError("history page size must be between 1 and 100")
        start_key = json.loads(base64.urlsafe_b64decode(cursor)) if cursor else None
        results = LoyaltyItem.by_time.query(
            member_pk(member_id), scan_index_forward=False, limit=limit, last_evaluated_key=start_key
        )
        entries = tuple(_entry_from_item(item) for item in results if isinstance(item, EntryItem))
        last_key = results.last_evaluated_key
        next_cursor = base64.urlsafe_b64encode(json.dumps(last_key).encode()).decode() if last_key else None
        return HistoryPage(entries=entries, cursor=next_cursor)

    def entries_since(self, member_id: str, since: datetime) -> list[Entry]:
        """The member's entries written at or after ``since``, oldest first (one query on the history index)."""
        return [
            _entry_from_item(item)
            for item in LoyaltyItem.by_time.query(
                member_pk(member_id), LoyaltyItem.hist_sk >= _history_key(since), consistent_read=True
            )
            if isinstance(item, EntryItem)
        ]

    def entries(self, member_id: str) -> Iterator[Entry]:
        """Every entry of a member, in key order (for audits and invariant checks)."""
        for item in LoyaltyItem.query(
            member_pk(member_id), LoyaltyItem.sk.startswith(ENTRY_PREFIX), consistent_read=True
        ):
            if isinstance(item, EntryItem):
                yield _entry_from_item(item)

    def check_invariants(self, member_id: str) -> list[str]:
        """The ledger invariants for one member; returns what is violated (empty when all hold)."""
        member = _get(MemberItem, member_pk(member_id), MEMBER_SK)
        if member is None:
            raise UnknownMemberError(member_id)
        entries = list(self.entries(member_id))
        problems = []
        sums = {
            "available": sum(e.points for e in entries),
            "pending": sum(e.pending for e in entries),
            "lifetime": sum(e.lifetime for e in entries),
            "released": sum((e.lot_end or 0) - (e.lot_start or 0) for e in entries),
            "expired": -sum(e.points for e in entries if e.kind is EntryKind.EXPIRY),
            "redeemed": -sum(e.points for e in entries if e.kind is EntryKind.REDEMPTION),
        }
        for name, total in sums.items():
            if int(getattr(member, name)) != total:
                problems.append(f"{name} is {int(getattr(member, name))} but its entries sum to {total}")
        qualifying = sum(int(v) for v in member.qualifying.as_dict().values())
        if qualifying != sum(e.qualifying for e in entries):
            problems.append(f"qualifying is {qualifying} but entries sum to {sum(e.qualifying for e in entries)}")
        if int(member.available) < 0 or int(member.pending) < 0:
            problems.append(f"negative balance: available {member.available}, pending {member.pending}")
        if int(member.released) - int(member.consumed) != int(member.available):
            problems.append("available differs from released minus consumed")
        if member.segment and member.segment_at and member.segment_on:
            judged_on = date.fromisoformat(member.segment_on)
            since = segment_window_start(self.rules.segments, judged_on)
            recorded = [e for e in entries if since <= e.created_at <= member.segment_at]
            purchases, referrals = purchases_from(recorded)
            segment = assign_segment(
                self.rules.segments, purchases, referrals, self.rules.local_date(member.enrolled_at), judged_on
            )
            if (segment.name, segment.reason) != (member.segment, member.segment_reason):
                problems.append(f"segment is {member.segment}, but the entries give {segment.name}: {segment.reason}")
        tier, period_end, tier_problems = replay_tier(self.rules, entries)
        problems += tier_problems
        if (tier, period_end) != (member.tier, _period_end(member)):
            problems.append(
                f"tier is {member.tier} until {member.tier_period_end}, but the entries give {tier} until {period_end}"
            )
        lots = sorted((e for e in entries if e.lot_end is not None), key=lambda e: e.lot_start or 0)
        for older, newer in itertools.pairwise(lots):
            if older.lot_end != newer.lot_start:
                problems.append(f"lot stream has a gap or overlap at {older.source_key}")
            if older.expires_on and newer.expires_on and older.expires_on > newer.expires_on:
                problems.append(f"lot {newer.source_key} expires before the older {older.source_key}")
        return problems

    # ---------------------------------------------------------------- plumbing

    def _get_member_and_order(self, member_id: str, key: str) -> tuple[MemberItem, OrderItem | None]:
        member = order = None
        for item in _batch_get([(member_pk(member_id), MEMBER_SK), (order_pk(key), ORDER_SK)]):
            if isinstance(item, MemberItem):
                member = item
            elif isinstance(item, OrderItem):
                order = item
        if member is None:
            raise UnknownMemberError(member_id)
        return member, order

    def _entry_item(self, member_id: str, source_key: str, kind: EntryKind, now: datetime, **fields: Any) -> EntryItem:
        pk = member_pk(member_id)
        return EntryItem(
            pk,
            ENTRY_PREFIX + source_key,
            member_id=member_id,
            source_key=source_key,
            kind=kind.value,
            created_at=now,
            hist_sk=f"{_history_key(now)}#{source_key}",
            **fields,
        )

    def _original(self, member_id: str, source_key: str) -> LedgerResult:
        item = _get(EntryItem, member_pk(member_id), ENTRY_PREFIX + source_key)
        if item is None:
            raise _Retry  # the transaction that wrote it is not visible yet
        return LedgerResult(entry=_entry_from_item(item), duplicate=True)

    def _commit(
        self, entry: EntryItem, updates: list[tuple[LoyaltyItem, list[Action], Condition]]
    ) -> list[str | None] | None:
        """Write the entry (only if new) and the updates in one transaction.

        Returns None on success, else the cancellation reason of each item in order (entry first).
        """
        try:
            with TransactWrite(connection=self._connection) as transaction:
                transaction.save(entry, condition=EntryItem.pk.does_not_exist())
                for model, actions, condition in updates:
                    transaction.update(model, actions, condition=condition, add_version_condition=False)
        except TransactWriteError as error:
            reasons = [reason.code if reason else None for reason in (error.cancellation_reasons or [])]
            if not reasons:
                raise
            if _CONFLICT in reasons:
                raise _Retry from error
            return reasons
        return None

    def _retrying(self, attempt: Callable[[], T]) -> T:
        for number in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except _Retry:
                time.sleep(random.uniform(0, min(0.2, 0.005 * 2**number)))
        raise ConcurrentUpdateError("the member kept changing; the operation was not applied, retry it")


def _history_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _buckets(member: MemberItem) -> dict[str, int]:
    """The member's qualifying points per month."""
    return {month: int(points) for month, points in (member.qualifying.as_dict() if member.qualifying else {}).items()}


def _unchanged_qualifying(member: MemberItem) -> Condition:
    """The member exists and no qualifying points or tier changed since ``member`` was read.

    Every change of qualifying points or tier is made under this condition, so they are applied one at a
    time, each seeing the one before: an upgrade is never missed because two orders raced."""
    version = int(member.qualifying_version or 0)
    unchanged = MemberItem.qualifying_version == version
    if version == 0:
        unchanged |= MemberItem.qualifying_version.does_not_exist()
    return MemberItem.pk.exists() & unchanged


def _override(member: MemberItem) -> TierOverride | None:
    if member.tier_override is None:
        return None
    raw = member.tier_override.as_dict()
    return TierOverride(
        tier=str(raw["tier"]),
        valid_until=date.fromisoformat(str(raw["valid_until"])),
        reason=str(raw["reason"]),
        actor=str(raw["actor"]),
    )


def _offers_for(member: MemberItem, day: date) -> list[tuple[str, GrantedOffer]]:
    """The member's granted offers in force on ``day`` (a bonus offer only until an order has used it)."""
    found = []
    for key, raw in sorted((member.offers.as_dict() if member.offers is not None else {}).items()):
        if not raw["valid_from"] <= day.isoformat() <= raw["valid_until"] or raw.get("used"):
            continue
        multiplier = Decimal(str(raw["multiplier"])) if raw.get("multiplier") else None
        bonus = int(raw["bonus_points"]) if raw.get("bonus_points") else None
        found.append((key, GrantedOffer(code=str(raw["code"]), multiplier=multiplier, bonus_points=bonus)))
    return found


def key_of_order(order: Order) -> str:
    return order_key_of(order.shop, order.order_id)


def _period_end(member: MemberItem) -> date | None:
    return date.fromisoformat(member.tier_period_end) if member.tier_period_end else None


def _base_points(rules: ProgramRules, order: Order, earning: Earning) -> int:
    """What the order would earn at x1: its spend in points, comparable across currencies."""
    rate = rules.currencies[order.currency].points_per_unit
    return floor_points(sum((line.base for line in earning.lines), Decimal(0)) * rate)


def _require_positive(points: int) -> None:
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        raise InvalidAmountError(f"points must be a positive integer, got {points!r}")


def _get(model: type[T], pk: str, sk: str) -> T | None:
    try:
        return model.get(pk, sk, consistent_read=True)  # type: ignore[attr-defined]
    except model.DoesNotExist:  # type: ignore[attr-defined]
        return None


def _batch_get(keys: list[tuple[str, str]]) -> list[LoyaltyItem]:
    return list(LoyaltyItem.batch_get(keys, consistent_read=True))


def _is_condition_failure(error: Exception) -> bool:
    cause = getattr(error, "cause_response_code", None)
    return cause == "ConditionalCheckFailedException"


def _entry_from_item(item: EntryItem) -> Entry:
    return Entry(
        member_id=item.member_id,
        source_key=item.source_key,
        kind=EntryKind(item.kind),
        created_at=item.created_at,
        points=int(item.points),
        pending=int(item.pending),
        lifetime=int(item.lifetime),
        qualifying=int(item.qualifying),
        reason=item.reason,
        source=item.source,
        order_key=item.order_key,
        actor=item.actor,
        campaigns=tuple(item.campaigns or ()),
        lines={k: int(v) for k, v in item.lines.as_dict().items()} if item.lines is not None else None,
        lot_start=int(item.lot_start) if item.lot_start is not None else None,
        lot_end=int(item.lot_end) if item.lot_end is not None else None,
        expires_on=date.fromisoformat(item.expires_on) if item.expires_on else None,
        unrecovered=int(item.unrecovered),
        month=item.month,
        tier=item.tier,
        tier_reached=item.tier_reached,
        tier_period_end=date.fromisoformat(item.tier_period_end) if item.tier_period_end else None,
        valid_until=date.fromisoformat(item.valid_until) if item.valid_until else None,
        placed_on=date.fromisoformat(item.placed_on) if item.placed_on else None,
        base_points=int(item.base_points) if item.base_points is not None else None,
        discounted=item.discounted,
        categories=tuple(item.categories or ()),
        offers=tuple(item.offers or ()),
    )
