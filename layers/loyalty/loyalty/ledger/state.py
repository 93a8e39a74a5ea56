"""What the ledger reads (a member's and an order's state) and what it writes (one change, applied atomically).

A store (loyalty.ledger.store.LedgerStore) loads these states and commits a `LedgerChange` all or nothing:
the entry only if no entry with its key exists ("already applied" otherwise), the member's counters by their
deltas and only while the member still matches `MemberExpectations`, and the order's new state only while
the order is still at the version read ("conflict" otherwise: the service reads again and decides again).
Counters are never written back as read: a balance changes only by a delta under a condition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from loyalty.ledger.model import Entry
from loyalty.programme.orders import Order
from loyalty.programme.tiers import TierOverride

COUNTERS = ("available", "pending", "lifetime", "released", "consumed", "redeemed", "expired")


@dataclass(frozen=True)
class OfferGrant:
    """An offer granted to the member that changes what orders earn within its validity."""

    code: str
    valid_from: date
    valid_until: date
    multiplier: Decimal | None = None
    bonus_points: int | None = None
    used: str | None = None  # a bonus offer: the order that used it (it pays once)


@dataclass(frozen=True)
class MemberState:
    """One member as stored: profile, counters, qualifying points per month, tier, segment and offers.

    ``released`` is the length of the member's lot stream and ``consumed`` how much of its front redemptions,
    expiry and deductions have taken (``available == released - consumed``)."""

    member_id: str
    enrolled_at: datetime
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    locale: str | None = None
    email_consent: bool | None = None
    email_consent_at: datetime | None = None
    sms_consent: bool | None = None
    sms_consent_at: datetime | None = None
    crm_contact_id: str | None = None
    birthdate: date | None = None
    profile_updated_at: datetime | None = None
    last_activity: datetime | None = None
    available: int = 0
    pending: int = 0
    lifetime: int = 0
    released: int = 0
    consumed: int = 0
    redeemed: int = 0
    expired: int = 0
    lot_expiry_max: date | None = None  # the newest lot's expiry: a new lot never expires before it
    qualifying: Mapping[str, int] = field(default_factory=dict)  # "YYYY-MM" -> qualifying points
    qualifying_version: int = 0  # +1 on every change of qualifying points, the tier or its override
    tier: str | None = None  # the earned tier; None: the lowest
    tier_period_end: date | None = None
    tier_changed_at: datetime | None = None  # when the earned tier last changed (the figures' tier moves)
    erased_at: datetime | None = None  # when the person's data was erased (GDPR): the amounts stay
    email_parked: str | None = None  # a new e-mail another member holds (never merged silently), and why
    blocked_reason: str | None = None  # set while the member is blocked (under review): no earning, no redeeming
    joined_via: str | None = None  # where they joined: a shop ("shopify:<domain>"), "crm", "import"
    leaving_on: date | None = None  # the member leaves the programme: earning stops, points forfeited that day
    terms_version: str | None = None  # the programme terms in force when they joined (program.yaml)
    blocked_at: datetime | None = None
    blocked_by: str | None = None
    email_parked_reason: str | None = None
    tier_override: TierOverride | None = None
    segment: str | None = None
    segment_reason: str | None = None
    segment_rfm: str | None = None
    segment_on: date | None = None  # the day the segment was judged for
    segment_at: datetime | None = None  # when it was computed (from the entries written up to then)
    offers: Mapping[str, OfferGrant] = field(default_factory=dict)  # by grant key (code and validity)


ENROLMENT_FIELDS = (  # what a new member is stored with, besides their id and enrolment time
    "email",
    "first_name",
    "last_name",
    "phone",
    "locale",
    "email_consent",
    "email_consent_at",
    "sms_consent",
    "sms_consent_at",
    "last_activity",
    "profile_updated_at",
    "joined_via",
    "terms_version",
)


def as_enrolled(member: MemberState) -> MemberState:
    """The member as enrolment stores them: who they are and what they agreed to; every counter at zero."""
    return MemberState(
        member_id=member.member_id,
        enrolled_at=member.enrolled_at,
        **{name: getattr(member, name) for name in ENROLMENT_FIELDS},
    )


@dataclass(frozen=True)
class LineState:
    """An order line's earning state: units and points as earned, and what is left after refunds."""

    quantity: int
    quantity_left: int
    points: int
    points_left: int
    value: Decimal = Decimal(0)  # the line's value (ex-VAT, after discounts) and what refunds left of it
    value_left: Decimal = Decimal(0)


