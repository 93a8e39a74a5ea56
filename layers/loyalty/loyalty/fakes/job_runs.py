"""Job runs in memory: progress per job and date, and due work found in what the other fakes hold, each kind under
the same partition names as on the table (EXPIRE#<day after the last valid day>, BIRTHDAY#<MM-DD>), and RELEASE and
REVIEW, each up to a date, where the table spreads them over shards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta

from loyalty.fakes.memory import Memory
from loyalty.ledger.state import UNUSED
from loyalty.ports.job_runs import DueWork, Partition


class InMemoryJobRuns:
    def __init__(self, memory: Memory | None = None) -> None:
        self.memory = memory or Memory()

    @staticmethod
    def releases_due_by(day: date) -> list[Partition]:
        return [("RELEASE", f"{day.isoformat()}#\uffff")]

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
        return [("REVIEW", f"{day.isoformat()}#\uffff")]

    def progress(self, job: str, dates: list[date]) -> dict[date, str | None]:
        runs = self.memory.items("job_runs")
        return {
            day: runs.get((job, day), {}).get("cursor") for day in dates if not runs.get((job, day), {}).get("done")
        }

    def save(
        self, job: str, day: date, *, done: bool, cursor: str | None, processed: int, changed: int, at: datetime
    ) -> None:
        run = {"done": done, "cursor": cursor, "processed": processed, "changed": changed, "at": at}
        self.memory.items("job_runs")[(job, day)] = run

    def due_pages(
        self, partition: str, cursor: str | None, page_size: int, up_to: str | None = None
    ) -> Iterator[tuple[list[DueWork], str | None]]:
        after = cursor or ""
        while True:
            due = sorted(
                (key, work) for key, work in self._due(partition) if key > after and (up_to is None or key <= up_to)
            )
            page = due[:page_size]
            after = page[-1][0] if page else after
            more = len(due) > page_size
            yield [work for _, work in page], after if more else None
            if not more:
                return

    def _due(self, partition: str) -> list[tuple[str, DueWork]]:
        kind, _, value = partition.partition("#")
        memory = self.memory
        with memory.atomically():
            if kind == "RELEASE":
                return [
                    (
                        f"{order.release_on.isoformat()}#{key}",
                        DueWork("order", order.member_id, shop=order.shop, order_id=key.split("#", 1)[1]),
                    )
                    for key, order in memory.orders.items()
                    if order.member_id and order.release_on
                ]
            if kind == "EXPIRE":
                last_valid = (date.fromisoformat(value) - timedelta(days=1)) if value else None
                return [
                    (f"{member_id}#{entry.source_key}", DueWork("lot", member_id, lot=entry))
                    for member_id, entries in memory.entries.items()
                    for entry in entries.values()
                    if entry.lot_end is not None and entry.expires_on == last_valid
                ]
            if kind == "CODE_END":
                ending = date.fromisoformat(value) - timedelta(days=1)
                redemptions = memory.items("redemptions").values()
                return [
                    (
                        f"{r.member_id}#{r.redemption_id}",
                        DueWork("redemption", r.member_id, redemption_id=r.redemption_id),
                    )
                    for r in redemptions
                    if r.valid_until == ending and r.status in UNUSED
                ]
            if kind == "BIRTHDAY":
                return [
                    (member_id, DueWork("birthday", member_id, entered_on=entered))
                    for member_id, (birthdate, entered) in memory.birthdays.items()
                    if birthdate.strftime("%m-%d") == value
                ]
            return [
                (f"{on.isoformat()}#{member_id}", DueWork("review", member_id))
                for member_id, on in memory.reviews.items()
            ]
