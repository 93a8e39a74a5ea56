"""What each ledger operation writes, decided from the state read: pure functions of the rules, the state and the
time, returning the one change to commit (loyalty.ledger.state.LedgerChange).

A decision returns a `LedgerChange` to commit, an `Original` when the state read shows the operation was applied
before (the service returns that entry as a duplicate), or None when there is nothing to do. Every change states
the conditions it relies on, so a concurrent writer makes the commit fail rather than be lost.

Rules kept here:
- Orders earn at the tier in force (a CRM user's override while it lasts, else the earned tier) with the offers
  in force on the order's date; their points are pending until `pending_days` after the order's date. An order
  that reaches a higher tier upgrades the member at once (loyalty.programme.tiers).
- A refund reverses what the order stored per line when it was earned: after a refund a line keeps
  ``round_half_up(points * quantity_left / quantity)``, so a full refund reverses exactly what is left. Points
  already released come back out of the available balance, as far as it goes (the rest is "unrecovered").
  A refund before its order is parked on the order and applied once the order is earned.
- Available points form one lot stream per member: a new lot (released order points, a bonus, a goodwill credit)
  goes at its end and never expires before an older lot; redemption, deductions and expiry consume its front.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from loyalty.errors import (
    InvalidAmountError,
    MemberBlockedError,
    NotDueError,
    RedemptionRefusedError,
    RefundExceedsOrderError,
    UnknownOrderError,
)
from loyalty.ledger.model import Entry, EntryKind, Lot, MemberProfile, MemberSummary
from loyalty.ledger.state import (
    CANCELLABLE,
    LedgerChange,
    LineState,
    MemberChange,
    MemberExpectations,
    MemberState,
    OfferGrant,
    OrderChange,
    OrderState,
    OrderStatus,
    Redemption,
    RedemptionStatus,
    RedemptionWrite,
    RewardUses,
)
from loyalty.programme.earning import Earning, GrantedOffer, earn_for_order, earning_base
from loyalty.programme.money import floor_points
from loyalty.programme.orders import Order
from loyalty.programme.rewards import Reward, RewardCatalogue, RewardKind, limit_reached, month_of, tier_too_low
from loyalty.programme.rules import ProgramRules
from loyalty.programme.tiers import (
    TierOverride,
    assess,
    assessment_due,
    month_key,
    tier_in_force,
    tier_status,
    upgrade,
)

BONUS_KINDS = ("signup", "birthday", "referral", "review")
OFFERS_KEPT_FOR = timedelta(days=366)  # granted offers that ended longer ago are dropped from the member


@dataclass(frozen=True)
class Original:
    """The operation was applied before: its entry is the answer."""

    member_id: str
    source_key: str


Decision = LedgerChange | Original | None


def order_key_of(shop: str, order_id: str) -> str:
    return f"{shop}#{order_id}"


def round_half_up(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_HALF_UP))


def points_kept(points: int, quantity: int, quantity_left: int) -> int:
    """What a line keeps of the points it earned when only ``quantity_left`` of its ``quantity`` units remain."""
    if quantity_left <= 0 or points == 0:
        return 0
    return round_half_up(Decimal(points) * quantity_left / quantity)


CENT = Decimal("0.01")


def value_kept(value: Decimal, quantity: int, quantity_left: int) -> Decimal:
    """What a line keeps of its value when only ``quantity_left`` of its ``quantity`` units remain (to the
    hundredth, half up; all of it refunded at the last unit, so the refunds add up to the line's value)."""
    if quantity_left <= 0:
        return Decimal(0)
    return (value * quantity_left / quantity).quantize(CENT, rounding=ROUND_HALF_UP)


def require_positive(points: int) -> None:
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        raise InvalidAmountError(f"points must be a positive integer, got {points!r}")


def new_entry(member_id: str, source_key: str, kind: EntryKind, now: datetime, **fields: Any) -> Entry:
    return Entry(member_id=member_id, source_key=source_key, kind=kind, created_at=now, **fields)


def _unchanged_qualifying(member: MemberState, **more: int) -> MemberExpectations:
    """No qualifying points or tier changed since ``member`` was read: such changes apply one at a time, each
    seeing the one before, so an upgrade is never missed because two orders raced."""
    return MemberExpectations(qualifying_version=member.qualifying_version, **more)


# ---------------------------------------------------------------- tiers and offers in force


def offers_in_force(member: MemberState, day: date) -> list[tuple[str, GrantedOffer]]:
    """The member's granted offers in force on ``day`` (a bonus offer only until an order has used it)."""
    return [
        (key, GrantedOffer(code=grant.code, multiplier=grant.multiplier, bonus_points=grant.bonus_points))
        for key, grant in sorted(member.offers.items())
        if grant.valid_from <= day <= grant.valid_until and not grant.used
    ]


def grant_key(grant: OfferGrant) -> str:
    """One grant per offer code and validity: granting it again changes nothing."""
    return f"{grant.code}#{grant.valid_from.isoformat()}#{grant.valid_until.isoformat()}"


def grants_ended(member: MemberState, today: date) -> list[str]:
    """Grants that ended long ago, dropped when the next one is granted."""
    long_ago = today - OFFERS_KEPT_FOR
    return [key for key, grant in member.offers.items() if grant.valid_until < long_ago]


# ---------------------------------------------------------------- orders


def accrual(
    rules: ProgramRules, member: MemberState, stored: OrderState | None, order: Order, now: datetime
) -> Decision:
    """Pending points for a paid order, at the tier and with the offers in force; an upgrade if it reaches one."""
    key = order_key_of(order.shop, order.order_id)
    if stored is not None and stored.member_id is not None:
        return Original(stored.member_id, f"accrual#{key}")
    today = rules.local_date(now)
    earning_tier = tier_in_force(rules, member.tier, member.tier_override, today)
    earned_on = rules.local_date(order.placed_at)
    granted = offers_in_force(member, earned_on)
    earning = earn_for_order(rules, order, earning_tier, tuple(offer for _, offer in granted))
    if member.blocked_reason is not None or member.leaving_on is not None:  # recorded, earning nothing, and why
        granted = []
        earning = Earning(
            lines=tuple(line.model_copy(update={"points": 0}) for line in earning.lines),
            points=0,
            campaigns=(),
            qualifying_points=0,
        )
    line_points = {line.line_id: line.points for line in earning.lines}
    lines: dict[str, LineState] = {}
    for line in order.lines:
        points, value = line_points.get(line.line_id, 0), earning_base(line, order.prices_include_tax, False)
        lines[line.line_id] = LineState(line.quantity, line.quantity, points, points, value, value)
    release_on = rules.release_date(earned_on)
    month = month_key(earned_on)
    buckets = dict(member.qualifying)
    buckets[month] = buckets.get(month, 0) + earning.qualifying_points
    reached = upgrade(rules, member.tier, buckets, today)
    campaigns = f", campaigns {', '.join(earning.campaigns)}" if earning.campaigns else ""
    campaigns += f", offers {', '.join(earning.offers)}" if earning.offers else ""
    upgraded = f"; reached {reached[0].display_name}" if reached else ""
    if member.blocked_reason is not None:
        upgraded += f"; no points while the membership is blocked: {member.blocked_reason}"
    elif member.leaving_on is not None:
        upgraded += f"; no points: the member leaves the programme on {member.leaving_on}"
    entry = new_entry(
        member.member_id,
        f"accrual#{key}",
        EntryKind.ACCRUAL,
        now,
        points=0,
        pending=earning.points,
        lifetime=earning.points,
        qualifying=earning.qualifying_points,
        reason=(
            f"Order {order.order_id} ({order.shop}): {earning.points} points pending until {release_on}, "
            f"tier {earning_tier}{campaigns}{upgraded}"
        ),
        source=order.shop,
        order_key=key,
        campaigns=earning.campaigns,
        lines={line_id: state.points for line_id, state in lines.items()},
        month=month,
        tier=earning_tier,
        tier_reached=reached[0].name if reached else None,
        tier_period_end=reached[1] if reached else None,
        placed_on=earned_on,
        base_points=_base_points(rules, order, earning),
        value=sum((state.value for state in lines.values()), Decimal(0)),
        currency=order.currency,
        discounted=bool(order.discount_codes),
        categories=tuple(sorted({c for line in order.lines for c in line.categories})),
        offers=earning.offers,
    )
    base = stored or OrderState(order_key=key)
    state = replace(
        base,
        version=base.version + 1,
        member_id=member.member_id,
        status=OrderStatus.PENDING,
        earned=earning.points,
        left=earning.points,
        qualifying_earned=earning.qualifying_points,
        qualifying_left=earning.qualifying_points,
        qualifying_month=month,
        earned_on=earned_on,
        release_on=release_on,
        currency=order.currency,
        lines=lines,
    )
    sets: dict[str, Any] = {"last_activity": now}
    if reached:
        sets.update(tier=reached[0].name, tier_period_end=reached[1], tier_changed_at=now)
    used = {  # a bonus offer pays once: on the first order within its validity
        grant: key for grant, offer in granted if offer.bonus_points is not None and offer.code in earning.offers
    }
    change = MemberChange(
        member.member_id,
        add={"pending": earning.points, "lifetime": earning.points},
        qualifying={month: earning.qualifying_points},
        bump_qualifying_version=True,
        sets=sets,
        offers_used=used,
        expect=_unchanged_qualifying(member),
    )
    return LedgerChange(entry=entry, member=change, order=OrderChange(state))


def _base_points(rules: ProgramRules, order: Order, earning: Earning) -> int:
    """What the order would earn at x1: its spend in points, comparable across currencies."""
    rate = rules.currencies[order.currency].points_per_unit
    return floor_points(sum((line.base for line in earning.lines), Decimal(0)) * rate)


def reversal(
    rules: ProgramRules,
    member: MemberState,
    order: OrderState,
    refund_id: str,
    lines: Mapping[str, int] | None,
    now: datetime,
) -> Decision:
    """Reverse what the order earned for a refund of ``lines`` (line id -> quantity; None: what is left)."""
    key = order.order_key
    source_key = f"reversal#{key}#{refund_id}"
    if refund_id in order.refunds:
        return Original(member.member_id, source_key)
    wanted = (
        dict(lines) if lines is not None else {k: s.quantity_left for k, s in order.lines.items() if s.quantity_left}
    )
    if not wanted:
        raise RefundExceedsOrderError(f"order {key} has nothing left to refund")
    new_lines = dict(order.lines)
    reversed_lines: dict[str, int] = {}
    refunded = Decimal(0)
    for line_id, quantity in wanted.items():
        line = order.lines.get(line_id)
        if line is None:
            raise UnknownOrderError(f"order {key} has no line {line_id}")
        if quantity > line.quantity_left:
            raise RefundExceedsOrderError(
                f"refund {refund_id} asks for {quantity} of line {line_id} of order {key}; {line.quantity_left} left"
            )
        quantity_left = line.quantity_left - quantity
        kept = points_kept(line.points, line.quantity, quantity_left)
        reversed_lines[line_id] = line.points_left - kept
        value_left = value_kept(line.value, line.quantity, quantity_left)
        refunded += line.value_left - value_left
        new_lines[line_id] = replace(line, quantity_left=quantity_left, points_left=kept, value_left=value_left)
    points = sum(reversed_lines.values())
    left = order.left - points
    qualifying_kept = points_kept(order.qualifying_earned, order.earned, left)
    qualifying = order.qualifying_left - qualifying_kept
    month = order.qualifying_month or month_key(rules.local_date(now))
    released = order.status is OrderStatus.RELEASED
    state = replace(
        order,
        version=order.version + 1,
        lines=new_lines,
        left=left,
        qualifying_left=qualifying_kept,
        refunds=order.refunds | {refund_id},
    )
    if released:
        take = min(points, member.available)
        unrecovered = points - take
        add = {"lifetime": -points, "available": -take, "consumed": take}
        expect = _unchanged_qualifying(member, available_at_least=take)
        reason = f"Refund {refund_id} of order {key}: {take} available points reversed"
        if unrecovered:
            reason += f" ({unrecovered} already spent, not recovered)"
    else:
        take = unrecovered = 0
        add = {"lifetime": -points, "pending": -points}
        expect = _unchanged_qualifying(member)
        reason = f"Refund {refund_id} of order {key}: {points} pending points cancelled"
        if left == 0:
            state = replace(state, status=OrderStatus.CANCELLED, release_on=None)
    entry = new_entry(
        member.member_id,
        source_key,
        EntryKind.REVERSAL,
        now,
        points=-take,
        pending=0 if released else -points,
        lifetime=-points,
        qualifying=-qualifying,
        reason=reason,
        source=order.shop,
        order_key=key,
        lines=reversed_lines,
        unrecovered=unrecovered,
        month=month,
        value=-refunded if order.currency else None,
        currency=order.currency,
    )
    change = MemberChange(
        member.member_id,
        add=add,
        qualifying={month: -qualifying},
        bump_qualifying_version=True,
        sets={"last_activity": now},
        expect=expect,
    )
    return LedgerChange(entry=entry, member=change, order=OrderChange(state))


def parked_refund(
    stored: OrderState | None, key: str, refund_id: str, lines: Mapping[str, int] | None
) -> LedgerChange | None:
    """Keep a refund that arrived before its order on the order; None if it is kept already."""
    base = stored or OrderState(order_key=key)
    if refund_id in base.parked:
        return None
    parked = {**base.parked, refund_id: dict(lines or {})}
    return LedgerChange(order=OrderChange(replace(base, version=base.version + 1, parked=parked)))


def release(rules: ProgramRules, member: MemberState, order: OrderState, now: datetime) -> Decision:
    """The order's pending points become available as a new lot, once its return window has passed."""
    key = order.order_key
    source_key = f"release#{key}"
    if order.status is OrderStatus.RELEASED:
        return Original(member.member_id, source_key)
    if order.status is not OrderStatus.PENDING:
        return None
    points = order.left
    today = rules.local_date(now)
    earned_on = order.earned_on or today
    # Released after its day (the job was down for a while): the points' validity is counted from the earning
    # day moved on by the delay, so the member loses none of it to the wait, and no lot starts out already past
    # its last valid day, where the expiry job (which looks back only its catch-up window) would never take it.
    late = max(timedelta(0), today - order.release_on) if order.release_on is not None else timedelta(0)
    return new_lot(
        rules,
        member,
        source_key,
        EntryKind.RELEASE,
        now,
        points,
        earned_on + late,
        add={"pending": -points},
        entry_fields={
            "pending": -points,
            "reason": f"Order {key}: return window passed, {points} points available",
            "source": order.shop,
            "order_key": key,
        },
        order=OrderChange(replace(order, version=order.version + 1, status=OrderStatus.RELEASED, release_on=None)),
    )


# ---------------------------------------------------------------- the lot stream


def new_lot(
    rules: ProgramRules,
    member: MemberState,
    source_key: str,
    kind: EntryKind,
    now: datetime,
    points: int,
    earned_on: date,
    add: Mapping[str, int] | None = None,
    entry_fields: Mapping[str, Any] | None = None,
    sets: Mapping[str, Any] | None = None,
    order: OrderChange | None = None,
) -> LedgerChange:
    """``points`` added at the end of the member's lot stream, expiring no earlier than the newest lot."""
    start = member.released
    expires_on = rules.expiry_date(earned_on)
    if member.lot_expiry_max is not None and member.lot_expiry_max > expires_on:
        expires_on = member.lot_expiry_max  # never before an older lot: first in, first out stays true
    lot: dict[str, Any] = {}
    if points > 0:
        lot = {"lot_start": start, "lot_end": start + points, "expires_on": expires_on}
    entry = new_entry(member.member_id, source_key, kind, now, points=points, **lot, **(entry_fields or {}))
    change = MemberChange(
        member.member_id,
        add={"available": points, "released": points, **(add or {})},
        sets={"lot_expiry_max": expires_on, **(sets or {})},
        expect=MemberExpectations(released=start),
    )
    return LedgerChange(entry=entry, member=change, order=order)


def credit(
    rules: ProgramRules,
    member: MemberState,
    points: int,
    source_key: str,
    kind: EntryKind,
    reason: str,
    now: datetime,
    actor: str | None = None,
) -> LedgerChange:
    """Points available at once (a bonus, a goodwill credit): a new lot, counted in lifetime points. A blocked
    member gets no bonus (MemberBlockedError); a CRM user's goodwill still reaches them."""
    if kind is EntryKind.BONUS and member.blocked_reason is not None:
        raise MemberBlockedError(f"member {member.member_id} is blocked: no bonus while under review")
    return new_lot(
        rules,
        member,
        source_key,
        kind,
        now,
        points,
        rules.local_date(now),
        add={"lifetime": points},
        entry_fields={"lifetime": points, "reason": reason, "actor": actor},
        sets={"last_activity": now},
    )


def consumption(
    member_id: str, points: int, source_key: str, kind: EntryKind, reason: str, now: datetime, actor: str | None = None
) -> LedgerChange:
    """Available points taken from the front of the stream (a redemption, a deduction); never below zero."""
    entry = new_entry(member_id, source_key, kind, now, points=-points, reason=reason, actor=actor)
    add = {"available": -points, "consumed": points}
    if kind is EntryKind.REDEMPTION:
        add["redeemed"] = points
    change = MemberChange(member_id, add=add, expect=MemberExpectations(available_at_least=points))
    return LedgerChange(entry=entry, member=change)


def expiry(rules: ProgramRules, member: MemberState, lot: Entry, now: datetime) -> Decision:
    """What is left of a lot after its last valid day expires, as an entry; never points already consumed."""
    if lot.lot_end is None or lot.expires_on is None:
        raise UnknownOrderError(f"member {member.member_id} has no lot {lot.source_key}")
    if lot.expires_on >= rules.local_date(now):
        raise NotDueError(f"lot {lot.source_key} is valid until {lot.expires_on}; it expires the day after")
    points = max(0, lot.lot_end - member.consumed)
    if points == 0:
        return None
    entry = new_entry(
        member.member_id,
        f"expiry#{lot.source_key}",
        EntryKind.EXPIRY,
        now,
        points=-points,
        reason=f"{points} points from {lot.source_key} expired (valid until {lot.expires_on})",
    )
    change = MemberChange(
        member.member_id,
        add={"consumed": points, "available": -points, "expired": points},
        expect=MemberExpectations(consumed=member.consumed),
    )
    return LedgerChange(entry=entry, member=change)


# ---------------------------------------------------------------- tiers over time


def tier_assessment(rules: ProgramRules, member: MemberState, now: datetime) -> LedgerChange | None:
    """The decision on the member's oldest ended qualification period (kept or lost), or None if none is due.

    Keyed by the period's end, so a rerun decides nothing twice."""
    today = rules.local_date(now)
    period_end = member.tier_period_end
    due = assessment_due(rules, member.tier, period_end)
    if due is None or due > today or period_end is None or member.tier is None:
        return None
    decided = assess(rules, member.tier, period_end, member.qualifying, today)
    entry = new_entry(
        member.member_id,
        f"tier#{period_end.isoformat()}",
        EntryKind.TIER,
        now,
        points=0,
        reason=decided.reason,
        tier=decided.tier,
        tier_period_end=decided.period_end,
    )
    change = MemberChange(
        member.member_id,
        bump_qualifying_version=True,
        sets={"tier": decided.tier, "tier_period_end": decided.period_end}
        | ({"tier_changed_at": now} if decided.tier != member.tier else {}),
        expect=_unchanged_qualifying(member),
    )
    return LedgerChange(entry=entry, member=change)


def tier_override(
    rules: ProgramRules, member: MemberState, override: TierOverride, override_id: str, now: datetime
) -> LedgerChange:
    """A tier set by a named actor until its last day, shown instead of the earned tier; orders in flight look
    again (they earn at the tier in force)."""
    if override.valid_until < rules.local_date(now):
        raise InvalidAmountError(f"the override's last day {override.valid_until} has passed")
    entry = new_entry(
        member.member_id,
        f"tier_override#{override_id}",
        EntryKind.TIER_OVERRIDE,
        now,
        points=0,
        reason=(
            f"Tier set to {rules.tier(override.tier).display_name} until {override.valid_until} by {override.actor}: "
            f"{override.reason}"
        ),
        actor=override.actor,
        tier=override.tier,
        valid_until=override.valid_until,
    )
    change = MemberChange(
        member.member_id,
        bump_qualifying_version=True,
        sets={"tier_override": override, "last_activity": now},
        expect=_unchanged_qualifying(member),
    )
    return LedgerChange(entry=entry, member=change)


# ---------------------------------------------------------------- what a member sees


def summary(rules: ProgramRules, member: MemberState, open_lots: Iterable[Lot], today: date) -> MemberSummary:
    """The member's points, tier, segment, next expiry and profile as the CRM and the member API show them.

    ``open_lots`` in stream order, which is expiry order: only the lots of the next expiry date are read."""
    status = tier_status(rules, member.tier, member.tier_period_end, member.tier_override, member.qualifying, today)
    next_on: date | None = None
    next_points = 0
    for lot in open_lots:
        if next_on is not None and lot.expires_on != next_on:
            break
        next_on = lot.expires_on
        next_points += lot.remaining
    return MemberSummary(
        member_id=member.member_id,
        available=member.available,
        pending=member.pending,
        lifetime=member.lifetime,
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
            birthdate=member.birthdate,
            updated_at=member.profile_updated_at,
            email_consent_at=member.email_consent_at or member.profile_updated_at,
            sms_consent_at=member.sms_consent_at or member.profile_updated_at,
            erased_at=member.erased_at,
            email_parked=member.email_parked,
            blocked_reason=member.blocked_reason,
            joined_via=member.joined_via,
            leaving_on=member.leaving_on,
            terms_version=member.terms_version,
            blocked_at=member.blocked_at,
            email_parked_reason=member.email_parked_reason,
        ),
    )


