"""The scheduled jobs on the ports' fakes, with a clock: each rule, idempotent per run date, resumable after a crash,
and finding its work where it falls due (tests/contract holds the fakes to the DynamoDB adapters)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import pytest

from loyalty.fakes import Fakes
from loyalty.jobs import ScheduledJobs
from loyalty.ledger.model import Entry, EntryKind, LedgerResult
from loyalty.ledger.service import Ledger
from loyalty.ledger.state import MemberState
from loyalty.offers.requests import OfferRequest, Trigger
from loyalty.offers.rules import load_offer_rules
from loyalty.programme.rules import ProgramRules
from tests.conftest import FakeClock
from tests.orders import simple_order

SHOP = "shopify:demo"


@pytest.fixture
def sent(fakes: Fakes) -> list[OfferRequest]:
    """What the jobs asked the offer sender for."""
    return fakes.offer_queue.requests


def scheduled_jobs(fakes: Fakes, ledger: Ledger, page_size: int = 100) -> ScheduledJobs:
    return ScheduledJobs(
        ledger, fakes.reviews, fakes.job_runs, fakes.offer_queue, load_offer_rules(), fakes.offer_records, page_size
    )


@pytest.fixture
def jobs(fakes: Fakes, ledger: Ledger) -> ScheduledJobs:
    return scheduled_jobs(fakes, ledger)


def at_day(clock: FakeClock, day: date, hour: int = 3) -> None:
    clock.now = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def test_release_runs_once_per_date_and_catches_up_a_missed_date(
    jobs: ScheduledJobs, ledger: Ledger, clock: FakeClock
) -> None:
    # Given two orders placed a day apart, due for release 30 days later
    ledger.enrol("m1", email="m1@example.com")
    ledger.accrue("m1", simple_order("1", clock.now))
    clock.advance(days=1)
    ledger.accrue("m1", simple_order("2", clock.now))
    first_due = ledger.rules.release_date(ledger.rules.local_date(clock.now)) - timedelta(days=1)
    # When the job runs only on the second due date (the first date's run was missed)
    at_day(clock, first_due + timedelta(days=1))
    report = jobs.run("release", first_due + timedelta(days=1))
    # Then both dates are done and both orders released
    assert report.dates_done[-2:] == [first_due, first_due + timedelta(days=1)]
    assert report.changed == 2
    assert ledger.summary("m1").available == 200
    # And running again for the same date does nothing at all
    again = jobs.run("release", first_due + timedelta(days=1))
    assert (again.dates_done, again.processed) == ([], 0)
    assert ledger.check_invariants("m1") == []


def test_release_finds_every_order_past_its_return_window_however_old(
    jobs: ScheduledJobs, ledger: Ledger, clock: FakeClock
) -> None:
    # Given orders placed 40, 90 and 400 days before the job runs (their release days long past, every run that
    # should have released them missed), and one placed 10 days before, still inside its return window
    run_day = date(2027, 6, 15)
    for days in (400, 90, 40, 10):
        at_day(clock, run_day - timedelta(days=days), hour=12)
        ledger.enrol(f"m{days}")
        ledger.accrue(f"m{days}", simple_order(str(days), clock.now))
    # When the release job runs
    at_day(clock, run_day)
    report = jobs.run("release", run_day)
    # Then every order past its return window is released: its points available, none left pending
    assert report.complete and report.changed == 3
    for days in (400, 90, 40):
        summary = ledger.summary(f"m{days}")
        assert (summary.available, summary.pending) == (100, 0), days
        assert ledger.check_invariants(f"m{days}") == []
    # And the order still inside its return window stays pending
    assert (ledger.summary("m10").available, ledger.summary("m10").pending) == (0, 100)
    # And running again, the same day or the next, changes nothing
    members = [f"m{days}" for days in (400, 90, 40, 10)]
    before = lot_history(ledger, members)
    assert jobs.run("release", run_day).changed == 0
    at_day(clock, run_day + timedelta(days=1))
    again = jobs.run("release", run_day + timedelta(days=1))
    assert (again.processed, again.changed) == (0, 0)
    assert lot_history(ledger, members) == before


def test_points_released_late_lose_none_of_their_validity_to_the_delay(
    jobs: ScheduledJobs, ledger: Ledger, clock: FakeClock
) -> None:
    # Given an order placed 400 days before the release job runs (its points would have expired a while ago,
    # counted from the day they were earned) and one placed 40 days before
    run_day = date(2027, 6, 15)
    for days in (400, 40):
        at_day(clock, run_day - timedelta(days=days), hour=12)
        ledger.enrol(f"m{days}")
        ledger.accrue(f"m{days}", simple_order(str(days), clock.now))
    # When the job releases them
    at_day(clock, run_day)
    jobs.run("release", run_day)
    # Then each lot is valid as long as a release on its day would have made it, counted on from the delay
    for days in (400, 40):
        placed = run_day - timedelta(days=days)
        delay = run_day - ledger.rules.release_date(placed)
        lot = next(e for e in ledger.entries(f"m{days}") if e.kind is EntryKind.RELEASE)
        assert lot.expires_on == ledger.rules.expiry_date(placed + delay) > run_day
    # And the expiry job takes the oldest order's points the day after their last valid day, as any lot's
    lot = next(e for e in ledger.entries("m400") if e.kind is EntryKind.RELEASE)
    assert lot.expires_on is not None
    at_day(clock, lot.expires_on + timedelta(days=1))
    jobs.run("expire", lot.expires_on + timedelta(days=1))
    assert ledger.summary("m400").available == 0
    assert ledger.check_invariants("m400") == []


def test_expiry_takes_due_lots_once_and_warns_ahead(
    jobs: ScheduledJobs, ledger: Ledger, clock: FakeClock, sent: list[OfferRequest]
) -> None:
    # Given 100 points earned on 2026-03-02 (valid to 2027-03-31) and 30 of them redeemed
    ledger.enrol("m1", email="m1@example.com")
    ledger.bonus("m1", "review", "r1", points=100)
    ledger.redeem("m1", 30, "red1", "voucher")
    # When the warning job runs 30 days before the last valid day
    warn_day = date(2027, 3, 1)
    at_day(clock, warn_day)
    jobs.run("expiry_warning", warn_day)
    jobs.run("expiry_warning", warn_day)
    # Then one warning request for what is left, keyed so the member hears once
    assert [(r.trigger, r.details, r.request_id) for r in sent] == [
        (Trigger.EXPIRY_WARNING, {"points": 70, "expires_on": "2027-03-31"}, "expiry_warning#m1#2027-03-31")
    ]
    # When the expiry job runs the day after the last valid day
    at_day(clock, date(2027, 4, 1))
    report = jobs.run("expire", date(2027, 4, 1))
    # Then only the unredeemed 70 points expire, as an explicit entry
    assert report.changed == 1
    summary = ledger.summary("m1")
    assert summary.available == 0
    expiries = [e for e in ledger.entries("m1") if e.kind is EntryKind.EXPIRY]
    assert [e.points for e in expiries] == [-70]
    assert ledger.check_invariants("m1") == []


class CrashingLedger(Ledger):
    """The ledger of a job that dies after ``survive`` expirations."""

    survive = 0

    def expire_lot(self, lot: Entry) -> LedgerResult | None:
        if self.survive <= 0:
            raise RuntimeError("the job's container died")
        self.survive -= 1
        return super().expire_lot(lot)


def lot_history(ledger: Ledger, members: list[str]) -> list[tuple[str, int]]:
    return sorted((e.source_key, e.points) for m in members for e in ledger.entries(m))


def test_a_job_killed_midway_and_rerun_gives_the_same_ledger(rules: ProgramRules, clock: FakeClock) -> None:
    members = [f"m{n}" for n in range(7)]
    histories = []
    for crash in (False, True):
        # Given fresh stores with seven members whose points expire on the same day
        fakes = Fakes()
        start = datetime(2026, 3, 2, 9, tzinfo=UTC)
        clock.now = start
        ledger = CrashingLedger(fakes.ledger_store, rules, clock=clock)
        for member in members:
            ledger.enrol(member)
            ledger.bonus(member, "review", f"{member}-b", points=10 + len(member))
            ledger.redeem(member, 3, f"{member}-r", "voucher")
        jobs = scheduled_jobs(fakes, ledger, page_size=3)
        at_day(clock, date(2027, 4, 1))
        ledger.survive = 4 if crash else 100
        if crash:
            # When the job dies after four of seven lots (in its second page)
            with pytest.raises(RuntimeError):
                jobs.run("expire", date(2027, 4, 1))
            assert sum(ledger.summary(m).available == 0 for m in members) == 4
            ledger.survive = 100
        # When it runs (again)
        report = jobs.run("expire", date(2027, 4, 1))
        assert report.complete and report.dates_done[-1] == date(2027, 4, 1)
        # Then every lot expired exactly once
        assert all(ledger.summary(m).available == 0 for m in members)
        assert all(ledger.check_invariants(m) == [] for m in members)
        histories.append(lot_history(ledger, members))
    assert histories[0] == histories[1]


def test_members_worked_on_at_once_end_as_one_at_a_time(rules: ProgramRules, clock: FakeClock) -> None:
    members = [f"m{n}" for n in range(40)]
    results = []
    for workers in (1, 6):
        # Given forty members, each with two or three lots expiring on the same day and an order to release
        fakes = Fakes()
        clock.now = datetime(2026, 3, 2, 9, tzinfo=UTC)
        ledger = Ledger(fakes.ledger_store, rules, clock=clock)
        for number, member in enumerate(members):
            ledger.enrol(member)
            for lot in range(2 + number % 2):
                ledger.bonus(member, "review", f"{member}-b{lot}", points=10 + lot)
            ledger.redeem(member, 5, f"{member}-r", "voucher")
            ledger.accrue(member, simple_order(f"o-{member}", clock.now))
        jobs = ScheduledJobs(
            ledger, fakes.reviews, fakes.job_runs, fakes.offer_queue, load_offer_rules(), fakes.offer_records,
            page_size=25, workers=workers,
        )  # fmt: skip
        # When the release and expiry jobs run with one worker, then with six
        at_day(clock, date(2026, 4, 2))
        released = jobs.run("release", date(2026, 4, 2))
        at_day(clock, date(2027, 4, 1))
        expired = jobs.run("expire", date(2027, 4, 1))
        assert ledger.summary("m0").available == 0  # the order's lot was earned in March too
        results.append(
            (released.changed, expired.processed, expired.changed, lot_history(ledger, members),
             [ledger.check_invariants(m) for m in members])
        )  # fmt: skip
    # Then both end alike: every order released once, every lot expired once, every invariant holding
    assert results[0] == results[1]
    lots = sum(2 + n % 2 for n in range(len(members))) + len(members)  # the bonuses' and the orders'
    assert results[0][0] == len(members) and results[0][2] == lots


def test_a_run_stops_for_time_and_the_next_goes_on(jobs: ScheduledJobs, ledger: Ledger, clock: FakeClock) -> None:
    jobs.page_size = 2
    for n in range(5):
        ledger.enrol(f"m{n}")
        ledger.bonus(f"m{n}", "review", f"b{n}", points=5)
    at_day(clock, date(2027, 4, 1))
    # When the function is nearly out of time after the first page
    first = jobs.run("expire", date(2027, 4, 1), seconds_left=lambda: 10.0)
    assert not first.complete and first.processed == 2
    # Then the next run goes on from where it stopped
    second = jobs.run("expire", date(2027, 4, 1))
    assert second.complete and second.processed == 3
    assert all(ledger.summary(f"m{n}").available == 0 for n in range(5))


def test_birthday_bonus_once_a_year_and_not_for_a_birthday_entered_late(
    jobs: ScheduledJobs, ledger: Ledger, clock: FakeClock, sent: list[OfferRequest], fakes: Fakes
) -> None:
    directory = fakes.directory
    ledger.enrol("early", email="early@example.com")
    ledger.enrol("late", email="late@example.com")
    ledger.enrol("leap", email="leap@example.com")
    # Given birthdays entered in March, one in May (less than 30 days before the day), one on 29 February
    assert directory.update_profile("early", {"birthdate": "1990-05-20"}, datetime(2026, 3, 10, tzinfo=UTC))
    assert directory.update_profile("late", {"birthdate": "1985-05-20"}, datetime(2026, 5, 1, tzinfo=UTC))
    assert directory.update_profile("leap", {"birthdate": "1992-02-29"}, datetime(2026, 3, 10, tzinfo=UTC))
    # When the birthday job runs on the day, twice
    at_day(clock, date(2026, 5, 20))
    jobs.run("birthday", date(2026, 5, 20))
    jobs.run("birthday", date(2026, 5, 20))
    # Then the early one is paid once, the late one not this year
    assert ledger.summary("early").available == 200
    assert ledger.summary("late").available == 0
    assert [(r.member_id, r.trigger) for r in sent] == [("early", Trigger.BIRTHDAY)]
    # And next year both are paid
    at_day(clock, date(2027, 5, 20))
    jobs.run("birthday", date(2027, 5, 20))
    assert (ledger.summary("early").available, ledger.summary("late").available) == (400, 200)
    # A 29 February birthday is paid on the 28th in a year without one
    at_day(clock, date(2027, 2, 28))
    jobs.run("birthday", date(2027, 2, 28))
    assert ledger.summary("leap").available == 200
    for member in ("early", "late", "leap"):
        assert ledger.check_invariants(member) == []


def earn(ledger: Ledger, clock: FakeClock, member: str, order_id: str, euros: int) -> None:
    ledger.accrue(member, simple_order(order_id, clock.now, [("1", 1, f"{euros}.00")]))


def entries_then_an_order(
    ledger: Ledger, clock: FakeClock, member: str, order_id: str, decided_before: bool = False
) -> Callable[[str, datetime], list[Entry]]:
    """The ledger's entries_since, with an order of the member landing just after the entries are read (with
    ``decided_before``, an order decided before the review began and written only now: its entry's time is
    earlier than the review's moment)."""
    read_entries = ledger.entries_since

    def read_then_order(member_id: str, since: datetime) -> list[Entry]:
        found = read_entries(member_id, since)
        now = clock.now
        if decided_before:
            clock.now -= timedelta(seconds=1)
        earn(ledger, clock, member, order_id, 150)
        clock.now = max(clock.now, now)
        return found

    return read_then_order


