"""Segments from constructed purchase histories, one for each class, with the reason a CRM user reads."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from loyalty.crm.fields import SEGMENTS
from loyalty.ledger.model import Entry, EntryKind
from loyalty.ledger.replay import purchases_from
from loyalty.programme.rules import ProgramRules, SegmentRules
from loyalty.programme.segments import Purchase, assign_segment, rfm_scores

TODAY = date(2026, 11, 29)
LONG_AGO = date(2024, 1, 10)


@pytest.fixture
def segment_rules(rules: ProgramRules) -> SegmentRules:
    return rules.segments


def buys(
    days_ago: list[int],
    base_points: int = 150,
    discounted: int = 0,
    in_campaign: int = 0,
    categories: tuple[tuple[str, ...], ...] = (("outdoor",),),
) -> list[Purchase]:
    """Purchases so many days before TODAY; the first `discounted` with a code, the first `in_campaign` in one."""
    return [
        Purchase(
            order_key=f"o{n}",
            placed_on=TODAY - timedelta(days=days),
            base_points=base_points,
            discounted=n < discounted,
            in_campaign=n < in_campaign,
            categories=categories[n % len(categories)],
        )
        for n, days in enumerate(days_ago)
    ]


def test_new_member(segment_rules: SegmentRules) -> None:
    segment = assign_segment(segment_rules, buys([3]), 0, TODAY - timedelta(days=50), TODAY)
    assert (segment.name, segment.reason) == ("new", "Joined 50 days ago, 1 order so far")
    # the review comes back the day the member stops being new (before the regular 30 days)
    assert segment.next_review == TODAY + timedelta(days=10)


def test_lapsed_member(segment_rules: SegmentRules) -> None:
    segment = assign_segment(segment_rules, buys([400]), 0, LONG_AGO, TODAY)
    assert (segment.name, segment.reason) == ("lapsed", "No order in 12 months (member for 1054 days)")
    assert assign_segment(segment_rules, [], 0, LONG_AGO, TODAY).name == "lapsed"


def test_at_risk_member(segment_rules: SegmentRules) -> None:
    segment = assign_segment(segment_rules, buys([130, 200, 250]), 0, LONG_AGO, TODAY)
    assert (segment.name, segment.reason) == ("at_risk", "No order for 130 days; 3 orders in 12 months before that")


def test_loyal_ambassador(segment_rules: SegmentRules) -> None:
    history = buys([5, 40, 80, 120, 160, 200, 240], categories=(("shoes",), ("outdoor",), ("accessories",)))
    segment = assign_segment(segment_rules, history, 2, LONG_AGO, TODAY)
    assert (segment.name, segment.reason) == (
        "loyal_ambassador",
        "7 orders in 12 months across 3 categories, 2 referrals",
    )
    # without referrals the same buyer is not an ambassador
    assert assign_segment(segment_rules, history, 0, LONG_AGO, TODAY).name != "loyal_ambassador"


def test_price_driven(segment_rules: SegmentRules) -> None:
    segment = assign_segment(
        segment_rules, buys([10, 50, 90, 150, 200, 220, 250, 300], discounted=6), 0, LONG_AGO, TODAY
    )
    assert (segment.name, segment.reason) == ("price_driven", "8 orders in 12 months, 6 with a discount code")


def test_opportunistic(segment_rules: SegmentRules) -> None:
    segment = assign_segment(segment_rules, buys([2, 90, 200, 300], in_campaign=4), 0, LONG_AGO, TODAY)
    assert (segment.name, segment.reason) == ("opportunistic", "4 orders in 12 months, 4 in campaigns or bonus offers")


def test_convenience_driven(segment_rules: SegmentRules) -> None:
    history = buys([3, 20, 40, 60, 80, 100, 110], base_points=35, categories=(("coffee",), ("filters",)))
    segment = assign_segment(segment_rules, history, 0, LONG_AGO, TODAY)
    assert (segment.name, segment.reason) == (
        "convenience_driven",
        "7 orders in 12 months, small baskets (average 35 base points) in 2 categories",
    )


def test_satisfaction_driven(segment_rules: SegmentRules) -> None:
    segment = assign_segment(
        segment_rules, buys([15, 100, 190, 280], base_points=400, discounted=1), 0, LONG_AGO, TODAY
    )
    assert (segment.name, segment.reason) == ("satisfaction_driven", "4 orders in 12 months, 3 at full price")
    assert segment.rfm == "R5 F4 M4"


def test_every_segment_is_a_picklist_value(segment_rules: SegmentRules) -> None:
    histories = [
        (buys([3]), 0, TODAY - timedelta(days=5)),
        (buys([400]), 0, LONG_AGO),
        (buys([130]), 0, LONG_AGO),
        (buys([5, 40, 80, 120, 160, 200], categories=(("a",), ("b",), ("c",))), 1, LONG_AGO),
        (buys([5, 40], discounted=2), 0, LONG_AGO),
        (buys([5, 40], in_campaign=2), 0, LONG_AGO),
        (buys([3, 20, 40, 60, 80, 100], base_points=20), 0, LONG_AGO),
        (buys([5, 40]), 0, LONG_AGO),
    ]
    names = {assign_segment(segment_rules, h, r, e, TODAY).name for h, r, e in histories}
    assert names == set(SEGMENTS)


def test_rfm_scores_against_the_boundaries(segment_rules: SegmentRules) -> None:
    assert rfm_scores(segment_rules, 10, 8, 3000) == "R5 F5 M5"
    assert rfm_scores(segment_rules, 31, 2, 299) == "R4 F3 M2"
    assert rfm_scores(segment_rules, None, 0, 0) == "R1 F1 M1"


def test_next_review_is_when_the_member_would_become_at_risk(segment_rules: SegmentRules) -> None:
    segment = assign_segment(segment_rules, buys([100, 110]), 0, LONG_AGO, TODAY)
    assert segment.name == "satisfaction_driven"
    assert segment.next_review == TODAY + timedelta(days=21)  # 121 days after the last order


def test_purchases_leave_out_orders_refunded_in_full_and_count_referrals() -> None:
    at = datetime(2026, 11, 1, 12, tzinfo=UTC)

    def entry(kind: EntryKind, key: str, **fields: object) -> Entry:
        return Entry(member_id="m", source_key=key, kind=kind, created_at=at, points=0, reason="r", **fields)  # type: ignore[arg-type]

    entries = [
        entry(
            EntryKind.ACCRUAL,
            "accrual#s#1",
            order_key="s#1",
            lifetime=100,
            placed_on=date(2026, 11, 1),
            base_points=90,
            discounted=True,
            campaigns=("bf",),
            categories=("shoes",),
        ),
        entry(
            EntryKind.ACCRUAL, "accrual#s#2", order_key="s#2", lifetime=50, placed_on=date(2026, 11, 1), base_points=50
        ),
        entry(
            EntryKind.ACCRUAL,
            "accrual#s#3",
            order_key="s#3",
            lifetime=60,
            placed_on=date(2026, 11, 2),
            base_points=30,
            offers=("DOUBLE1",),  # earned under a personal offer: a bonus event too
        ),
        entry(EntryKind.REVERSAL, "reversal#s#2#r", order_key="s#2", lifetime=-50),
        entry(EntryKind.REVERSAL, "reversal#s#1#r", order_key="s#1", lifetime=-40),
        entry(EntryKind.BONUS, "bonus#referral#friend", lifetime=250),
        entry(EntryKind.BONUS, "bonus#review#x", lifetime=25),
    ]
    purchases, referrals = purchases_from(entries)
    assert referrals == 1
    assert purchases == [
        Purchase("s#1", date(2026, 11, 1), 90, discounted=True, in_campaign=True, categories=("shoes",)),
        Purchase("s#3", date(2026, 11, 2), 30, discounted=False, in_campaign=True, categories=()),
    ]
