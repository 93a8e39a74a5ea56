"""Reviews in memory: when each member is next looked at, and the segment found."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime

from loyalty.fakes.memory import Memory
from loyalty.programme.segments import Segment


class InMemoryReviews:
    def __init__(self, memory: Memory | None = None) -> None:
        self.memory = memory or Memory()

    def schedule(self, member_id: str, on: date) -> None:
        with self.memory.atomically():
            planned = self.memory.reviews.get(member_id)
            if planned is None or planned > on:
                self.memory.reviews[member_id] = on

    def record(
        self, member_id: str, segment: Segment, judged_on: date, at: datetime, next_review: date,
        activity_seen: datetime | None,
    ) -> bool:  # fmt: skip
        with self.memory.atomically():
            member = self.memory.members.get(member_id)
            if member is None or (activity_seen is not None and member.last_activity != activity_seen):
                return False
            self.memory.members[member_id] = replace(
                member,
                segment=segment.name,
                segment_reason=segment.reason,
                segment_rfm=segment.rfm,
                segment_on=judged_on,
                segment_at=at,
            )
            self.memory.reviews[member_id] = next_review
        return True

    def reschedule(self, member_id: str, next_review: date, activity_seen: datetime | None) -> bool:
        with self.memory.atomically():
            member = self.memory.members.get(member_id)
            if member is None or (activity_seen is not None and member.last_activity != activity_seen):
                return False
            self.memory.reviews[member_id] = next_review
        return True
