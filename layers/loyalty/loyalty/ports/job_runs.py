"""Scheduled jobs' progress per run date, and their work, read a page at a time from where it falls due.

Implemented by loyalty.adapters.dynamodb.job_runs (the due index) and loyalty.fakes.job_runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

from loyalty.ledger.model import Entry

Partition = tuple[str, str | None]  # where due work is kept, and the highest key wanted in it (None: all)


@dataclass(frozen=True)
class DueWork:
    """One item of a job's work."""

    kind: Literal["order", "lot", "birthday", "review", "redemption"]
    member_id: str
    shop: str | None = None  # orders
    order_id: str | None = None
    lot: Entry | None = None  # lots: the lot entry (immutable, so the ledger need not read it again)
    entered_on: date | None = None  # birthdays: when the programme learnt it
    redemption_id: str | None = None  # redemptions whose code ends


class JobRuns(Protocol):
    def releases_due_by(self, day: date) -> list[Partition]:
        """Where pending orders whose release day is ``day`` or earlier are, however long ago it was."""
        ...

    def codes_ending(self, day: date) -> list[Partition]:
        """Where redemptions whose codes end on ``day`` (their last valid day the day before) are, while unused."""
        ...

    def lots_expiring_after(self, last_valid_day: date) -> list[Partition]:
        """Where lots whose last valid day is ``last_valid_day`` are."""
        ...

    def birthdays(self, month: int, day: int) -> list[Partition]: ...

    def reviews_due_by(self, day: date) -> list[Partition]:
        """Where members whose review is due on or before ``day`` are, however long ago it fell due."""
        ...

    def progress(self, job: str, dates: list[date]) -> dict[date, str | None]:
        """The dates among ``dates`` the job has not finished, each with the cursor a run saved (or None)."""
        ...

    def save(
        self, job: str, day: date, *, done: bool, cursor: str | None, processed: int, changed: int, at: datetime
    ) -> None: ...

    def due_pages(
        self, partition: str, cursor: str | None, page_size: int, up_to: str | None = None
    ) -> Iterator[tuple[list[DueWork], str | None]]:
        """The work under ``partition`` (up to ``up_to``), a page at a time, each with the cursor after it."""
        ...
