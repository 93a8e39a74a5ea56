"""The life of a tier: reached at once, held for a qualification period, kept or lost when it ends.

Pure functions of the programme rules, the member's qualifying points per month and a date; the ledger
stores what they decide (on the accrual entry that reached a tier, and on an explicit `tier` entry for
each period that ended), so a member's tier can be recomputed from the ledger and the rules.

Qualifying points are kept per calendar month (the month the order was placed in). Two kinds of period
(`qualification.period` in infra/program.yaml):

- `rolling`: the running total is the points of the last `window_months` months, this month included. A tier
  reached on day D is held until D + `window_months` months (its *period end* E). When E has passed, the
  window of months ending with E's month decides: enough for the tier and it is kept until
  E + `window_months` months; not enough and it is lost.
- `calendar_year`: the running total is the points of this calendar year. A tier reached in year Y is held
  until 31 December of Y; the year's points then decide, and a kept tier is held until the end of Y + 1.

Upgrade: the moment the running total reaches a higher tier's threshold (`upgrade`). Downgrade: only
after the period end plus `downgrade_grace_days` (`assessment_due`), and then to the better of what the
ended period's points and the running total qualify for (`assess`), never below that. The lowest tier has
no period: it cannot be lost.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from loyalty.programme.rules import ProgramRules, Tier


@dataclass(frozen=True)
class TierOverride:
    """A tier set by a CRM user for a limited time; shown instead of the earned tier while it lasts."""

    tier: str
    valid_until: date  # last day the override applies
    reason: str
    actor: str

    def active_on(self, day: date) -> bool:
        return day <= self.valid_until


@dataclass(frozen=True)
class Assessment:
    """What the end of a qualification period decided."""

    tier: str
    period_end: date | None  # the next period end, None for the lowest tier
    qualifying: int  # qualifying points of the period that ended
    reason: str


@dataclass(frozen=True)
class TierStatus:
    """A member's tier as the CRM and the member API show it."""

    tier: str  # the tier in force: the override's while it lasts, else the earned one
    earned_tier: str
    next_tier: str | None
    points_to_next: int | None  # qualifying points still needed for the next tier, None at the top
    points_to_keep: int | None  # still needed in this period to keep the tier, None for the lowest tier
    expires_on: date | None  # last day of the tier unless kept (the override's last day while one is in force)
    period_end: date | None
    running_total: int
    override: TierOverride | None = None


def tier_in_force(rules: ProgramRules, held: str | None, override: TierOverride | None, day: date) -> str:
    """The tier orders earn at and the CRM shows on ``day``: a CRM user's override while it lasts, else the earned
    tier (the lowest when none is held)."""
    if override is not None and override.active_on(day):
        return override.tier
    return held or rules.tiers[0].name


def month_key(day: date) -> str:
    """The month a day falls in, as qualifying points are kept: "YYYY-MM"."""
    return f"{day.year:04d}-{day.month:02d}"


def months_back(today: date, count: int) -> list[str]:
    """The month keys of the ``count`` months ending with today's month."""
    keys = []
    year, month = today.year, today.month
    for _ in range(count):
        keys.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return keys


