"""The life of a tier: upgrade at once, held for its period, kept or lost (after the grace) when it ends."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from loyalty.ledger.model import Entry, EntryKind
from loyalty.ledger.replay import replay_tier
from loyalty.programme.rules import ProgramRules, Qualification
from loyalty.programme.tiers import (
    TierOverride,
    add_months,
    assess,
    assessment_due,
    next_period_end,
    period_end_from,
    running_total,
    tier_status,
    upgrade,
)

# infra/program.yaml: bronze 0, silver 1000, gold 3000, platinum 6000; rolling 12 months, 30 days' grace


@pytest.fixture
def calendar_rules(rules: ProgramRules) -> ProgramRules:
    return rules.model_copy(update={"qualification": Qualification(period="calendar_year", downgrade_grace_days=0)})


def test_add_months_keeps_the_day_or_takes_the_last_of_a_shorter_month() -> None:
    assert add_months(date(2026, 1, 31), 1) == date(2026, 2, 28)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert add_months(date(2026, 11, 15), 14) == date(2028, 1, 15)
    assert add_months(date(2026, 3, 31), -1) == date(2026, 2, 28)


def test_rolling_running_total_counts_the_last_twelve_months_this_one_included(rules: ProgramRules) -> None:
    buckets = {"2025-06": 500, "2025-07": 400, "2026-06": 300}
    # On 2026-06-10 the window is 2025-07 .. 2026-06
    assert running_total(rules, buckets, date(2026, 6, 10)) == 700
    assert running_total(rules, buckets, date(2026, 7, 1)) == 300


def test_calendar_running_total_counts_this_year_only(calendar_rules: ProgramRules) -> None:
    buckets = {"2025-12": 900, "2026-01": 200, "2026-11": 300}
    assert running_total(calendar_rules, buckets, date(2026, 12, 1)) == 500


def test_upgrade_at_once_when_the_running_total_reaches_a_threshold(rules: ProgramRules) -> None:
    day = date(2026, 4, 10)
    assert upgrade(rules, None, {"2026-04": 999}, day) is None
    reached = upgrade(rules, None, {"2026-03": 600, "2026-04": 2500}, day)
    assert reached is not None
    tier, period_end = reached
    # Then straight to gold (a jump over silver), held for 12 months from today
    assert tier.name == "gold" and period_end == date(2027, 4, 10)
    # A tier already held is not "reached" again; a lower total never downgrades here
    assert upgrade(rules, "gold", {"2026-04": 3100}, day) is None
    assert upgrade(rules, "platinum", {"2026-04": 10}, day) is None


def test_calendar_upgrade_is_held_to_the_end_of_the_year(calendar_rules: ProgramRules) -> None:
    reached = upgrade(calendar_rules, "bronze", {"2026-11": 1200}, date(2026, 11, 20))
    assert reached is not None and reached[0].name == "silver" and reached[1] == date(2026, 12, 31)
    assert next_period_end(calendar_rules, date(2026, 12, 31)) == date(2027, 12, 31)


def test_assessment_is_due_after_the_grace_and_never_for_the_lowest_tier(rules: ProgramRules) -> None:
    assert assessment_due(rules, "gold", date(2027, 4, 10)) == date(2027, 5, 11)  # 30 days' grace, then the day after
    assert assessment_due(rules, "bronze", date(2027, 4, 10)) is None
    assert assessment_due(rules, None, None) is None


def test_a_period_that_qualifies_keeps_the_tier_for_another_period(rules: ProgramRules) -> None:
    # Given gold until 2027-04-10 and 3,200 points in the 12 months ending then
    buckets = {"2026-06": 1600, "2027-03": 1600}
    decided = assess(rules, "gold", date(2027, 4, 10), buckets, date(2027, 5, 11))
    assert decided.tier == "gold" and decided.period_end == date(2028, 4, 10)
    assert "kept" in decided.reason


def test_a_period_that_does_not_qualify_loses_the_tier_to_what_its_points_reach(rules: ProgramRules) -> None:
    # Given gold until 2027-04-10 and only 1,500 points in its window, none since
    buckets = {"2026-04": 5000, "2026-09": 1500}  # the 5,000 from April 2026 fell out of the window ending April 2027
    decided = assess(rules, "gold", date(2027, 4, 10), buckets, date(2027, 5, 11))
    # Then silver, held for a period from the old period end; the reason says why in numbers
    assert decided.tier == "silver" and decided.period_end == date(2028, 4, 10)
    assert decided.reason == "Gold to Silver: 1500 qualifying points in the period ending 2027-04-10, 3000 needed"


def test_points_earned_in_the_grace_keep_the_tier(rules: ProgramRules) -> None:
    # Given a short window total, but enough earned since in the running window
    buckets = {"2026-06": 1000, "2027-05": 2500}
    decided = assess(rules, "gold", date(2027, 4, 10), buckets, date(2027, 5, 11))
    assert decided.tier == "gold"


def test_losing_everything_falls_to_the_lowest_tier_with_no_period(rules: ProgramRules) -> None:
    decided = assess(rules, "silver", date(2027, 1, 5), {}, date(2027, 2, 5))
    assert decided.tier == "bronze" and decided.period_end is None


def test_status_shows_next_tier_points_to_keep_and_expiry(rules: ProgramRules) -> None:
    # Given gold until 2027-04-10 with 2,000 of 3,000 points counted toward keeping it
    buckets = {"2026-05": 2000}
    status = tier_status(rules, "gold", date(2027, 4, 10), None, buckets, date(2026, 12, 1))
    assert (status.tier, status.earned_tier, status.next_tier) == ("gold", "gold", "platinum")
    assert status.points_to_next == 4000 and status.points_to_keep == 1000
    assert status.expires_on == date(2027, 5, 10)  # period end + 30 days' grace
    # When the period already qualifies, the tier lasts another period
    status = tier_status(rules, "gold", date(2027, 4, 10), None, {"2026-05": 3500}, date(2026, 12, 1))
    assert status.points_to_keep == 0 and status.expires_on == date(2028, 5, 10)


def test_status_of_the_lowest_tier_has_nothing_to_keep(rules: ProgramRules) -> None:
    status = tier_status(rules, None, None, None, {"2026-11": 400}, date(2026, 11, 29))
    assert (status.tier, status.next_tier, status.points_to_next) == ("bronze", "silver", 600)
    assert status.points_to_keep is None and status.expires_on is None


def test_an_override_shows_instead_of_the_earned_tier_until_its_last_day(rules: ProgramRules) -> None:
    override = TierOverride("platinum", date(2026, 12, 31), "VIP event", "salesforce-user:005xx")
    during = tier_status(rules, "silver", date(2027, 3, 1), override, {"2026-03": 1200}, date(2026, 12, 31))
    assert (during.tier, during.earned_tier, during.override) == ("platinum", "silver", override)
    assert during.expires_on == date(2026, 12, 31) and during.next_tier is None
    after = tier_status(rules, "silver", date(2027, 3, 1), override, {"2026-03": 1200}, date(2027, 1, 1))
    assert (after.tier, after.override) == ("silver", None)


def test_period_end_from_rolling_is_window_months_ahead(rules: ProgramRules) -> None:
    assert period_end_from(rules, date(2026, 2, 28)) == date(2027, 2, 28)


def _entry(kind: EntryKind, at: datetime, **fields: object) -> Entry:
    defaults: dict[str, object] = {"member_id": "m", "source_key": f"{kind}#{at.isoformat()}", "points": 0}
    return Entry(kind=kind, created_at=at, reason="test", **{**defaults, **fields})  # type: ignore[arg-type]


def test_replay_explains_a_history_and_catches_a_wrong_decision(rules: ProgramRules) -> None:
    # Given an accrual that reached silver and a decision a year later that kept nothing
    reach = _entry(
        EntryKind.ACCRUAL,
        datetime(2026, 3, 1, 12, tzinfo=UTC),
        qualifying=1200,
        month="2026-03",
        tier="bronze",
        tier_reached="silver",
        tier_period_end=date(2027, 3, 1),
    )
    lost = _entry(
        EntryKind.TIER,
        datetime(2027, 4, 1, 2, tzinfo=UTC),
        tier="bronze",
        tier_period_end=None,
    )
    # When replayed / Then the ledger explains the tier
    assert replay_tier(rules, [reach, lost]) == ("bronze", None, [])
    # And a decision the points do not support is reported
    wrong = lost.model_copy(update={"tier": "silver", "tier_period_end": date(2028, 3, 1)})
    _, _, problems = replay_tier(rules, [reach, wrong])
    assert problems and "the points say bronze" in problems[0]
    # And an upgrade the running total never reached is reported
    early = reach.model_copy(update={"qualifying": 900})
    _, _, problems = replay_tier(rules, [early])
    assert problems and "reached silver" in problems[0]