def test_review_downgrades_after_the_period_and_grace_and_keeps_a_qualifying_tier(
    jobs: ScheduledJobs, ledger: Ledger, clock: FakeClock
) -> None:
    # Given two members who reach gold on 2026-03-02 (3,000 qualifying points), one of whom keeps earning
    for member in ("keeps", "stops"):
        ledger.enrol(member)
        earn(ledger, clock, member, f"{member}-1", 3000)
        summary = ledger.summary(member)
        assert (summary.tier, summary.tier_period_end) == ("gold", date(2027, 3, 2))
    at_day(clock, date(2027, 3, 1))  # March 2026 has left the running window: 3,125 points, still gold
    earn(ledger, clock, "keeps", "keeps-2", 2500)
    # When reviews run on the day after the period end plus 30 days' grace
    review_day = date(2027, 4, 2)
    at_day(clock, review_day)
    for member in ("keeps", "stops"):
        assert jobs.review(member, review_day)
    # Then one keeps gold for another period; the other falls to bronze, with the reason on the ledger
    keeps, stops = ledger.summary("keeps"), ledger.summary("stops")
    assert (keeps.tier, keeps.tier_period_end) == ("gold", date(2028, 3, 2))
    assert (stops.tier, stops.tier_period_end, stops.tier_expires_on) == ("bronze", None, None)
    decision = [e for e in ledger.entries("stops") if e.kind is EntryKind.TIER]
    assert [e.reason for e in decision] == [
        "Gold to Bronze: 0 qualifying points in the period ending 2027-03-02, 3000 needed"
    ]
    # And a second review decides nothing again
    jobs.review("stops", review_day)
    assert len([e for e in ledger.entries("stops") if e.kind is EntryKind.TIER]) == 1
    assert ledger.check_invariants("keeps") == [] and ledger.check_invariants("stops") == []