def add_months(day: date, months: int) -> date:
    """The same day ``months`` months later, or that month's last day if it is shorter."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def _months_of_year(year: int) -> list[str]:
    return [f"{year:04d}-{month:02d}" for month in range(1, 13)]


def _total(buckets: Mapping[str, int], months: list[str]) -> int:
    return sum(int(buckets.get(month, 0)) for month in months)


def running_total(rules: ProgramRules, buckets: Mapping[str, int], day: date) -> int:
    """Qualifying points counting toward a tier on ``day``."""
    if rules.qualification.period == "calendar_year":
        return _total(buckets, _months_of_year(day.year))
    return _total(buckets, months_back(day, rules.qualification.window_months))


def window_total(rules: ProgramRules, buckets: Mapping[str, int], period_end: date) -> int:
    """Qualifying points of the period that ends on ``period_end`` (the months it counts so far)."""
    if rules.qualification.period == "calendar_year":
        return _total(buckets, _months_of_year(period_end.year))
    return _total(buckets, months_back(period_end, rules.qualification.window_months))


def period_end_from(rules: ProgramRules, day: date) -> date:
    """The period end of a tier reached on ``day``."""
    if rules.qualification.period == "calendar_year":
        return date(day.year, 12, 31)
    return add_months(day, rules.qualification.window_months)


def next_period_end(rules: ProgramRules, period_end: date) -> date:
    """The period end after ``period_end``: a kept tier is held that much longer."""
    if rules.qualification.period == "calendar_year":
        return date(period_end.year + 1, 12, 31)
    return add_months(period_end, rules.qualification.window_months)


def assessment_due(rules: ProgramRules, tier: str | None, period_end: date | None) -> date | None:
    """The first day a tier may be lost: the day after its period end plus the grace. None for the lowest tier."""
    if period_end is None or tier is None or rules.rank(tier) == 0:
        return None
    return period_end + timedelta(days=rules.qualification.downgrade_grace_days + 1)


def upgrade(rules: ProgramRules, held: str | None, buckets: Mapping[str, int], day: date) -> tuple[Tier, date] | None:
    """The higher tier the running total reaches on ``day``, with its period end; None if it reaches none."""
    reached = rules.tier_for(running_total(rules, buckets, day))
    if rules.rank(reached.name) <= rules.rank(held or rules.tiers[0].name):
        return None
    return reached, period_end_from(rules, day)


def assess(rules: ProgramRules, held: str, period_end: date, buckets: Mapping[str, int], day: date) -> Assessment:
    """Decide a tier whose assessment is due on or before ``day``: kept, or lost for what the points reach."""
    total = window_total(rules, buckets, period_end)
    qualified = rules.tier_for(total)
    held_tier = rules.tier(held)
    after = next_period_end(rules, period_end)
    if rules.rank(qualified.name) >= rules.rank(held):
        return Assessment(
            qualified.name,
            after,
            total,
            f"{held_tier.display_name} kept: {total} qualifying points in the period ending {period_end}",
        )
    now_total = running_total(rules, buckets, day)
    since = rules.tier_for(now_total)
    best = since if rules.rank(since.name) > rules.rank(qualified.name) else qualified
    if rules.rank(best.name) >= rules.rank(held):
        return Assessment(
            held,
            after,
            total,
            f"{held_tier.display_name} kept: {now_total} qualifying points by {day}",
        )
    return Assessment(
        best.name,
        after if rules.rank(best.name) > 0 else None,
        total,
        f"{held_tier.display_name} to {best.display_name}: {total} qualifying points in the period ending "
        f"{period_end}, {held_tier.threshold} needed",
    )


def tier_status(
    rules: ProgramRules,
    held: str | None,
    period_end: date | None,
    override: TierOverride | None,
    buckets: Mapping[str, int],
    today: date,
) -> TierStatus:
    earned = held or rules.tiers[0].name
    running = running_total(rules, buckets, today)
    active = override if override is not None and override.active_on(today) else None
    shown = tier_in_force(rules, held, override, today)
    above = rules.next_tier(shown)
    to_next = max(0, above.threshold - running) if above is not None else None
    to_keep: int | None = None
    expires_on: date | None = None
    grace = timedelta(days=rules.qualification.downgrade_grace_days)
    if rules.rank(earned) > 0 and period_end is not None:
        counted = window_total(rules, buckets, period_end)
        needed = rules.tier(earned).threshold
        to_keep = max(0, needed - counted)
        expires_on = (next_period_end(rules, period_end) if counted >= needed else period_end) + grace
    if active is not None:
        expires_on = active.valid_until
        to_keep = max(0, rules.tier(active.tier).threshold - running)
    return TierStatus(
        tier=shown,
        earned_tier=earned,
        next_tier=above.name if above is not None else None,
        points_to_next=to_next,
        points_to_keep=to_keep,
        expires_on=expires_on,
        period_end=period_end if rules.rank(earned) > 0 else None,
        running_total=running,
        override=active,
    )
