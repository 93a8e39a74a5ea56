"""Scheduled jobs' progress per run date, and their work read page by page from the due index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta

from loyalty.adapters.dynamodb.ledger_items import entry_of
from loyalty.adapters.dynamodb.models import (
    REDEMPTION_PREFIX,
    RELEASE_SHARDS,
    REVIEW_SHARDS,
    BirthdayItem,
    EntryItem,
    JobRunItem,
    LoyaltyItem,
    OrderItem,
    RedemptionItem,
    ReviewItem,
)
from loyalty.ports.job_runs import DueWork, Partition


def _pk(job: str) -> str:
    return f"JOB#{job}"


class DynamoDBJobRuns:
    # ------------------------------------------------------------ where each kind of work is on the due index

    @staticmethod
    def releases_due_by(day: date) -> list[Partition]:
        """Every shard up to the day. First, the day's own partition: orders stored before the shards are there
        until their next write, found on their release day as before (and first, so that a run's place saved
        before the shards still resumes in the partition it was saved in)."""
        up_to = f"{day.isoformat()}#\uffff"
        shards = [(f"RELEASE#{shard}", up_to) for shard in range(RELEASE_SHARDS)]
        return [(f"RELEASE#{day.isoformat()}", None), *shards]

    @staticmethod
    def lots_expiring_after(last_valid_day: date) -> list[Partition]:
        return [(f"EXPIRE#{(last_valid_day + timedelta(days=1)).isoformat()}", None)]

    @staticmethod
    def codes_ending(day: date) -> list[Partition]:
        return [(f"CODE_END#{day.isoformat()}", None)]

    @staticmethod
    def birthdays(month: int, day: int) -> list[Partition]:
        return [(f"BIRTHDAY#{month:02d}-{day:02d}", None)]

    @staticmethod
    def reviews_due_by(day: date) -> list[Partition]:
        return [(f"REVIEW#{shard}", f"{day.isoformat()}#\uffff") for shard in range(REVIEW_SHARDS)]

    # ------------------------------------------------------------ progress
    def progress(self, job: str, dates: list[date]) -> dict[date, str | None]:
        """The dates among ``dates`` the job has not finished, each with where a run got to (one batch read)."""
        keys = [(_pk(job), day.isoformat()) for day in dates]
        found = {
            date.fromisoformat(item.sk): item
            for item in LoyaltyItem.batch_get(keys, consistent_read=True)
            if isinstance(item, JobRunItem)
        }
        return {
            day: found[day].cursor if day in found else None
            for day in dates
            if getattr(found.get(day), "status", "") != "done"
        }

    def save(
        self, job: str, day: date, *, done: bool, cursor: str | None, processed: int, changed: int, at: datetime
    ) -> None:
        JobRunItem(
            _pk(job),
            day.isoformat(),
            status="done" if done else "running",
            cursor=cursor,
            processed=processed,
            changed=changed,
            updated_at=at,
        ).save()

    def due_pages(
        self, partition: str, cursor: str | None, page_size: int, up_to: str | None = None
    ) -> Iterator[tuple[list[DueWork], str | None]]:
        """The work due under ``partition`` (with a sort key up to ``up_to``, if given), a page at a time, each
        with the cursor that resumes after it."""
        start = json.loads(cursor) if cursor else None
        condition = LoyaltyItem.due_sk <= up_to if up_to is not None else None
        while True:
            results = LoyaltyItem.due.query(partition, condition, limit=page_size, last_evaluated_key=start)
            items = [work for item in results if (work := _work(item)) is not None]
            last = results.last_evaluated_key
            yield items, json.dumps(last) if last else None
            if not last:
                return
            start = last


def _work(item: LoyaltyItem) -> DueWork | None:
    if isinstance(item, OrderItem) and item.member_id:
        shop, order_id = item.pk.removeprefix("ORDER#").split("#", 1)
        return DueWork("order", member_id=item.member_id, shop=shop, order_id=order_id)
    if isinstance(item, EntryItem):
        return DueWork("lot", member_id=item.member_id, lot=entry_of(item))
    if isinstance(item, BirthdayItem):
        return DueWork("birthday", member_id=item.member_id, entered_on=date.fromisoformat(item.entered_on))
    if isinstance(item, ReviewItem):
        return DueWork("review", member_id=item.member_id)
    if isinstance(item, RedemptionItem):
        return DueWork("redemption", member_id=item.member_id, redemption_id=item.sk.removeprefix(REDEMPTION_PREFIX))
    return None
