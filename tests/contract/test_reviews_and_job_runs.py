"""The contracts of reviews (when each member is next looked at) and job runs (progress per date, due work read a
page at a time); on the fake and on DynamoDB Local."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from loyalty.ledger.state import Commit, MemberState
from loyalty.programme.segments import Segment
from tests.contract.conftest import Stores, due

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
DAY = date(2026, 5, 1)
SEGMENT = Segment("new", "Joined 0 days ago, 0 orders so far", "R1 F1 M1", DAY + timedelta(days=30))


def member(stores: Stores, member_id: str, first_review: date = DAY) -> str:
    state = MemberState(member_id=member_id, enrolled_at=T0, last_activity=T0)
    assert stores.ledger.enrol(state, first_review) is Commit.APPLIED
    return member_id


def reviewed_by(stores: Stores, day: date) -> list[str]:
    return sorted(work.member_id for work in due(stores.job_runs, stores.job_runs.reviews_due_by(day)))


def test_a_review_is_brought_forward_never_put_back(stores: Stores) -> None:
    m = member(stores, "m1", first_review=DAY + timedelta(days=10))
    stores.reviews.schedule(m, DAY + timedelta(days=20))  # later: the earlier review stands
    assert reviewed_by(stores, DAY + timedelta(days=9)) == []
    assert reviewed_by(stores, DAY + timedelta(days=10)) == [m]
    stores.reviews.schedule(m, DAY + timedelta(days=2))  # earlier: brought forward
    assert reviewed_by(stores, DAY + timedelta(days=2)) == [m]


def test_reviews_due_include_every_one_that_fell_due_before(stores: Stores) -> None:
    for number in range(12):  # spread over the shards
        member(stores, f"m{number:02d}", first_review=DAY + timedelta(days=number))
    assert reviewed_by(stores, DAY + timedelta(days=5)) == [f"m{n:02d}" for n in range(6)]


def test_a_review_stores_the_segment_and_the_next_review_unless_the_member_moved(stores: Stores) -> None:
    m = member(stores, "m1")
    # When the review recorded what it saw, with the member's activity as it read it
    assert stores.reviews.record(m, SEGMENT, DAY, T0, DAY + timedelta(days=30), activity_seen=T0)
    state = stores.ledger.member(m)
    assert state is not None
    assert (state.segment, state.segment_reason, state.segment_rfm) == ("new", SEGMENT.reason, "R1 F1 M1")
    assert (state.segment_on, state.segment_at) == (DAY, T0)
    assert reviewed_by(stores, DAY + timedelta(days=29)) == []
    assert reviewed_by(stores, DAY + timedelta(days=30)) == [m]
    # When the member did something after the review read them, nothing is recorded
    lapsed = Segment("lapsed", "No order", "R1 F1 M1", DAY)
    assert not stores.reviews.record(m, lapsed, DAY, T0, DAY + timedelta(days=5), activity_seen=T0 - timedelta(1))
    assert (stores.ledger.member(m) or state).segment == "new"
    # And without a condition on the activity it is
    assert stores.reviews.record(m, lapsed, DAY, T0, DAY + timedelta(days=1), activity_seen=None)
    assert (stores.ledger.member(m) or state).segment == "lapsed"
    assert reviewed_by(stores, DAY + timedelta(days=1)) == [m]
    assert not stores.reviews.record("nobody", SEGMENT, DAY, T0, DAY, activity_seen=None)


def test_job_progress_is_kept_per_job_and_date(stores: Stores) -> None:
    days = [DAY - timedelta(days=n) for n in range(3)]
    assert stores.job_runs.progress("release", days) == dict.fromkeys(days)
    stores.job_runs.save("release", days[0], done=False, cursor="0|abc", processed=100, changed=3, at=T0)
    stores.job_runs.save("release", days[1], done=True, cursor=None, processed=7, changed=7, at=T0)
    assert stores.job_runs.progress("release", days) == {days[0]: "0|abc", days[2]: None}
    assert stores.job_runs.progress("expire", days) == dict.fromkeys(days)


def test_due_work_is_read_in_pages_and_a_cursor_resumes_after_its_page(stores: Stores) -> None:
    members = [member(stores, f"m{number:02d}", first_review=DAY) for number in range(7)]
    partitions = stores.job_runs.reviews_due_by(DAY)
    # When each partition is read three at a time, resuming from the cursor of each page
    seen: list[str] = []
    for partition, up_to in partitions:
        cursor = None
        while True:
            pages = stores.job_runs.due_pages(partition, cursor, 3, up_to)
            page, cursor = next(pages)
            assert len(page) <= 3
            seen += [work.member_id for work in page]
            if cursor is None:
                break
    # Then every item is read exactly once
    assert sorted(seen) == members


def test_a_review_that_finds_the_segment_unchanged_stores_only_the_next_review(stores: Stores) -> None:
    m = member(stores, "m1")
    assert stores.reviews.record(m, SEGMENT, DAY, T0, DAY + timedelta(days=10), activity_seen=T0)
    before = stores.ledger.member(m)
    assert stores.reviews.reschedule(m, DAY + timedelta(days=40), activity_seen=T0)
    assert stores.ledger.member(m) == before  # the member is not written: judged on the same day as before
    assert reviewed_by(stores, DAY + timedelta(days=39)) == []
    assert reviewed_by(stores, DAY + timedelta(days=40)) == [m]
    # When the member did something after the review read them, nothing is stored
    assert not stores.reviews.reschedule(m, DAY + timedelta(days=2), activity_seen=T0 - timedelta(1))
    assert reviewed_by(stores, DAY + timedelta(days=39)) == []
    assert stores.reviews.reschedule(m, DAY + timedelta(days=2), activity_seen=None)
    assert reviewed_by(stores, DAY + timedelta(days=2)) == [m]
    assert not stores.reviews.reschedule("nobody", DAY, activity_seen=None)