def test_a_tier_is_not_lost_inside_the_grace(jobs: ScheduledJobs, ledger: Ledger, clock: FakeClock) -> None:
    ledger.enrol("m1")
    earn(ledger, clock, "m1", "1", 1200)
    at_day(clock, date(2027, 3, 20))  # period end 2027-03-02, grace to 2027-04-01
    jobs.review("m1", date(2027, 3, 20))
    assert ledger.summary("m1").tier == "silver"
    assert ledger.summary("m1").tier_expires_on == date(2027, 4, 1)


def test_review_assigns_a_segment_and_asks_to_win_back_a_member_at_risk(
    jobs: ScheduledJobs, ledger: Ledger, clock: FakeClock, sent: list[OfferRequest]
) -> None:
    # Given a member who bought twice in spring and then stopped
    ledger.enrol("m1", email="m1@example.com")
    earn(ledger, clock, "m1", "1", 200)
    review_day = ledger.rules.local_date(clock.now) + timedelta(days=1)
    at_day(clock, review_day)
    jobs.review("m1", review_day)
    summary = ledger.summary("m1")
    assert (summary.segment, summary.segment_reason) == ("new", "Joined 1 day ago, 1 order so far")
    clock.advance(days=20)
    earn(ledger, clock, "m1", "2", 150)
    at_day(clock, date(2026, 6, 1))
    jobs.review("m1", date(2026, 6, 1))
    assert ledger.summary("m1").segment == "satisfaction_driven"
    # When a review finds no order for more than 120 days
    at_day(clock, date(2026, 8, 1))
    jobs.review("m1", date(2026, 8, 1))
    # Then the member is at risk, with the reason, and a win-back offer is asked for once
    summary = ledger.summary("m1")
    assert summary.segment == "at_risk" and summary.segment_reason is not None
    assert summary.segment_reason.startswith("No order for 131 days")
    jobs.review("m1", date(2026, 8, 1))
    assert [r.trigger for r in sent] == [Trigger.WIN_BACK]
    assert ledger.check_invariants("m1") == []


