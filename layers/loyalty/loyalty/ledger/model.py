"""The points ledger's vocabulary: entries, results and what a member's summary shows.

How the ledger keeps its invariants (DESIGN.md, "Ledger invariants"):

* Every operation is one change written atomically (loyalty.ledger.state.LedgerChange): the immutable entry,
  keyed by its source and written only if new, the member's counters (changed by deltas, under conditions on
  what the decision read) and, for orders, the order's earning state. A failed condition on the entry means
  "already applied": the original entry is returned and nothing changes. loyalty.ledger.decisions decides the
  change, loyalty.ledger.service loads, commits and retries, the store (loyalty.ledger.store) only writes.
* Available points form one *lot stream* per member. A lot (released order points, a bonus, a goodwill
  credit) occupies ``[lot_start, lot_end)`` of the stream; ``released`` is the stream's length and
  ``consumed`` how much of it redemptions, expiry and deductions have taken, always from the front, so the
  oldest points go first and ``available == released - consumed``. A lot is open while
  ``lot_end > consumed``; expiring it takes only ``lot_end - consumed``, never points already redeemed or
  expired. A lot's expiry date is never earlier than an older lot's, so stream order is expiry order.
* A refund reverses what the order stored per line when it was earned: after a refund, a line keeps
  ``round_half_up(points * quantity_left / quantity)``, so a full refund reverses exactly what is left.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class EntryKind(StrEnum):
    ACCRUAL = "accrual"  # order points, pending until the return window has passed
    RELEASE = "release"  # pending order points become available (a lot)
    REVERSAL = "reversal"  # a refund takes back what the order earned
    REDEMPTION = "redemption"
    EXPIRY = "expiry"
    ADJUSTMENT = "adjustment"  # goodwill credit or deduction by a named actor
    BONUS = "bonus"  # signup, birthday, referral, review
    TIER = "tier"  # a qualification period ended: the tier kept or lost (no points)
    TIER_OVERRIDE = "tier_override"  # a CRM user set the tier for a while (no points)


class Entry(BaseModel):
    """One immutable ledger entry. Deltas say what it did to each of the member's counters."""

    model_config = ConfigDict(frozen=True)

    member_id: str
    source_key: str
    kind: EntryKind
    created_at: datetime
    points: int  # change to available points
    pending: int = 0  # change to pending points
    lifetime: int = 0  # change to lifetime (net earned) points
    qualifying: int = 0  # change to qualifying points
    reason: str
    source: str | None = None
    order_key: str | None = None
    actor: str | None = None
    campaigns: tuple[str, ...] = ()
    lines: dict[str, int] | None = None  # points per order line, for accruals and reversals
    lot_start: int | None = None
    lot_end: int | None = None
    expires_on: date | None = None
    unrecovered: int = 0  # reversal points the member had already spent
    month: str | None = None  # "YYYY-MM" whose qualifying points it changes
    tier: str | None = None  # accrual: the tier it earned at; tier entries: the tier decided or set
    tier_reached: str | None = None  # accrual: the tier the order reached at once
    tier_period_end: date | None = None
    valid_until: date | None = None  # tier override: its last day
    placed_on: date | None = None  # accrual: the order's date
    base_points: int | None = None  # accrual: the order's spend in base points (x1)
    value: Decimal | None = None  # accrual: the order's value (loyalty.programme.orders.order_value); reversal:
    currency: str | None = None  # the value the refund took off it, negative; in this currency (ISO 4217)
    discounted: bool | None = None  # accrual: a discount code was used
    categories: tuple[str, ...] = ()  # accrual: the order's product categories
    offers: tuple[str, ...] = ()  # accrual: codes of the member's offers that applied


class LedgerResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    entry: Entry
    duplicate: bool = False


class ParkedRefund(BaseModel):
    """A refund that arrived before its order: kept on the order and applied when the order is earned."""

    model_config = ConfigDict(frozen=True)

    order_key: str
    refund_id: str
    duplicate: bool = False


class Lot(BaseModel):
    model_config = ConfigDict(frozen=True)

    source_key: str
    earned_at: datetime
    expires_on: date
    points: int  # the lot's size
    remaining: int  # what is still open (not redeemed, expired or deducted)


class MemberProfile(BaseModel):
    model_config = ConfigDict(frozen=True)

    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    locale: str | None = None
    email_consent: bool | None = None
    sms_consent: bool | None = None
    crm_contact_id: str | None = None
    birthdate: date | None = None
    updated_at: datetime | None = None  # time of the newest profile change applied
    email_consent_at: datetime | None = None  # when each consent was last stated (its evidence)
    sms_consent_at: datetime | None = None
    erased_at: datetime | None = None  # the person's data was erased (GDPR): the CRM forgets them too
    email_parked: str | None = None  # a new e-mail another member holds, and why it waits
    blocked_reason: str | None = None  # set while the member is blocked (under review)
    joined_via: str | None = None  # where they joined (a shop, "crm", "import") and the terms they accepted
    leaving_on: date | None = None  # the member is leaving: earning stopped, points forfeited that day
    terms_version: str | None = None
    blocked_at: datetime | None = None
    email_parked_reason: str | None = None


class MemberSummary(BaseModel):
    model_config = ConfigDict(frozen=True)

    member_id: str
    available: int
    pending: int
    lifetime: int
    qualifying: int  # qualifying points counting toward a tier today (the running total)
    tier: str  # the tier in force: a CRM user's override while it lasts, else the earned tier
    earned_tier: str
    next_tier: str | None = None
    points_to_next_tier: int | None = None
    points_to_keep_tier: int | None = None  # still needed this period to keep the earned tier
    tier_expires_on: date | None = None  # last day of the tier unless kept (or of the override)
    tier_period_end: date | None = None
    tier_override_until: date | None = None  # set while a CRM user's override is in force
    tier_override_reason: str | None = None
    segment: str | None = None
    segment_reason: str | None = None
    segment_rfm: str | None = None
    next_expiry_on: date | None
    next_expiry_points: int
    enrolled_at: datetime
    last_activity: datetime | None
    profile: MemberProfile = MemberProfile()


class Accrual(BaseModel):
    """An order's accrual and the member's summary right after it (loyalty.ledger.service.Ledger.accrue_prepared).

    The summary is the member as read for the accrual with its change applied (or read again when that is not
    known): its tier figures are exact, since the write was conditional on them; the next expiry is not read
    (none), and counters that other writers move without touching the tier (a redemption meanwhile) are as
    read."""

    model_config = ConfigDict(frozen=True)

    result: LedgerResult
    summary: MemberSummary


class HistoryPage(BaseModel):
    model_config = ConfigDict(frozen=True)

    entries: tuple[Entry, ...]
    cursor: str | None  # pass back to get the next (older) page; None at the end
