"""When each member's tier and segment are next looked at, and the segment found.

Implemented by loyalty.adapters.dynamodb.reviews and loyalty.fakes.reviews (tests/contract holds both).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from loyalty.programme.segments import Segment


class Reviews(Protocol):
    def schedule(self, member_id: str, on: date) -> None:
        """Make sure the member is reviewed on ``on`` or earlier (a later review is brought forward)."""
        ...

    def record(
        self, member_id: str, segment: Segment, judged_on: date, at: datetime, next_review: date,
        activity_seen: datetime | None,
    ) -> bool:  # fmt: skip
        """Store the member's segment (judged for ``judged_on``, computed at ``at``) and the next review, both at
        once, unless the member's last activity is no longer ``activity_seen`` (None: whatever it is); False
        then (nothing written)."""
        ...

    def reschedule(self, member_id: str, next_review: date, activity_seen: datetime | None) -> bool:
        """Store only the next review (the segment found is the one stored: the member is not written), unless the
        member's last activity is no longer ``activity_seen`` (None: whatever it is); False then, or for a member
        there is not (nothing written)."""
        ...
