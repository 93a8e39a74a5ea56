"""The rebuild for audit: each month's programme figures recomputed from what the table keeps (the ledger's
entries, the members' enrolments, the NPS answers) and compared with the figures the stream counted; the same
rules as the counting (loyalty.kpis.flows), so they must be equal.

Offers are measured from their own records and windows, the members' moves between tiers and segments from
their items' changes, and the figures by segment and tier are counted under the member's segment and tier when
each entry was counted (not kept on the entry): the audit covers the programme's figures that the ledger and the
answers determine.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from loyalty.kpis.flows import is_ledger_figure, nps_contribution, recount
from loyalty.ledger.model import Entry
from loyalty.ports.kpis import PROGRAMME, Count, KpiStore
from loyalty.ports.surveys import NpsAnswer
from loyalty.programme.rules import ProgramRules


def recompute(
    rules: ProgramRules, entries: Iterable[Entry], enrolled: Iterable[datetime], answers: Iterable[NpsAnswer]
) -> dict[str, dict[str, Count]]:
    """The programme's figures per month from the table's records: the ledger's (``recount``) and each member's
    latest answer to each survey in the month it was given."""
    months = recount(rules, entries, enrolled)
    for answer in answers:
        counts = months.setdefault(answer.month, {})
        for name, value in nps_contribution(answer.score).items():
            counts[name] = counts.get(name, 0) + value
    return months


def audited(counts: Mapping[str, Count]) -> dict[str, Count]:
    """The counters the audit covers (``is_ledger_figure``), without those at zero (a counter taken back to
    nothing reads as zero on the table, and as absent in a recount)."""
    return {name: value for name, value in counts.items() if is_ledger_figure(name) and value}


@dataclass(frozen=True)
class Difference:
    month: str
    counted: dict[str, Count]
    recomputed: dict[str, Count]

    def __str__(self) -> str:
        names = sorted(set(self.counted) | set(self.recomputed))
        changed = [f"{n} {self.counted.get(n, 0)} (recomputed {self.recomputed.get(n, 0)})" for n in names
                   if self.counted.get(n, 0) != self.recomputed.get(n, 0)]  # fmt: skip
        return f"{self.month}: " + ", ".join(changed)


def differences(
    store: KpiStore, recomputed: Mapping[str, Mapping[str, Count]], months: Iterable[str]
) -> list[Difference]:
    """The months whose counted programme figures differ from the recomputed ones."""
    found = []
    for month in months:
        counted = audited(store.month(month).get(PROGRAMME, {}))
        again = audited(recomputed.get(month, {}))
        if counted != again:
            found.append(Difference(month, counted, again))
    return found
