"""The monthly figures: counters per month and group (the programme, each tier, each segment), each entry's
contribution added once however often the stream delivers it.

Implemented by loyalty.adapters.dynamodb.kpis and loyalty.fakes.kpis (tests/contract holds both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol


class KpiStore(Protocol):
    def add(self, counted: str, month: str, groups: Sequence[str], counts: Mapping[str, int]) -> bool:
        """Add ``counts`` to the month's figures of each group, atomically and once per ``counted`` (an entry's
        identity); False if it was added before (nothing changes)."""
        ...

    def first_purchase(self, member_id: str, month: str) -> str:
        """The month of the member's first purchase: ``month`` if none was noted before (it is noted now, for good),
        else the month noted."""
        ...

    def month(self, month: str) -> dict[str, dict[str, int]]:
        """The month's figures by group (a counter never added to is absent)."""
        ...