def lot_of(entry: Entry, consumed: int) -> Lot:
    """An open lot as the member sees it: its size and what is still open of it."""
    assert entry.lot_start is not None and entry.lot_end is not None and entry.expires_on is not None
    return Lot(
        source_key=entry.source_key,
        earned_at=entry.created_at,
        expires_on=entry.expires_on,
        points=entry.lot_end - entry.lot_start,
        remaining=entry.lot_end - max(consumed, entry.lot_start),
    )


# ---------------------------------------------------------------- rewards

USES_KEPT_MONTHS = 13  # a member's monthly uses of a reward older than this are dropped (a limit is per month)


@dataclass(frozen=True)
class RedemptionRequest:
    """A member's request for a reward: in ``shop``, under ``redemption_id`` (from the request's idempotency key),
    ``request_hash`` naming what was asked; ``code`` the code the shop will get (for a reward with one)."""

    reward: Reward
    shop: str
    redemption_id: str
    request_hash: str
    code: str | None
    actor: str | None = None


def _counted(uses: RewardUses, month: str, delta: int, today: date) -> RewardUses:
    oldest = month_of(today - timedelta(days=31 * USES_KEPT_MONTHS))
    months = {m: n for m, n in uses.months.items() if m >= oldest}
    months[month] = max(0, months.get(month, 0) + delta)
    return RewardUses(uses.reward_id, months, max(0, uses.lifetime + delta), uses.version + 1)


