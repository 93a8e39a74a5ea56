"""Offer records and the offer queue in memory."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from loyalty.errors import UnknownRecordError
from loyalty.fakes.memory import Memory
from loyalty.offers.records import CapState, OfferReading, OfferState, RecordWrite, SendRecord, Status
from loyalty.offers.requests import OfferRequest


class InMemoryOfferRecords:
    def __init__(self, memory: Memory | None = None) -> None:
        self.memory = memory or Memory()

    @property
    def _records(self) -> dict[tuple[str, str, str], SendRecord]:
        return self.memory.items("offer_records")

    def find(self, member_id: str, dedup: str, channel: str) -> SendRecord | None:
        return self._records.get((member_id, dedup, channel))

    def load(self, member_id: str, dedup: str, kind: str, channels: Sequence[str]) -> OfferReading:
        with self.memory.atomically():
            states = {
                channel: OfferState(
                    self.find(member_id, dedup, channel), CapState(*self._cap(member_id, kind, channel))
                )
                for channel in channels
            }
            return OfferReading(self.memory.members.get(member_id), states)

    def commit(self, writes: Sequence[RecordWrite], request_id: str) -> bool:
        with self.memory.atomically():
            for write in writes:
                record, cap = write.record, write.cap
                if not self._claimable(record, write.held, write.before):
                    return False
                if cap is not None and self._cap(record.member_id, cap.kind, record.channel)[0] != cap.version:
                    return False
            for write in writes:
                record, cap = write.record, write.cap
                if record.status is Status.SENDING:
                    self._records[self._key(record)] = replace(record, evidence=None, task_state=None, task_reason=None)
                else:
                    self.decide(record, request_id, write.evidence)
                if cap is not None:
                    caps = self.memory.items("caps")
                    caps[(record.member_id, cap.kind, record.channel)] = (cap.version + 1, tuple(cap.entries))
        return True

    def _claimable(self, record: SendRecord, held: bool, before: datetime | None) -> bool:
        stored = self._records.get(self._key(record))
        if stored is None:
            return not held  # held: it was held or claimed, and is gone
        abandoned = stored.status is Status.SENDING and before is not None and stored.decided_at < before
        return held and (stored.status is Status.HELD or abandoned)

    @staticmethod
    def _key(record: SendRecord) -> tuple[str, str, str]:
        return record.member_id, record.dedup, record.channel

    def decide(self, record: SendRecord, request_id: str, evidence: Mapping[str, Any] | None = None) -> None:
        task = "pending" if record.status is Status.SENT else None
        stored = replace(
            record, evidence=dict(evidence) if evidence is not None else None, task_state=task, task_reason=None
        )
        self._records[self._key(record)] = stored

    def release(self, record: SendRecord) -> None:
        key = (record.member_id, record.dedup, record.channel)
        with self.memory.atomically():
            stored = self._records.get(key)
            if stored is not None and stored.status is Status.SENDING:
                del self._records[key]

    def held_due(self, now: datetime) -> Iterator[SendRecord]:
        held = [r for r in self._records.values() if r.status is Status.HELD and r.hold_until and r.hold_until <= now]
        return iter(sorted(held, key=lambda record: (record.hold_until or now, record.member_id, record.dedup)))

    def mark_task(self, member_id: str, dedup: str, channel: str, state: str, reason: str | None = None) -> None:
        with self.memory.atomically():
            stored = self._stored(member_id, dedup, channel)
            self._records[(member_id, dedup, channel)] = replace(stored, task_state=state, task_reason=reason)

    def sent(self, member_id: str) -> list[SendRecord]:
        return sorted(
            (r for r in self._records.values() if r.member_id == member_id), key=lambda r: (r.dedup, r.channel)
        )

    def forget_person(self, member_id: str, dedup: str, channel: str, request: str) -> None:
        with self.memory.atomically():
            stored = self._stored(member_id, dedup, channel)
            self._records[(member_id, dedup, channel)] = replace(stored, request=request, subject=None)

    def _stored(self, member_id: str, dedup: str, channel: str) -> SendRecord:
        stored = self._records.get((member_id, dedup, channel))
        if stored is None:
            raise UnknownRecordError(f"no record of {dedup} on {channel} for member {member_id}")
        return stored

    def cap(self, member_id: str, kind: str, channel: str) -> tuple[int, list[str]]:
        version, entries = self._cap(member_id, kind, channel)
        return version, list(entries)

    def _cap(self, member_id: str, kind: str, channel: str) -> tuple[int, tuple[str, ...]]:
        version, entries = self.memory.items("caps").get((member_id, kind, channel), (0, ()))
        return version, tuple(entries)

    def save_cap(self, member_id: str, kind: str, channel: str, version: int, entries: list[str]) -> bool:
        with self.memory.atomically():
            caps = self.memory.items("caps")
            if caps.get((member_id, kind, channel), (0, []))[0] != version:
                return False
            caps[(member_id, kind, channel)] = (version + 1, list(entries))
        return True


class InMemoryOfferQueue:
    def __init__(self) -> None:
        self.requests: list[OfferRequest] = []

    def send(self, requests: Sequence[OfferRequest]) -> None:
        self.requests.extend(requests)

    def take(self) -> list[OfferRequest]:
        """What was queued since the last take (as the offer sender would receive it)."""
        taken, self.requests = self.requests, []
        return taken
