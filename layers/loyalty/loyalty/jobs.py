"""The programme's scheduled jobs: each finds its work through the due index for a run date, never a scan.

- `release`: orders whose return window has passed become spendable points: every pending order whose release day
  is the run date or earlier, however long ago (the due index keeps them sorted by that day).
- `expire`: lots whose last valid day was the day before (EXPIRE#<date>) expire, oldest first, as entries.
- `expiry_warning`: members whose points expire `expiry_warning_days` ahead hear of it (an offer request).
- `birthday`: the birthday bonus once a year (BIRTHDAY#<MM-DD>; 29 February is paid on the 28th in other
  years); a birthday entered less than `birthday_notice_days` before the day pays from next year.
- `review`: members due a review (REVIEW#<date>): qualification periods that ended are decided, the
  segment is recomputed, and the next review is set.
- `crm_retry` (hourly, not by date): members whose CRM push did not reach Salesforce (CRM#stale) have it
  asked for again; `crm_link` (daily, not by date): so have unlinked members (CRM#unlinked), whose Contact
  may have appeared since. Both only mark the members' CRM state: the push itself runs in crm_sync, from
  the table's stream (loyalty.crm.sync says why).

Every step is idempotent (ledger entries are keyed by their source, offer requests by member, offer and
date), so a job is idempotent per run date. Each run date's progress is saved after every page: a job
that dies midway resumes at its last page when it runs again, and a date missed altogether is done late,
up to `schedules.catch_up_days` back. A run that is close to its time limit stops after a page and says
so; the next invocation goes on.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, timedelta
from itertools import chain
from typing import Any, Literal

from loyalty.errors import MemberBlockedError, NotDueError, UnknownMemberError
from loyalty.ledger.model import MemberSummary
from loyalty.ledger.replay import purchases_from
from loyalty.ledger.service import Ledger
from loyalty.observability import logger, metrics
from loyalty.offers.programme import category_affinity, programme_request
from loyalty.offers.records import OfferQueue, OfferRecords
from loyalty.offers.requests import OfferRequest, Trigger
from loyalty.offers.rules import OfferRules
from loyalty.ports.crm import CrmStates
from loyalty.ports.job_runs import DueWork, JobRuns
from loyalty.ports.reviews import Reviews
from loyalty.programme.rules import ProgramRules
from loyalty.programme.segments import Segment, assign_segment, segment_window_start
from loyalty.programme.tiers import assessment_due

JobName = Literal[
    "release", "expire", "expiry_warning", "birthday", "review", "code_expiry", "release_held", "crm_retry", "crm_link"
]
CRM_JOBS: dict[str, str] = {"crm_retry": "stale", "crm_link": "unlinked"}  # job -> the CRM status it asks again for
JOBS: tuple[JobName, ...] = ("release", "expire", "expiry_warning", "birthday", "review", "code_expiry")  # by date
PAGE_SIZE = 100
STOP_WITH_SECONDS_LEFT = 60.0


@dataclass
class JobReport:
    job: str
    dates_done: list[date] = field(default_factory=list)
    processed: int = 0  # due items looked at
    changed: int = 0  # of which something was written (released, expired, paid, reviewed, warned)
    complete: bool = True  # False: stopped for time; the next run goes on

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "datesDone": [day.isoformat() for day in self.dates_done],
            "processed": self.processed,
            "changed": self.changed,
            "complete": self.complete,
        }


@dataclass
class ScheduledJobs:
    ledger: Ledger
    reviews: Reviews
    runs: JobRuns
    offer_queue: OfferQueue
    offer_rules: OfferRules
    offer_records: OfferRecords
    page_size: int = PAGE_SIZE
    workers: int = 1  # a page's members are worked on this many at a time (each member's items in order)
    crm_states: CrmStates | None = None  # for crm_retry and crm_link
    end_unused_code: Callable[[str, str, date], bool] | None = None  # for code_expiry: (member, redemption, today)
    erase_member: Callable[[str], Any] | None = None  # for review: the retention rule's erasure (loyalty.privacy)
    _pool: ThreadPoolExecutor | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def rules(self) -> ProgramRules:
        return self.ledger.rules

    def run(self, job: JobName, today: date, seconds_left: Callable[[], float] = lambda: float("inf")) -> JobReport:
        """Run ``job`` for ``today`` and for any earlier date within the catch-up window it has not finished."""
        if job in CRM_JOBS:
            return self.ask_crm_push_again(job, seconds_left)
        report = JobReport(job)
        if job == "release_held":  # not by date: whatever is due now, every time it runs
            released = [held_sms(record.request) for record in self.offer_records.held_due(self.ledger.clock())]
            self.offer_queue.send(released)
            report.processed = report.changed = len(released)
            return report
        window = [today - timedelta(days=n) for n in range(self.rules.schedules.catch_up_days, -1, -1)]
        for day, cursor in sorted(self.runs.progress(job, window).items()):
            if not self._run_date(job, day, cursor, seconds_left, report):
                report.complete = False
                break
            report.dates_done.append(day)
        return report

    def _run_date(
        self, job: JobName, day: date, cursor: str | None, seconds_left: Callable[[], float], report: JobReport
    ) -> bool:
        processed = changed = 0
        first, _, page_cursor = cursor.partition("|") if cursor else ("0", "", "")
        partitions = list(enumerate(self._partitions(job, day)))[int(first) :]
        pages = {
            index: self.runs.due_pages(partition, page_cursor if index == int(first) else None, self.page_size, up_to)
            for index, (partition, up_to) in partitions
        }
        # every partition's first page is asked for at once (most partitions hold a page or less, and each read
        # waits on the table); the partitions are still worked on in order, and a page at a time within each
        nothing: tuple[list[DueWork], str | None] = ([], None)
        first_pages = {index: self._executor().submit(next, pages[index], nothing) for index in pages}
        try:
            for index, _ in partitions:
                for work, next_page in chain([first_pages[index].result()], pages[index]):
                    results = self._do_page(job, day, work)
                    processed += len(results)
                    changed += sum(results)
                    report.processed += len(results)
                    report.changed += sum(results)
                    if next_page is None:
                        break
                    now = self.ledger.clock()
                    cursor = f"{index}|{next_page}"  # the partition, and the page in it, to resume at
                    self.runs.save(job, day, done=False, cursor=cursor, processed=processed, changed=changed, at=now)
                    if seconds_left() < STOP_WITH_SECONDS_LEFT:
                        logger.info("job stopped for time; the next run goes on", job=job, day=day.isoformat())
                        return False
        finally:
            for future in first_pages.values():
                future.cancel()  # a run that stops early leaves no read of a later partition behind it
        self.runs.save(job, day, done=True, cursor=None, processed=processed, changed=changed, at=self.ledger.clock())
        logger.info("job done", job=job, day=day.isoformat(), processed=processed, changed=changed)
        return True

    def _partitions(self, job: JobName, day: date) -> list[tuple[str, str | None]]:
        if job == "release":
            return self.runs.releases_due_by(day)  # every order due by this day, however long ago
        if job == "expire":
            return self.runs.lots_expiring_after(day - timedelta(days=1))
        if job == "expiry_warning":
            return self.runs.lots_expiring_after(day + timedelta(days=self.rules.schedules.expiry_warning_days))
        if job == "code_expiry":
            return self.runs.codes_ending(day)
        if job == "birthday":
            partitions = self.runs.birthdays(day.month, day.day)
            if (day.month, day.day) == (2, 28) and not calendar.isleap(day.year):
                partitions += self.runs.birthdays(2, 29)
            return partitions
        return self.runs.reviews_due_by(day)  # every review due by this day, however long ago

    def _do_page(self, job: JobName, day: date, work: list[DueWork]) -> list[bool]:
        """Each item done; with several workers, different members' items at once, one member's in order (two
        lots of one member expiring the same day would only race for the member). The page is done when every
        item is: the first failure is raised after the others have had their turn (each item is idempotent)."""
        members = self._members_of(job, work)
        if self.workers <= 1 or len(work) <= 1:
            return [self._do(job, day, item, members) for item in work]
        by_member: dict[str, list[int]] = {}
        for index, item in enumerate(work):
            by_member.setdefault(item.member_id, []).append(index)
        results: list[bool] = [False] * len(work)

        def member_items(indexes: list[int]) -> None:
            for index in indexes:
                results[index] = self._do(job, day, work[index], members)

        done = [self._executor().submit(member_items, indexes) for indexes in by_member.values()]
        wait(done)
        for future in done:
            future.result()
        return results

    def _executor(self) -> ThreadPoolExecutor:
        """The job's worker threads, started once (an instance keeps them from one run to the next)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=max(1, self.workers), thread_name_prefix="job-worker")
        return self._pool

    def _members_of(self, job: JobName, work: list[DueWork]) -> dict[str, MemberSummary]:
        """The members a page of reviews is for, read together (one batch read, not one read each)."""
        members = {item.member_id for item in work if item.member_id} if job == "review" else set()
        return self.ledger.summaries(members, expiry=False) if members else {}

    def _do(self, job: JobName, day: date, work: DueWork, members: dict[str, MemberSummary] | None = None) -> bool:
        if job == "release" and work.kind == "order" and work.shop and work.order_id:
            result = self.ledger.release(work.shop, work.order_id, work.member_id)
            return result is not None and not result.duplicate
        if job == "expire" and work.lot is not None:
            try:
                expired = self.ledger.expire_lot(work.lot)
            except NotDueError:
                return False
            return expired is not None and not expired.duplicate
        if job == "expiry_warning" and work.lot is not None and work.lot.expires_on:
            return self._warn(work.member_id, work.lot.expires_on)
        if job == "birthday" and work.kind == "birthday" and work.member_id and work.entered_on:
            return self._birthday(work.member_id, work.entered_on, day)
        if job == "review" and work.kind == "review" and work.member_id:
            return self.review(work.member_id, day, (members or {}).get(work.member_id))
        if job == "code_expiry" and work.kind == "redemption" and work.redemption_id:
            if self.end_unused_code is None:
                raise RuntimeError("the code_expiry job needs the shops' codes")
            return self.end_unused_code(work.member_id, work.redemption_id, day)
        return False

    # ------------------------------------------------------------ the steps

    def _warn(self, member_id: str, expires_on: date) -> bool:
        points = sum(lot.remaining for lot in self.ledger.open_lots(member_id) if lot.expires_on == expires_on)
        if points <= 0:
            return False
        self.offer_queue.send(
            [
                programme_request(
                    self.offer_rules,
                    Trigger.EXPIRY_WARNING,
                    member_id,
                    expires_on.isoformat(),
                    self.rules.local_date(self.ledger.clock()),
                    self.ledger.clock(),
                    {"points": points, "expires_on": expires_on.isoformat()},
                )
            ]
        )
        return True

    def _birthday(self, member_id: str, entered: date, day: date) -> bool:
        if entered > day - timedelta(days=self.rules.schedules.birthday_notice_days):
            return False  # entered too close to the day: pays from next year
        if not self.rules.bonuses.birthday:
            return False
        try:
            result = self.ledger.bonus(member_id, "birthday", str(day.year))
        except (UnknownMemberError, MemberBlockedError):  # a blocked member gets no bonus (and no message of one)
            return False
        # asked again on a rerun too (the sender sends each request once): a crash after the bonus loses nothing
        self.offer_queue.send(
            [
                programme_request(
                    self.offer_rules,
                    Trigger.BIRTHDAY,
                    member_id,
                    str(day.year),
                    day,
                    self.ledger.clock(),
                    {"points": result.entry.points},
                    occasion=day,
                )
            ]
        )
        return not result.duplicate

    def review(self, member_id: str, today: date, read: MemberSummary | None = None) -> bool:
        """Decide ended qualification periods, recompute the segment and set the next review (``read``: the member as
        read with the rest of the page; an order landing since is caught when the review is recorded)."""
        try:
            summary = read if read is not None else self.ledger.summary(member_id, expiry=False)
            due = assessment_due(self.rules, summary.earned_tier, summary.tier_period_end)
            if due is not None and due <= self.rules.local_date(self.ledger.clock()):
                self.ledger.assess_tier(member_id)  # ended periods decided, oldest first
                summary = self.ledger.summary(member_id, expiry=False)
        except UnknownMemberError:
            return False
        if summary.profile.leaving_on is not None and summary.profile.leaving_on <= today:
            self._left(member_id, summary, today)
            summary = self.ledger.summary(member_id, expiry=False)
        elif self.erase_member is not None and (erase_on := self._erase_on(summary)) is not None and erase_on <= today:
            self.erase_member(member_id)
            logger.info("inactive member erased by the retention rule", member_id=member_id)
            metrics.add_metric(name="MembersErasedInactive", unit="Count", value=1)
            summary = self.ledger.summary(member_id, expiry=False)
        since = segment_window_start(self.rules.segments, today)
        at = self.ledger.clock()  # before the read: an entry written meanwhile is after it, and left to the next review
        entries = self.ledger.entries_since(member_id, since)
        purchases, referrals = purchases_from(e for e in entries if e.created_at <= at)
        segment = assign_segment(
            self.rules.segments, purchases, referrals, self.rules.local_date(summary.enrolled_at), today
        )
        requests = []
        if segment.name == "at_risk" and summary.segment != "at_risk":
            last = max((p.placed_on for p in purchases), default=None)
            spell = last.isoformat() if last else "never"
            requests.append(
                programme_request(
                    self.offer_rules, Trigger.WIN_BACK, member_id, spell, today, at, {"reason": segment.reason}
                )
            )
        if segment.name not in ("lapsed", "at_risk") and (
            found := category_affinity(self.offer_rules, member_id, purchases, today, at)
        ):
            requests.append(found)
        if requests:  # before the segment is stored: a crash in between asks again at the next review
            self.offer_queue.send(requests)
        next_review = self._next_review(summary, segment, today)
        unchanged = (segment.name, segment.reason, segment.rfm) == (
            summary.segment, summary.segment_reason, summary.segment_rfm
        )  # fmt: skip
        # A segment found as stored writes only the next review, so the member (and the CRM, the shops) see no
        # change. An order landing while this review runs makes the write fail: it may have been decided before
        # `at` and written after the entries were read, so the segment found may have missed it; the one stored
        # stands (true as of its own time) and the member is looked at again the next day.
        if unchanged:
            written = self.reviews.reschedule(member_id, next_review, activity_seen=summary.last_activity)
        else:
            written = self.reviews.record(member_id, segment, today, at, next_review, summary.last_activity)
        if not written:
            self.reviews.reschedule(member_id, min(next_review, today + timedelta(days=1)), activity_seen=None)
        return True

    def _left(self, member_id: str, summary: MemberSummary, today: date) -> None:
        """A member whose notice has run out: what they have available is forfeited and their personal data erased
        (points still pending are forfeited when released: they are looked at daily until none are left)."""
        if self.ledger.forfeit(member_id, today) is not None:
            metrics.add_metric(name="MembersLeftPointsForfeited", unit="Count", value=1)
        if summary.profile.erased_at is None and self.erase_member is not None:
            self.erase_member(member_id)
            logger.info("a member who left the programme erased", member_id=member_id)

    def _erase_on(self, summary: MemberSummary) -> date | None:
        """The day the retention rule erases the member (None: never, or erased already)."""
        years = self.rules.privacy.erase_inactive_after_years
        if years is None or summary.profile.erased_at is not None:
            return None
        last = self.rules.local_date(summary.last_activity or summary.enrolled_at)
        if (last.month, last.day) == (2, 29):
            return date(last.year + years, 3, 1)
        return last.replace(year=last.year + years)

    def _next_review(self, summary: MemberSummary, segment: Segment, today: date) -> date:
        candidates = [segment.next_review]
        if self.erase_member is not None and (erase_on := self._erase_on(summary)) is not None:
            candidates.append(erase_on)
        leaving = summary.profile.leaving_on
        if leaving is not None and leaving > today:  # the day they leave
            candidates.append(leaving)
        elif leaving is not None and summary.pending:  # left: daily while points are pending (forfeited released)
            candidates.append(today + timedelta(days=1))
        tier_due = assessment_due(self.rules, summary.earned_tier, summary.tier_period_end)
        if tier_due is not None:
            candidates.append(tier_due)
        if summary.tier_override_until is not None:
            candidates.append(summary.tier_override_until + timedelta(days=1))
        return max(today + timedelta(days=1), min(candidates))

    def ask_crm_push_again(self, job: str, seconds_left: Callable[[], float] = lambda: float("inf")) -> JobReport:
        """Ask for the CRM push again of every member listed with the job's status, a page at a time, each page
        marked by ``workers`` threads at once. A run that stops for time leaves the rest to the next run, which
        starts the list again (those already asked for are asked for again: harmless, each push is idempotent)."""
        states = self.crm_states
        if states is None:
            raise RuntimeError(f"the {job} job needs the CRM states")
        report = JobReport(job)
        listed = [member_id for member_id, _ in states.not_in_sync(CRM_JOBS[job])]
        for start in range(0, len(listed), self.page_size):
            page = listed[start : start + self.page_size]
            parts = [page[n :: max(1, self.workers)] for n in range(max(1, self.workers))]
            asked = [self._executor().submit(states.request_push, part, self.ledger.clock()) for part in parts]
            wait(asked)  # every part has had its turn before a failure is raised
            for future in asked:
                future.result()
            report.processed += len(page)
            report.changed += len(page)
            if start + self.page_size < len(listed) and seconds_left() < STOP_WITH_SECONDS_LEFT:
                logger.info("job stopped for time; the next run starts again", job=job)
                report.complete = False
                break
        logger.info("job done", job=job, processed=report.processed, complete=report.complete)
        return report


def held_sms(request: str) -> OfferRequest:
    """The request of an SMS held through quiet hours, to be sent now that they are over."""
    return OfferRequest.model_validate_json(request).model_copy(update={"channels": ("sms",), "released": True})
