"""The monthly figures in memory."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal

from loyalty.fakes.memory import Memory
from loyalty.ports.kpis import CLOSE, PROGRAMME, Count, Exposure, MemberMonths, Noted, offer_order_counts


class InMemoryKpiStore:
    def __init__(self, memory: Memory | None = None) -> None:
        self.memory = memory or Memory()

    def add(self, counted: str, month: str, groups: Sequence[str], counts: Mapping[str, Count]) -> bool:
        return self.add_each(counted, month, {group: counts for group in groups})

    def add_each(self, counted: str, month: str, counts: Mapping[str, Mapping[str, Count]]) -> bool:
        with self.memory.atomically():
            applied = self.memory.items("kpis_applied")
            if (month, counted) in applied:
                return False
            applied[month, counted] = True
            for group, added in counts.items():
                self._add(month, group, added)  # as on the table: a counter never added to is absent
            return True

    def member_months(self, member_ids: Iterable[str]) -> dict[str, MemberMonths]:
        with self.memory.atomically():
            noted = self.memory.items("kpi_member_months")
            return {member_id: noted.get(member_id, MemberMonths()) for member_id in member_ids}

    def note_member(
        self,
        member_id: str,
        read: MemberMonths,
        noted: MemberMonths,
        counts: Mapping[tuple[str, str], Mapping[str, Count]],
        marker: tuple[str, str] | None = None,
    ) -> Noted:
        with self.memory.atomically():
            applied = self.memory.items("kpis_applied")
            if marker is not None and marker in applied:
                return Noted.COUNTED_BEFORE
            members = self.memory.items("kpi_member_months")
            if members.get(member_id, MemberMonths()) != read:
                return Noted.CHANGED
            if marker is not None:
                applied[marker] = True
            members[member_id] = noted
            for (month, group), added in counts.items():
                if any(added.values()):  # as on the table: a group's item comes with its first count
                    self._add(month, group, added)
            return Noted.WRITTEN

    def expose(self, member_id: str, exposure: Exposure) -> bool:
        with self.memory.atomically():
            kept = self.memory.items("kpi_exposures").setdefault(member_id, {})
            if exposure.dedup in kept:
                return False
            kept[exposure.dedup] = exposure
            self._add(exposure.month, PROGRAMME, {f"offer_members#{exposure.trigger}#{exposure.arm}": 1})
            return True

    def exposures(self, member_id: str) -> list[Exposure]:
        with self.memory.atomically():
            return list(self.memory.items("kpi_exposures").get(member_id, {}).values())

    def convert(self, member_id: str, read: Exposure, order_key: str, revenue: Decimal) -> bool:
        with self.memory.atomically():
            kept = self.memory.items("kpi_exposures").setdefault(member_id, {})
            if kept.get(read.dedup) != read or order_key in read.counted:
                return False
            kept[read.dedup] = replace(
                read, orders=read.orders + 1, revenue=read.revenue + revenue, counted=read.counted | {order_key}
            )
            self._add(read.month, PROGRAMME, offer_order_counts(read, revenue))
            return True

    def _add(self, month: str, group: str, counts: Mapping[str, Count]) -> None:
        kept = self.memory.items("kpis").setdefault((month, group), {})
        for name, value in counts.items():
            if value:
                kept[name] = kept.get(name, 0) + value

    def set_programme(self, month: str, counts: Mapping[str, Count]) -> None:
        with self.memory.atomically():
            self.memory.items("kpis").setdefault((month, PROGRAMME), {}).update(counts)

    def close(self, month: str, stocks: Mapping[str, Count]) -> None:
        with self.memory.atomically():
            self.memory.items("kpis")[month, CLOSE] = dict(stocks)

    def month(self, month: str) -> dict[str, dict[str, Count]]:
        with self.memory.atomically():
            return {group: dict(kept) for (at, group), kept in self.memory.items("kpis").items() if at == month}