def reward_redemption(
    rules: ProgramRules,
    catalogue: RewardCatalogue,
    member: MemberState,
    uses: RewardUses,
    request: RedemptionRequest,
    now: datetime,
) -> LedgerChange:
    """Points spent on a reward, oldest first, with the redemption and the member's uses of the reward; or
    RedemptionRefusedError naming the rule (shop, min_tier, lifetime, per_month, points), nothing written."""
    reward, today = request.reward, rules.local_date(now)
    if member.blocked_reason is not None:
        raise RedemptionRefusedError("blocked", f"the membership is blocked: {member.blocked_reason}")
    if request.shop and not catalogue.applies_to(reward, request.shop):  # no shop: a reward without a code
        raise RedemptionRefusedError("shop", f"reward {reward.id} is not offered in {request.shop}")
    tier = tier_in_force(rules, member.tier, member.tier_override, today)
    if tier_too_low(rules, reward, tier):
        raise RedemptionRefusedError(
            "min_tier", f"reward {reward.id} is for {reward.min_tier} members and up; the member is {tier}",
            tier=tier, minTier=reward.min_tier,
        )  # fmt: skip
    if (limit := limit_reached(reward, uses.months, uses.lifetime, today)) is not None:
        allowed = reward.per_month if limit == "per_month" else reward.lifetime
        period = "a month" if limit == "per_month" else "in all"
        raise RedemptionRefusedError(
            limit, f"reward {reward.id} may be redeemed {allowed} time(s) {period}; the member has", limit=allowed
        )
    if member.available < reward.cost:
        raise RedemptionRefusedError(
            "points", f"reward {reward.id} costs {reward.cost} points; the member has {member.available} available",
            balance=member.available, shortfall=reward.cost - member.available,
        )  # fmt: skip
    if reward.kind is RewardKind.DONATION:
        reason, status = f"Donation to {reward.cause}: {reward.name.en}", RedemptionStatus.FULFILLED
    elif reward.kind is RewardKind.EXPERIENCE:
        reason, status = f"Reward redeemed: {reward.name.en} (to be arranged)", RedemptionStatus.REQUESTED
    else:
        reason, status = f"Reward redeemed: {reward.name.en}", RedemptionStatus.PENDING
    source_key = f"redemption#{request.redemption_id}"
    entry = new_entry(
        member.member_id, source_key, EntryKind.REDEMPTION, now, points=-reward.cost, reason=reason,
        actor=request.actor, source=reward.id,
    )  # fmt: skip
    change = MemberChange(
        member.member_id,
        add={"available": -reward.cost, "consumed": reward.cost, "redeemed": reward.cost},
        expect=MemberExpectations(available_at_least=reward.cost),
    )
    redemption = Redemption(
        redemption_id=request.redemption_id,
        member_id=member.member_id,
        reward_id=reward.id,
        kind=reward.kind.value,
        shop=request.shop,
        points=reward.cost,
        status=status,
        created_at=now,
        updated_at=now,
        request_hash=request.request_hash,
        code=request.code if reward.has_code else None,
        valid_until=today + timedelta(days=reward.valid_days) if reward.has_code else None,
        actor=request.actor,
        task_state="pending" if reward.kind is RewardKind.EXPERIENCE else None,  # a person arranges it
    )
    uses_after = _counted(uses, month_of(today), 1, today)
    return LedgerChange(entry=entry, member=change, redemption=RedemptionWrite(redemption, None, uses_after))