def reviewed_on_1_june(jobs: ScheduledJobs, ledger: Ledger, clock: FakeClock, fakes: Fakes) -> MemberState:
    """Member m1, reviewed on 1 June after two orders in spring, as stored."""
    ledger.enrol("m1")
    earn(ledger, clock, "m1", "1", 200)
    clock.advance(days=20)
    earn(ledger, clock, "m1", "2", 150)
    at_day(clock, date(2026, 6, 1))
    jobs.review("m1", date(2026, 6, 1))
    reviewed = fakes.ledger_store.member("m1")
    assert reviewed is not None
    return reviewed


def test_a_review_that_finds_nothing_new_leaves_the_member_as_it_was(
    jobs: ScheduledJobs, ledger: Ledger, clock: FakeClock, fakes: Fakes
) -> None:
    reviewed = reviewed_on_1_june(jobs, ledger, clock, fakes)
    assert (reviewed.segment, reviewed.segment_on) == ("satisfaction_driven", date(2026, 6, 1))
    # When the next day's review finds the same segment, for the same reason
    at_day(clock, date(2026, 6, 2))
    assert jobs.review("m1", date(2026, 6, 2))
    # Then the member is not written (judged on 1 June, as stored), only the next review is set
    assert fakes.ledger_store.member("m1") == reviewed
    assert fakes.memory.reviews["m1"] == date(2026, 7, 2)
    assert ledger.check_invariants("m1") == []


