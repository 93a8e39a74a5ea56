"""The monthly figures: counters per month and group (the programme, each tier, each segment), each entry's
contribution added once however often the stream delivers it.

Implemented by loyalty.adapters.dynamodb.kpis and loyalty.fakes.kpis (tests/contract holds both).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

Count = int | Decimal  # a counter: a number of things, or money (exact)
PROGRAMME = "programme"  # the group of the whole programme's figures
CLOSE = "close"  # the group of a closed month's closing figures


@dataclass(frozen=True)
class MemberMonths:
    """What the figures note per member: the month they were last active in (an order or a redemption), the month
    they last bought in (counted as a buyer there) and the month of their first purchase."""

    active: str | None = None
    bought: str | None = None
    first_bought: str | None = None


class KpiStore(Protocol):
    def add(self, counted: str, month: str, groups: Sequence[str], counts: Mapping[str, Count]) -> bool:
        """Add ``counts`` to the month's figures of each group, atomically and once per ``counted`` (an entry's
        identity); False if it was added before (nothing changes)."""
        ...

    def member_months(self, member_id: str) -> MemberMonths:
        """The months noted for the member (all None: nothing noted yet)."""
        ...

    def move_member(
        self,
        member_id: str,
        read: MemberMonths,
        noted: MemberMonths,
        month: str,
        groups: Sequence[str],
        counts: Mapping[str, Count],
        active_changes: Mapping[str, int],
    ) -> bool:
        """Note ``noted`` as the member's months, add ``counts`` to ``month``'s figures of each group and each
        month's ``active_change`` (month -> change) to the programme's figures, atomically; False (nothing
        changes) unless the member's months are still ``read``."""
        ...

    def close(self, month: str, stocks: Mapping[str, Count]) -> None:
        """Keep the month's closing figures (members, active members, points outstanding), replacing any kept."""
        ...

    def month(self, month: str) -> dict[str, dict[str, Count]]:
        """The month's figures by group (a counter never added to is absent); its closing figures, once closed,
        as the group ``close``."""
        ...
