"""Members' answers to NPS surveys (from CRM Flows): one per member and survey, found by the month they were given.

Implemented by loyalty.adapters.dynamodb.surveys and loyalty.fakes.surveys (tests/contract holds both).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class NpsAnswer:
    member_id: str
    survey_id: str
    score: int  # 0 to 10
    responded_at: datetime
    month: str  # YYYY-MM, in the programme's time zone: the month it counts in
    segment: str | None  # the member's when they answered (counted by segment and tier as they were then)
    tier: str | None
    comment: str | None = None  # free text: may be personal, so it goes when the member is erased
    request_id: str | None = None  # the CRM request that brought it


class NpsAnswers(Protocol):
    def save(self, answer: NpsAnswer) -> bool:
        """Keep the member's answer to the survey; a later answer to the same survey replaces an earlier one.
        False if an answer given at the same moment or later is kept already (a repeat changes nothing)."""
        ...

    def answered_in(self, month: str) -> list[NpsAnswer]:
        """Every answer counted in a month (YYYY-MM), read where the month keeps them, never by a scan."""
        ...

    def of_member(self, member_id: str) -> list[NpsAnswer]:
        """The member's answers, the latest to each survey (their data export)."""
        ...

    def forget_comments(self, member_id: str) -> int:
        """Drop the comments of the member's answers (their scores stay); how many were dropped."""
        ...