def test_an_order_placed_while_a_review_finds_nothing_new_is_looked_at_the_next_day(
    jobs: ScheduledJobs, ledger: Ledger, clock: FakeClock, fakes: Fakes, monkeypatch: pytest.MonkeyPatch
) -> None:
    reviewed = reviewed_on_1_june(jobs, ledger, clock, fakes)
    # When an order lands while the next day's review, finding the segment as stored, runs
    monkeypatch.setattr(ledger, "entries_since", entries_then_an_order(ledger, clock, "m1", "3"))
    at_day(clock, date(2026, 6, 2))
    assert jobs.review("m1", date(2026, 6, 2))
    # Then the segment is not written, and the member is due again the next day
    member = fakes.ledger_store.member("m1")
    assert member is not None
    assert (member.segment_on, member.segment_at) == (reviewed.segment_on, reviewed.segment_at)
    assert fakes.memory.reviews["m1"] == date(2026, 6, 3)
    assert ledger.check_invariants("m1") == []


def test_an_order_placed_while_the_review_runs_is_looked_at_the_next_day(
    jobs: ScheduledJobs, ledger: Ledger, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, fakes: Fakes
) -> None:
    ledger.enrol("m1")
    earn(ledger, clock, "m1", "1", 200)
    review_day = date(2026, 3, 10)
    at_day(clock, review_day)
    read_entries = ledger.entries_since
    # When an order lands between the review's reading and its writing (decided before the review began)
    monkeypatch.setattr(ledger, "entries_since", entries_then_an_order(ledger, clock, "m1", "2", decided_before=True))
    assert jobs.review("m1", review_day)
    # Then the segment found (which missed it) is not stored: the one stored stands, true as of its own time, and
    # the member is due again the next day rather than weeks later
    assert fakes.memory.reviews["m1"] == date(2026, 3, 11)
    assert ledger.summary("m1").segment is None  # never reviewed before
    assert ledger.check_invariants("m1") == []
    # And the next day's review, with nothing happening meanwhile, stores the segment and sets the usual, later date
    monkeypatch.setattr(ledger, "entries_since", read_entries)
    at_day(clock, date(2026, 3, 11))
    assert jobs.review("m1", date(2026, 3, 11))
    assert ledger.summary("m1").segment == "satisfaction_driven" and ledger.check_invariants("m1") == []  # 2 orders
    assert fakes.memory.reviews["m1"] > date(2026, 3, 12)


