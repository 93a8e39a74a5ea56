"""Ledger entries into the monthly figures, as the table's stream brings them (functions/kpis)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from loyalty.kpis.flows import contribution, groups, month_of
from loyalty.ledger.model import Entry
from loyalty.ledger.service import Ledger
from loyalty.ports.kpis import KpiStore


@dataclass
class KpiCounting:
    ledger: Ledger
    store: KpiStore

    def count(self, entries: Iterable[Entry]) -> int:
        """Add each entry to its month's figures, for the programme and for its member's tier and segment as they
        stand now (the members read together); each entry once, however often it comes. Returns those added."""
        counted = [(entry, flows) for entry in entries if any((flows := contribution(entry)).values())]
        members = self.ledger.summaries({entry.member_id for entry, _ in counted}, expiry=False)
        added = 0
        for entry, flows in counted:
            member = members.get(entry.member_id)
            tier, segment = (member.tier, member.segment) if member is not None else (None, None)
            month = month_of(self.ledger.rules, entry)
            added += self.store.add(f"{entry.member_id}#{entry.source_key}", month, groups(tier, segment), flows)
        return added
