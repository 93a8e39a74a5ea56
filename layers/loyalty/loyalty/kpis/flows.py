"""What each ledger entry adds to its month's figures: orders and their value, and the points issued, released,
redeemed, expired, taken back by refunds and adjusted; and the months a member counts as active in. Pure: the
same for the stream and for a rebuild.

An entry counts in the calendar month it was written, in the programme's time zone, for the programme and for
the member's tier and segment as they stood when it was counted. Money is counted per currency (``orders#SEK``,
``order_value#SEK``): the order's value ex-VAT, after discounts, gift cards and shipping aside, less what
refunds took off it (in the month of the refund).

Active: a member with an order or a redemption in the last 12 months. Each month's ``active_change`` is the
members who became active less those who lapsed (12 months after their last activity), so the members active at
a month's end are the sum of the changes up to it (loyalty.kpis.closing keeps that sum month by month).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal

from loyalty.ledger.model import Entry, EntryKind
from loyalty.ports.kpis import PROGRAMME, Count, MemberMove
from loyalty.programme.earning import earning_base
from loyalty.programme.orders import Order
from loyalty.programme.rules import ProgramRules
from loyalty.programme.tiers import month_key

COUNTERS = (
    "members_enrolled",  # members who joined in the month (the programme's figures only)
    "orders",  # orders accrued (a refund later does not take one off)
    "purchasers",  # members with an order accrued in the month, each once
    "returning_purchasers",  # of which had bought in an earlier month
    "order_base_points",  # their spend in base points as bought (what they earn at x1: every currency compares)
    "points_issued",  # earned by orders (pending at first), bonuses
    "points_released",  # pending points that became spendable
    "points_reversed",  # points refunds took off what orders earned (those already spent included)
    "points_unrecovered",  # of which the member had already spent (taken off what they earned, not what they hold)
    "points_redeemed",
    "points_returned",  # redeemed points given back (a code that ended unused, a redemption cancelled): a new lot
    "points_expired",
    "points_adjusted",  # goodwill and corrections by CRM users, signed
    "nps_answers",  # answers to NPS surveys counted in the month (the latest per member and survey)
    "nps_promoters",  # of which 9 or 10
    "nps_passives",  # 7 or 8
    "nps_detractors",  # 0 to 6
    "points_held",  # the change to the points members hold (available and pending): the outstanding's movement
    "active_change",  # members who became active less those who lapsed (the programme's figures only)
    "tier_upgrades",  # members whose earned tier went up (the programme's figures)
    "tier_downgrades",  # and down
    "segment_moves",  # members whose segment changed (the programme's figures)
    "members_change",  # a tier's or segment's members who came less those who left (its figures only)
    "guest_orders",  # orders of shoppers who are not members (guest checkouts), the programme's figures
    "guest_purchasers",  # those shoppers, each once a month (by their hashed e-mail)
)
MOVES = ("tier_upgrades", "tier_downgrades", "segment_moves", "members_change")  # from the member's item
PER_CURRENCY = (
    "orders",  # orders#<currency>: the orders in that currency
    "order_value",  # order_value#<currency>: their value, less refunds (exact)
    "guest_orders",  # guest_orders#<currency>: non-members' orders in that currency
    "guest_order_value",  # guest_order_value#<currency>: their value as bought (exact)
)
PER_OFFER = (  # the programme's figures, by the month an offer was decided in
    "offers_sent",  # offers_sent#<trigger>: messages sent (each channel's)
    "offer_members",  # offer_members#<trigger>#<arm>: members an offer measured against its holdout was for
    "offer_converted",  # offer_converted#<trigger>#<arm>: of which ordered within the conversion window
    "offer_revenue",  # offer_revenue#<trigger>#<arm>: their orders' value in the window (reporting currency)
    "offer_revenue_sq",  # offer_revenue_sq#<trigger>#<arm>: the sum of each member's squared revenue
)
ARMS = ("offered", "holdout")  # offered: every member not held out, whatever became of the message
ACTIVE_MONTHS = 12


def is_counter(name: str) -> bool:
    """A figure's name: one of COUNTERS, or a per-currency one such as ``order_value#SEK``."""
    figure, _, rest = name.partition("#")
    if figure in PER_OFFER:
        return bool(rest) and (figure == "offers_sent" or rest.rpartition("#")[2] in ARMS)
    return name in COUNTERS or (figure in PER_CURRENCY and len(rest) == 3 and rest.isupper())