class OrderStatus(StrEnum):
    PENDING = "pending"  # earned, waiting for the return window
    RELEASED = "released"  # its points are available
    CANCELLED = "cancelled"  # refunded in full before release


@dataclass(frozen=True)
class OrderState:
    """An order's earning state. ``member_id`` is None while only refunds that came before it are known
    (``parked``: refund id -> {line id: quantity}, {} for the whole order). ``version`` counts the writes."""

    order_key: str
    version: int = 0
    member_id: str | None = None
    status: OrderStatus | None = None
    earned: int = 0
    left: int = 0
    qualifying_earned: int = 0
    qualifying_left: int = 0
    qualifying_month: str | None = None
    earned_on: date | None = None
    release_on: date | None = None  # while pending: the day its points become available
    currency: str | None = None  # of its lines' values
    lines: Mapping[str, LineState] = field(default_factory=dict)
    refunds: frozenset[str] = frozenset()
    parked: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def shop(self) -> str:
        return self.order_key.split("#", 1)[0]


@dataclass(frozen=True)
class MemberExpectations:
    """What a decision relied on: the change applies only while the member still matches (and exists)."""

    qualifying_version: int | None = None
    released: int | None = None
    consumed: int | None = None
    available_at_least: int | None = None


@dataclass(frozen=True)
class MemberChange:
    """Deltas to the member's counters and monthly qualifying points, and values to set (None removes one).

    ``sets`` may name tier, tier_period_end, tier_override, last_activity and lot_expiry_max."""

    member_id: str
    add: Mapping[str, int] = field(default_factory=dict)  # counter -> delta (see COUNTERS)
    qualifying: Mapping[str, int] = field(default_factory=dict)  # month -> delta
    bump_qualifying_version: bool = False
    sets: Mapping[str, Any] = field(default_factory=dict)
    offers_used: Mapping[str, str] = field(default_factory=dict)  # grant key -> the order that used it
    expect: MemberExpectations = MemberExpectations()


@dataclass(frozen=True)
class OrderChange:
    """The order's new state, written only while the stored order is at ``state.version - 1``."""

    state: OrderState


class RedemptionStatus(StrEnum):
    PENDING = "pending"  # the code is made; the shop has not confirmed it yet
    ACTIVE = "active"  # the shop has the code
    USED = "used"  # an order used the code
    CANCELLED = "cancelled"  # cancelled unused: the points came back
    EXPIRED = "expired"  # ended unused
    REFUSED = "refused"  # the shop refused the code: the points came back
    FULFILLED = "fulfilled"  # a donation: nothing more to do (the entry is the receipt)
    REQUESTED = "requested"  # an experience: a person fulfils it


UNUSED = (RedemptionStatus.PENDING, RedemptionStatus.ACTIVE)  # a code no order has used yet
CANCELLABLE = (*UNUSED, RedemptionStatus.REQUESTED)


@dataclass(frozen=True)
class Redemption:
    """A reward a member spent points on. ``request_hash`` identifies the request that made it (an
    Idempotency-Key sent again with another request is refused)."""

    redemption_id: str
    member_id: str
    reward_id: str
    kind: str
    shop: str
    points: int
    status: RedemptionStatus
    created_at: datetime
    updated_at: datetime
    request_hash: str
    code: str | None = None
    valid_until: date | None = None
    actor: str | None = None
    reason: str | None = None  # why the status is what it is (a refusal, a cancellation)
    order_key: str | None = None  # the order that used the code
    shop_code_id: str | None = None  # the shop's id of the code, once the shop has it
    apply_url: str | None = None  # the shop's link that applies the code at checkout
    task_state: str | None = None  # an experience's CRM Task: pending, then pushed, no_contact or refused


