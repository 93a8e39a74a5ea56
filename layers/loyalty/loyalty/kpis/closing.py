"""A month's closing figures: the members, the active members and the points outstanding at its end, for the
programme and for each tier and segment, each the previous month's plus what the month's counters moved. Kept by
the close job (functions/kpis_close, daily: the month just ended is closed again each day of the next, so an entry
the stream brought late is in it) and read from the months' figures, never by scanning members.

A month before the first closed one is computed from its predecessors back to the first month with no figures
at all (the programme's start); the close job closes every month in turn, so the chain holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from loyalty.kpis.flows import shift_month
from loyalty.ports.kpis import CLOSE, PROGRAMME, Count, KpiStore

GROUP_STOCKS = {  # a tier's or segment's closing figure (members#tier#gold) -> the counter that moves it
    "members": "members_change",
    "active_members": "active_change",
    "points_outstanding": "points_held",
}
MONTHS_BACK = 1200  # a hundred years of open months: a bound, never reached


def closing_stocks(opening: Mapping[str, Count], figures: Mapping[str, Mapping[str, Count]]) -> dict[str, Count]:
    """A month's closing figures from its opening ones (the previous month's closing) and its counters by group:
    the programme's members, active members and points outstanding, and each tier's and segment's
    (``members#tier#gold``, ``active_members#tier#gold``, ``points_outstanding#tier#gold``)."""
    flows = figures.get(PROGRAMME, {})
    stocks: dict[str, Count] = {
        "members": opening.get("members", 0) + flows.get("members_enrolled", 0),
        "active_members": opening.get("active_members", 0) + flows.get("active_change", 0),
        "points_outstanding": opening.get("points_outstanding", 0) + flows.get("points_held", 0),
    }
    kept = {name for name in opening if "#" in name}
    for group, counts in figures.items():
        if group not in (PROGRAMME, CLOSE):
            kept |= {f"{stock}#{group}" for stock, counter in GROUP_STOCKS.items() if counter in counts}
    for name in sorted(kept):
        stock, _, group = name.partition("#")
        stocks[name] = opening.get(name, 0) + figures.get(group, {}).get(GROUP_STOCKS[stock], 0)
    return stocks


def months_between(first: str, last: str) -> list[str]:
    """The months from ``first`` to ``last``, both included (none if ``last`` is earlier)."""
    months, month = [], first
    while month <= last:
        months.append(month)
        month = shift_month(month, 1)
    return months


@dataclass(frozen=True)
class Month:
    """A month's figures by group, and its opening and closing figures (stored once closed, else computed)."""

    month: str
    figures: Mapping[str, Mapping[str, Count]]
    opening: Mapping[str, Count]
    closing: Mapping[str, Count]

    @property
    def closed(self) -> bool:
        return CLOSE in self.figures


def opening_of(store: KpiStore, month: str) -> dict[str, Count]:
    """The month's opening figures: the previous month's closing, stored or computed from the months before."""
    open_months = []
    before = shift_month(month, -1)
    for _ in range(MONTHS_BACK):
        figures = store.month(before)
        if CLOSE in figures:
            opening = dict(figures[CLOSE])
            break
        if not figures:  # before the programme's first month
            opening = {}
            break
        open_months.append(figures)
        before = shift_month(before, -1)
    else:
        raise RuntimeError(f"no closed month nor a month without figures in the {MONTHS_BACK} before {month}")
    for figures in reversed(open_months):
        opening = closing_stocks(opening, figures)
    return opening


def months(store: KpiStore, first: str, last: str) -> Iterator[Month]:
    """The months from ``first`` to ``last`` with their opening and closing figures (a closed month's as it was
    closed)."""
    opening = opening_of(store, first)
    for month in months_between(first, last):
        figures = store.month(month)
        closing = dict(figures[CLOSE]) if CLOSE in figures else closing_stocks(opening, figures)
        yield Month(month, figures, opening, closing)
        opening = closing


@dataclass
class KpiClosing:
    store: KpiStore

    def close(self, month: str) -> dict[str, Count]:
        """Close ``month`` (again, if it was): its closing figures from the previous month's and its counters,
        kept for good; returns them."""
        stocks = closing_stocks(opening_of(self.store, month), self.store.month(month))
        self.store.close(month, stocks)
        return stocks