def revenue_rates(rules: ProgramRules, reporting: str) -> dict[str, Decimal]:
    """What a unit of each currency is worth in the reporting currency, as the programme's earning rates say
    (points per unit of each over points per unit of the reporting one): the offers' revenue compares across
    currencies without exchange rates from outside."""
    base = rules.currencies[reporting].points_per_unit
    return {currency: rule.points_per_unit / base for currency, rule in rules.currencies.items()}


def offer_arm(status: str) -> str:
    """The arm of an offer's decision: held out, or offered (sent, or refused, capped or failed on the way: the
    holdout is drawn first, so both arms count every member the offer was for)."""
    return "holdout" if status == "holdout" else "offered"


def shift_month(month: str, months: int) -> str:
    """The month (YYYY-MM) ``months`` after ``month`` (before, if negative)."""
    year, number = divmod(int(month[:4]) * 12 + int(month[5:7]) - 1 + months, 12)
    return f"{year:04d}-{number + 1:02d}"


def is_ledger_figure(name: str) -> bool:
    """A figure the ledger's entries, the members' enrolments and the NPS answers determine (what the audit
    recomputes): not the offers' (their own records) nor the members' moves (their items' changes)."""
    return name.partition("#")[0] not in PER_OFFER and name not in MOVES and not name.startswith("guest_")


def moves(rules: ProgramRules, move: MemberMove) -> dict[str, dict[str, Count]]:
    """What a member joining, or changing earned tier or segment, adds to its month: +1 to the members of the tier
    and segment they came to, -1 to those they left, and the programme's upgrades, downgrades and segment moves."""
    lowest = rules.tiers[0].name
    ranks = {tier.name: rank for rank, tier in enumerate(rules.tiers)}
    before, after = move.tier_before or lowest, move.tier_after or lowest
    counts: dict[str, dict[str, Count]] = {}

    def member(group: str, change: int) -> None:
        kept = counts.setdefault(group, {})
        kept["members_change"] = int(kept.get("members_change", 0)) + change

    if move.joined:  # a new member of the lowest tier (or the one they joined in) and of no segment yet
        for group in (f"tier#{after}", f"segment#{move.segment_after or 'none'}"):
            member(group, 1)
            counts[group]["members_enrolled"] = 1
        return counts
    if before != after:
        member(f"tier#{before}", -1)
        member(f"tier#{after}", 1)
        counts[PROGRAMME] = {"tier_upgrades" if ranks.get(after, 0) > ranks.get(before, 0) else "tier_downgrades": 1}
    if move.segment_before != move.segment_after:
        member(f"segment#{move.segment_before or 'none'}", -1)
        member(f"segment#{move.segment_after or 'none'}", 1)
        counts.setdefault(PROGRAMME, {})["segment_moves"] = 1
    return counts


def is_activity(entry: Entry) -> bool:
    """An order or a redemption: what keeps a member active."""
    return entry.kind is EntryKind.ACCRUAL or (entry.kind is EntryKind.REDEMPTION and entry.points < 0)


def active_moves(previous: str | None, month: str) -> dict[str, int]:
    """The ``active_change`` of each month when a member last active in ``previous`` (None: never) is active in
    the later ``month``: active from ``month`` (or still, if they had not lapsed yet) until 12 months on."""
    lapses = shift_month(month, ACTIVE_MONTHS)
    if previous is None or shift_month(previous, ACTIVE_MONTHS) <= month:
        return {month: 1, lapses: -1}  # (again) active from this month
    return {shift_month(previous, ACTIVE_MONTHS): 1, lapses: -1}  # the lapse moves 12 months after this month


def local_month(rules: ProgramRules, moment: datetime) -> str:
    """The month (YYYY-MM) a moment falls in, in the programme's time zone: an entry counts in the month it was
    written, a member in the month they joined."""
    return month_key(rules.local_date(moment))


def contribution(entry: Entry) -> dict[str, Count]:
    """What the entry adds to its month's counters (none for tier decisions and overrides: no points)."""
    counts = _flows(entry)
    if entry.points + entry.pending:
        counts["points_held"] = entry.points + entry.pending
    if entry.value is not None and entry.currency:
        if entry.kind is EntryKind.ACCRUAL:
            counts[f"orders#{entry.currency}"] = 1
        counts[f"order_value#{entry.currency}"] = entry.value
    return counts


