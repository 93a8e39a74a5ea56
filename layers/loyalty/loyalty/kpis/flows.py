"""What each ledger entry adds to its month's figures: orders and their spend, and the points issued, released,
redeemed, expired, taken back by refunds and adjusted. Pure: the same for the stream and for a rebuild.

An entry counts in the calendar month it was written, in the programme's time zone, for the programme and for
the member's tier and segment as they stood when it was counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from loyalty.ledger.model import Entry, EntryKind
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
    "points_redeemed",
    "points_returned",  # redeemed points given back (a code that ended unused, a redemption cancelled): a new lot
    "points_expired",
    "points_adjusted",  # goodwill and corrections by CRM users, signed
    "nps_answers",  # answers to NPS surveys counted in the month (the latest per member and survey)
    "nps_promoters",  # of which 9 or 10
    "nps_passives",  # 7 or 8
    "nps_detractors",  # 0 to 6
)
PROGRAMME = "programme"


def local_month(rules: ProgramRules, moment: datetime) -> str:
    """The month (YYYY-MM) a moment falls in, in the programme's time zone: an entry counts in the month it was
    written, a member in the month they joined."""
    return month_key(rules.local_date(moment))


def contribution(entry: Entry) -> dict[str, int]:
    """What the entry adds to its month's counters (none for tier decisions and overrides: no points)."""
    kind = entry.kind
    if kind is EntryKind.ACCRUAL:
        return {"orders": 1, "order_base_points": entry.base_points or 0, "points_issued": entry.pending + entry.points}
    if kind is EntryKind.BONUS:
        return {"points_issued": entry.points}
    if kind is EntryKind.RELEASE:
        return {"points_released": entry.points}
    if kind is EntryKind.REVERSAL:  # what the refund took off what was earned (spent points included)
        return {"points_reversed": -entry.lifetime}
    if kind is EntryKind.REDEMPTION:
        return {"points_redeemed": -entry.points} if entry.points < 0 else {"points_returned": entry.points}
    if kind is EntryKind.EXPIRY:
        return {"points_expired": -entry.points}
    if kind is EntryKind.ADJUSTMENT:
        return {"points_adjusted": entry.points}
    return {}


def nps_contribution(score: int) -> dict[str, int]:
    """What an NPS answer adds to its month: an answer, and a promoter, a passive or a detractor."""
    kind = "nps_promoters" if score >= 9 else "nps_passives" if score >= 7 else "nps_detractors"
    return {"nps_answers": 1, kind: 1}


def net_promoter_score(figures: dict[str, int]) -> float | None:
    """NPS from a month's counters: promoters less detractors, per hundred answers (None without answers)."""
    answers = figures.get("nps_answers", 0)
    if not answers:
        return None
    return 100 * (figures.get("nps_promoters", 0) - figures.get("nps_detractors", 0)) / answers


def groups(tier: str | None, segment: str | None) -> tuple[str, ...]:
    """The figures an entry counts in: the programme's, its member's tier's and segment's."""
    return (PROGRAMME, f"tier#{tier or 'none'}", f"segment#{segment or 'none'}")


def recount(
    rules: ProgramRules, entries: Iterable[Entry], enrolled: Iterable[datetime] = ()
) -> dict[str, dict[str, int]]:
    """The programme's figures per month recomputed from ledger entries (and the members' enrolment times), as the
    stream counts them: an audit of the stored figures (a counter never added to is absent)."""
    months: dict[str, dict[str, int]] = {}
    for joined in enrolled:
        counts = months.setdefault(local_month(rules, joined), {})
        counts["members_enrolled"] = counts.get("members_enrolled", 0) + 1
    buyers: set[tuple[str, str]] = set()
    first: dict[str, str] = {}  # member -> the month of their first purchase
    for entry in sorted(entries, key=lambda e: e.created_at):
        month = local_month(rules, entry.created_at)
        flows = contribution(entry)
        if entry.kind is EntryKind.ACCRUAL and (month, entry.member_id) not in buyers:
            buyers.add((month, entry.member_id))
            flows["purchasers"] = 1
            flows["returning_purchasers"] = int(first.setdefault(entry.member_id, month) < month)
        for name, value in flows.items():
            if value:
                counts = months.setdefault(month, {})
                counts[name] = counts.get(name, 0) + value
    return months
