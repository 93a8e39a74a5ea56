"""The rebuild for audit: each month's programme figures recomputed from what the table keeps (the ledger's
entries, the members' enrolments, the NPS answers, the offers' decisions and their measured members) and compared
with the figures the stream counted; the same rules as the counting (loyalty.kpis.flows), so they must be equal.

Outside it: the members' moves between tiers and segments (their items keep only where they are now), guest
orders (their held items expire with their hold), and the figures by segment and tier (counted under the
member's segment and tier when each entry was counted, which the entry does not keep).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from loyalty.kpis.flows import PER_OFFER, is_ledger_figure, local_month, nps_contribution, recount
from loyalty.ledger.model import Entry
from loyalty.offers.records import SendRecord, Status
from loyalty.ports.kpis import PROGRAMME, Count, Exposure, KpiStore
from loyalty.ports.surveys import NpsAnswer
from loyalty.programme.rules import ProgramRules


def recompute(
    rules: ProgramRules,
    entries: Iterable[Entry],
    enrolled: Iterable[datetime],
    answers: Iterable[NpsAnswer],
    offers: Iterable[SendRecord] = (),
    exposures: Iterable[Exposure] = (),
) -> dict[str, dict[str, Count]]:
    """The programme's figures per month from the table's records: the ledger's (``recount``), each member's
    latest answer to each survey in the month it was given, the messages sent by trigger, and each measured
    offer's members, converted members and revenue (with its squares) in the month it was decided."""
    months = recount(rules, entries, enrolled)

    def add(month: str, flows: Mapping[str, Count]) -> None:
        counts = months.setdefault(month, {})
        for name, value in flows.items():
            counts[name] = counts.get(name, 0) + value

    for answer in answers:
        add(answer.month, nps_contribution(answer.score))
    for record in offers:
        if record.status is Status.SENT:
            add(local_month(rules, record.decided_at), {f"offers_sent#{record.trigger}": 1})
    for exposure in exposures:
        arm = f"{exposure.trigger}#{exposure.arm}"
        add(exposure.month, {
            f"offer_members#{arm}": 1,
            f"offer_converted#{arm}": int(exposure.orders > 0),
            f"offer_revenue#{arm}": exposure.revenue,
            f"offer_revenue_sq#{arm}": exposure.revenue * exposure.revenue,
        })  # fmt: skip
    return months


def audited(counts: Mapping[str, Count]) -> dict[str, Count]:
    """The counters the audit covers (``is_ledger_figure``), without those at zero (a counter taken back to
    nothing reads as zero on the table, and as absent in a recount)."""
    covered = (name for name in counts if is_ledger_figure(name) or name.partition("#")[0] in PER_OFFER)
    return {name: counts[name] for name in covered if counts[name]}


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