def redemption_return(
    rules: ProgramRules,
    member: MemberState,
    redemption: Redemption,
    uses: RewardUses,
    status: RedemptionStatus,
    reason: str,
    now: datetime,
    points_back: bool = True,
) -> LedgerChange:
    """An unused redemption ended (cancelled, refused by the shop, expired): its points come back as a new lot
    (expiring no earlier than the member's newest), and it no longer counts toward the reward's limits.
    ``points_back`` False (a reward whose unused codes keep their points): only the status changes."""
    if redemption.status not in CANCELLABLE:
        raise RedemptionRefusedError(
            "status", f"redemption {redemption.redemption_id} is {redemption.status.value}; only an unused one ends",
            status=redemption.status.value,
        )  # fmt: skip
    today = rules.local_date(now)
    if not points_back:
        ended = replace(redemption, status=status, reason=reason, updated_at=now)
        return LedgerChange(redemption=RedemptionWrite(ended, redemption.status))
    change = new_lot(
        rules,
        member,
        f"redemption-return#{redemption.redemption_id}",
        EntryKind.REDEMPTION,
        now,
        redemption.points,
        today,
        add={"redeemed": -redemption.points},
        entry_fields={"reason": reason, "source": redemption.reward_id},
    )
    ended = replace(redemption, status=status, reason=reason, updated_at=now)
    uses_after = _counted(uses, month_of(rules.local_date(redemption.created_at)), -1, today)
    return replace(change, redemption=RedemptionWrite(ended, redemption.status, uses_after))