def _flows(entry: Entry) -> dict[str, Count]:
    kind = entry.kind
    if kind is EntryKind.ACCRUAL:
        return {"orders": 1, "order_base_points": entry.base_points or 0, "points_issued": entry.pending + entry.points}
    if kind is EntryKind.BONUS:
        return {"points_issued": entry.points}
    if kind is EntryKind.RELEASE:
        return {"points_released": entry.points}
    if kind is EntryKind.REVERSAL:  # what the refund took off what was earned (spent points included)
        return {"points_reversed": -entry.lifetime, "points_unrecovered": entry.unrecovered}
    if kind is EntryKind.REDEMPTION:
        return {"points_redeemed": -entry.points} if entry.points < 0 else {"points_returned": entry.points}
    if kind is EntryKind.EXPIRY:
        return {"points_expired": -entry.points}
    if kind is EntryKind.ADJUSTMENT:
        return {"points_adjusted": entry.points}
    return {}


BUSINESS_METRICS = {  # counter -> the CloudWatch metric (EMF) the KPI function adds for a batch
    "orders": "Orders",
    "points_issued": "PointsIssued",
    "points_redeemed": "PointsRedeemed",
    "points_expired": "PointsExpired",
    "points_reversed": "PointsReversed",
}


def business_figures(entries: Iterable[Entry]) -> dict[str, int]:
    """What a batch of entries adds to the programme's business metrics (each named as CloudWatch shows it)."""
    totals = dict.fromkeys(BUSINESS_METRICS.values(), 0)
    for entry in entries:
        for name, value in contribution(entry).items():
            if name in BUSINESS_METRICS:
                totals[BUSINESS_METRICS[name]] += int(value)
    return totals


def guest_contribution(order: Order) -> dict[str, Count]:
    """What a non-member's order adds to its month: an order, and its value in its currency (ex-VAT, after
    discounts, gift cards and shipping aside, as a member's)."""
    value = sum((earning_base(line, order.prices_include_tax, False) for line in order.lines), Decimal(0))
    return {"guest_orders": 1, f"guest_orders#{order.currency}": 1, f"guest_order_value#{order.currency}": value}


def nps_contribution(score: int) -> dict[str, Count]:
    """What an NPS answer adds to its month: an answer, and a promoter, a passive or a detractor."""
    kind = "nps_promoters" if score >= 9 else "nps_passives" if score >= 7 else "nps_detractors"
    return {"nps_answers": 1, kind: 1}


def net_promoter_score(figures: Mapping[str, Count]) -> float | None:
    """NPS from a month's counters: promoters less detractors, per hundred answers (None without answers)."""
    answers = figures.get("nps_answers", 0)
    if not answers:
        return None
    return 100 * float(figures.get("nps_promoters", 0) - figures.get("nps_detractors", 0)) / float(answers)


def recount(
    rules: ProgramRules, entries: Iterable[Entry], enrolled: Iterable[datetime] = ()
) -> dict[str, dict[str, Count]]:
    """The programme's figures per month recomputed from ledger entries (and the members' enrolment times), as the
    stream counts them: an audit of the stored figures (a counter never added to is absent)."""
    months: dict[str, dict[str, Count]] = {}

    def add(month: str, flows: Mapping[str, Count]) -> None:
        for name, value in flows.items():
            if value:
                counts = months.setdefault(month, {})
                counts[name] = counts.get(name, 0) + value

    for joined in enrolled:
        add(local_month(rules, joined), {"members_enrolled": 1})
    buyers: set[tuple[str, str]] = set()
    first: dict[str, str] = {}  # member -> the month of their first purchase
    active: dict[str, str] = {}  # member -> the month they were last active in
    for entry in sorted(entries, key=lambda e: e.created_at):
        month = local_month(rules, entry.created_at)
        flows = contribution(entry)
        if entry.kind is EntryKind.ACCRUAL and (month, entry.member_id) not in buyers:
            buyers.add((month, entry.member_id))
            flows["purchasers"] = 1
            flows["returning_purchasers"] = int(first.setdefault(entry.member_id, month) < month)
        add(month, flows)
        previous = active.get(entry.member_id)
        if is_activity(entry) and (previous is None or previous < month):
            active[entry.member_id] = month
            for moved, change in active_moves(previous, month).items():
                add(moved, {"active_change": change})
    return months