@dataclass(frozen=True)
class RewardUses:
    """How often a member has redeemed one reward: by month ("YYYY-MM") and in all. ``version`` counts writes."""

    reward_id: str
    months: Mapping[str, int] = field(default_factory=dict)
    lifetime: int = 0
    version: int = 0


@dataclass(frozen=True)
class RedemptionWrite:
    """A redemption as the change leaves it, written only if none with its id exists (``previous`` None) or
    while its status is still ``previous``; and the member's uses of the reward, written only while they are at
    ``uses.version - 1``."""

    redemption: Redemption
    previous: RedemptionStatus | None = None
    uses: RewardUses | None = None


@dataclass(frozen=True)
class RedemptionState:
    """What a redemption reads, in one go: the member, the redemption with that id (if any) and the member's
    uses of the reward."""

    member: MemberState | None
    redemption: Redemption | None
    uses: RewardUses


@dataclass(frozen=True)
class LedgerChange:
    """One atomic write: the entry (if any; only if new), the member change, the order change, and the member's
    next review brought forward to ``review_on`` (written only while no review is due by then; a review due later
    or none is replaced, so the member is looked at again by that day), and a redemption with its reward's uses."""

    entry: Entry | None = None
    member: MemberChange | None = None
    order: OrderChange | None = None
    review_on: date | None = None
    redemption: RedemptionWrite | None = None


@dataclass(frozen=True)
class MemberAndOrder:
    """What an order's accrual or reversal reads, in one go: the member, the order, when the member is next
    reviewed (None: no review planned) and, for an accrual, the catalogue's categories of the order's products
    (product id -> categories; a product the catalogue does not know is absent) and the redemptions whose codes
    the order used (code, upper case -> (member id, redemption id))."""

    member: MemberState | None
    order: OrderState | None
    review_on: date | None = None
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    redemptions: Mapping[str, tuple[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class PreparedAccrual:
    """A paid order ready to accrue (loyalty.ledger.service.Ledger.prepare_accrual): the order as it will earn (its
    lines' categories from the catalogue, if asked) and the state its accrual read, which the accrual decides on
    first; ``unknown_products``: the order's products the catalogue did not know (they earn the base rate)."""

    member_id: str
    order: Order
    state: MemberAndOrder
    unknown_products: tuple[str, ...] = ()


def changed(member: MemberState, change: MemberChange) -> MemberState:
    """The member as ``change`` leaves them: counters and monthly qualifying points moved by their deltas, values
    set (None removes one), bonus offers marked used. The store applies the same change by deltas."""
    values: dict[str, object] = {name: getattr(member, name) + delta for name, delta in change.add.items()}
    if change.qualifying:
        qualifying = dict(member.qualifying)
        for month, delta in change.qualifying.items():
            qualifying[month] = qualifying.get(month, 0) + delta
        values["qualifying"] = qualifying
    if change.bump_qualifying_version:
        values["qualifying_version"] = member.qualifying_version + 1
    for name, value in change.sets.items():
        values[name] = value
    if change.offers_used:
        offers = dict(member.offers)
        for key, order in change.offers_used.items():
            offers[key] = replace(offers[key], used=order)
        values["offers"] = offers
    return replace(member, **values)  # type: ignore[arg-type]


class EmailMove(StrEnum):
    """What became of a member's new e-mail address."""

    CHANGED = "changed"  # the member and the e-mail's guard have it
    UNCHANGED = "unchanged"  # the member had it already
    TAKEN = "taken"  # another member holds it: parked on the member with the reason, never merged
    OLDER = "older"  # a later change of the member's profile was applied already: ignored


class Commit(StrEnum):
    APPLIED = "applied"
    ALREADY_APPLIED = "already_applied"  # an entry with this key exists: nothing was written
    CONFLICT = "conflict"  # the member or the order changed since they were read: nothing was written
