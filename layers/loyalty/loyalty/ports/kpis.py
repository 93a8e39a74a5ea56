"""The monthly figures: counters per month and group (the programme, each tier, each segment), each entry's
contribution added once however often the stream delivers it.

Implemented by loyalty.adapters.dynamodb.kpis and loyalty.fakes.kpis (tests/contract holds both).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Protocol

Count = int | Decimal  # a counter: a number of things, or money (exact)
PROGRAMME = "programme"  # the group of the whole programme's figures
CLOSE = "close"  # the group of a closed month's closing figures


@dataclass(frozen=True)
class MemberMonths:
    """What the figures note per member: the month they were last active in (an order or a redemption), the month
    they last bought in (counted as a buyer there) and the month of their first purchase; and the tier and segment
    their stocks count in (``tier#gold``, ``segment#none``; None: not noted yet), the points counted there
    (``held``: what their entries added to the points outstanding) and the latest month anything of theirs was
    counted in. A move to another tier or segment takes the member's active spell and points along."""

    active: str | None = None
    bought: str | None = None
    first_bought: str | None = None
    tier: str | None = None
    segment: str | None = None
    held: int = 0
    latest: str | None = None


class Noted(Enum):
    """What became of a member's note and the counts written with it."""

    WRITTEN = "written"
    COUNTED_BEFORE = "counted before"  # the marker was there: nothing changed
    CHANGED = "changed"  # the note was no longer as read: nothing changed (read it again)


@dataclass(frozen=True)
class MemberMove:
    """A member joined, or their earned tier or segment changed (None: the lowest tier, no segment yet); ``key``
    identifies the change (each counted once), ``at`` is when it happened."""

    member_id: str
    key: str
    at: datetime
    joined: bool
    tier_before: str | None
    tier_after: str | None
    segment_before: str | None
    segment_after: str | None


@dataclass(frozen=True)
class Exposure:
    """A member an offer that is measured against its holdout was decided for (``arm``: offered or holdout), and
    what they bought in its window (``decided_at`` to ``until``): orders, revenue in the reporting currency, and
    the orders counted (each once)."""

    dedup: str
    trigger: str
    arm: str
    decided_at: datetime
    until: datetime
    month: str  # the month it was decided in: its figures are that month's
    orders: int = 0
    revenue: Decimal = Decimal(0)
    counted: frozenset[str] = frozenset()


class KpiStore(Protocol):
    def add(self, counted: str, month: str, groups: Sequence[str], counts: Mapping[str, Count]) -> bool:
        """Add ``counts`` to the month's figures of each group, atomically and once per ``counted`` (an entry's
        identity); False if it was added before (nothing changes)."""
        ...

    def add_each(self, counted: str, month: str, counts: Mapping[str, Mapping[str, Count]]) -> bool:
        """As ``add``, with counts of its own for each group (group -> counts)."""
        ...

    def member_months(self, member_ids: Iterable[str]) -> dict[str, MemberMonths]:
        """What is noted for each member, read together (``MemberMonths()`` for one with nothing noted yet)."""
        ...

    def note_member(
        self,
        member_id: str,
        read: MemberMonths,
        noted: MemberMonths,
        counts: Mapping[tuple[str, str], Mapping[str, Count]],
        marker: tuple[str, str] | None = None,
    ) -> Noted:
        """Note ``noted`` as the member's months and add ``counts`` ((month, group) -> counts) to the months'
        figures, atomically, unless the member's note is no longer ``read`` (CHANGED) or ``marker`` (month, what
        was counted) was written before (COUNTED_BEFORE); with ``marker``, it is written too."""
        ...

    def expose(self, member_id: str, exposure: Exposure) -> bool:
        """Keep the exposure and count the member in its arm (``offer_members#<trigger>#<arm>`` of its month, the
        programme's figures), atomically and once per member and offer (False if kept before)."""
        ...

    def exposures(self, member_id: str) -> list[Exposure]:
        """The member's exposures, as kept."""
        ...

    def convert(self, member_id: str, read: Exposure, order_key: str, revenue: Decimal) -> bool:
        """Count an order in the exposure's window: its revenue (and its square's change, for the interval) and,
        for the first, a converted member, in the exposure's month; atomically, and False (nothing changes) unless
        the exposure is still as ``read``."""
        ...

    def set_programme(self, month: str, counts: Mapping[str, Count]) -> None:
        """Set the month's programme counters named in ``counts`` to those values (the audit's rebuild only)."""
        ...

    def close(self, month: str, stocks: Mapping[str, Count]) -> None:
        """Keep the month's closing figures (members, active members, points outstanding), replacing any kept."""
        ...

    def month(self, month: str) -> dict[str, dict[str, Count]]:
        """The month's figures by group (a counter never added to is absent); its closing figures, once closed,
        as the group ``close``."""
        ...


def offer_order_counts(read: Exposure, revenue: Decimal) -> dict[str, Count]:
    """What an order in an exposure's window adds to its month: a converted member at the first order, the
    revenue, and the change to the sum of the members' squared revenue (for the confidence interval)."""
    total = read.revenue + revenue
    arm = f"{read.trigger}#{read.arm}"
    return {
        f"offer_converted#{arm}": int(read.orders == 0),
        f"offer_revenue#{arm}": revenue,
        f"offer_revenue_sq#{arm}": total * total - read.revenue * read.revenue,
    }