def test_the_review_job_finds_members_through_the_index(
    jobs: ScheduledJobs, ledger: Ledger, fakes: Fakes, clock: FakeClock
) -> None:
    # Given members enrolled today: each is due a first review tomorrow
    for n in range(3):
        ledger.enrol(f"m{n}")
    tomorrow = ledger.rules.local_date(clock.now) + timedelta(days=1)
    at_day(clock, tomorrow)
    reads: list[str] = []
    for name in ("member", "members"):
        original = getattr(fakes.ledger_store, name)
        setattr(fakes.ledger_store, name, lambda *a, _n=name, _o=original, **k: reads.append(_n) or _o(*a, **k))
    report = jobs.run("review", tomorrow)
    assert report.changed == 3
    assert reads == ["members"]  # the page's members read together, not one by one
    assert {ledger.summary(f"m{n}").segment for n in range(3)} == {"new"}


def test_a_tier_override_shows_until_its_last_day_and_is_audited(ledger: Ledger, clock: FakeClock) -> None:
    ledger.enrol("m1")
    first = ledger.override_tier("m1", "platinum", date(2026, 6, 30), "Press event", "salesforce-user:005A", "req-1")
    again = ledger.override_tier("m1", "platinum", date(2026, 6, 30), "Press event", "salesforce-user:005A", "req-1")
    assert again.duplicate and again.entry == first.entry
    summary = ledger.summary("m1")
    assert (summary.tier, summary.earned_tier, summary.tier_override_until) == ("platinum", "bronze", date(2026, 6, 30))
    assert first.entry.actor == "salesforce-user:005A"
    assert first.entry.reason == "Tier set to Platinum until 2026-06-30 by salesforce-user:005A: Press event"
    # An order during the override earns at the override's tier (x1.5)
    earn(ledger, clock, "m1", "1", 100)
    assert ledger.summary("m1").pending == 150
    at_day(clock, date(2026, 7, 1))
    assert (ledger.summary("m1").tier, ledger.summary("m1").tier_override_until) == ("bronze", None)
    assert ledger.check_invariants("m1") == []


def test_the_retention_rule_erases_a_member_inactive_for_its_years_at_a_review(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    from loyalty.privacy import Privacy

    privacy = Privacy(
        ledger, fakes.directory, fakes.offer_records, fakes.nps_answers, fakes.exports, fakes.dead_letters
    )
    jobs = scheduled_jobs(fakes, ledger)
    jobs.erase_member = privacy.erase
    years = ledger.rules.privacy.erase_inactive_after_years
    assert years is not None
    # Given a member whose last order was in March 2026, and one who ordered again since
    ledger.enrol("m1", email="m1@example.com", first_name="Mia")
    ledger.enrol("m2", email="m2@example.com", first_name="Max")
    earn(ledger, clock, "m1", "1", 200)
    earn(ledger, clock, "m2", "2", 200)
    last = ledger.rules.local_date(clock.now)
    erase_on = last.replace(year=last.year + years)
    at_day(clock, erase_on - timedelta(days=10))
    earn(ledger, clock, "m2", "3", 100)
    # When they are reviewed before the years are up, then on the day
    at_day(clock, erase_on - timedelta(days=1))
    jobs.review("m1", erase_on - timedelta(days=1))
    assert ledger.summary("m1").profile.first_name == "Mia"
    assert fakes.memory.reviews["m1"] <= erase_on  # the next review comes by that day, whatever the segment says
    at_day(clock, erase_on)
    before = ledger.summary("m1")
    jobs.review("m1", erase_on)
    jobs.review("m2", erase_on)
    # Then the inactive member's personal data is gone and their points stay; the active one is untouched
    after = ledger.summary("m1")
    assert (after.profile.email, after.profile.first_name) == (None, None) and after.profile.erased_at is not None
    assert (after.available, after.pending, after.lifetime) == (before.available, before.pending, before.lifetime)
    assert ledger.summary("m2").profile.first_name == "Max"
    # And later reviews change nothing more
    at_day(clock, erase_on + timedelta(days=40))
    jobs.review("m1", erase_on + timedelta(days=40))
    assert ledger.summary("m1").profile.erased_at == after.profile.erased_at
