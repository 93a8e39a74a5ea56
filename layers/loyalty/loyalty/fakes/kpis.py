"""The monthly figures in memory."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from loyalty.fakes.memory import Memory


class InMemoryKpiStore:
    def __init__(self, memory: Memory | None = None) -> None:
        self.memory = memory or Memory()

    def add(self, counted: str, month: str, groups: Sequence[str], counts: Mapping[str, int]) -> bool:
        with self.memory.atomically():
            applied = self.memory.items("kpis_applied")
            if (month, counted) in applied:
                return False
            applied[month, counted] = True
            figures = self.memory.items("kpis")
            for group in groups:
                kept = figures.setdefault((month, group), {})
                for name, value in counts.items():
                    if value:  # as on the table: a counter never added to is absent
                        kept[name] = kept.get(name, 0) + value
            return True

    def first_purchase(self, member_id: str, month: str) -> str:
        with self.memory.atomically():
            return str(self.memory.items("kpi_first_purchase").setdefault(member_id, month))

    def month(self, month: str) -> dict[str, dict[str, int]]:
        with self.memory.atomically():
            return {group: dict(kept) for (at, group), kept in self.memory.items("kpis").items() if at == month}
