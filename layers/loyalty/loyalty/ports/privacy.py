"""Where a member's data export is kept for download, and the dead-letter queues an erasure reaches.

Implemented by loyalty.adapters.s3_exports, loyalty.adapters.sqs_dead_letters and loyalty.fakes.privacy.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

EXPORT_LINK_DAYS = 7  # a download link's life (S3's longest for a signed link); the export itself goes then too


class MemberExports(Protocol):
    def put(self, member_id: str, name: str, body: bytes) -> str:
        """Keep the member's export ``name`` (JSON); a download link, valid for EXPORT_LINK_DAYS days."""
        ...

    def delete(self, member_id: str) -> int:
        """Delete every export of the member (an erasure); how many there were."""
        ...


class DeadLetters(Protocol):
    def drop_holding(self, needles: Sequence[str]) -> int:
        """Delete each dead-letter message whose body holds one of ``needles`` (in any case): a failed delivery
        of an erased person's data (a replay would bring it back). How many were deleted."""
        ...


def finder(needles: Sequence[str]) -> re.Pattern[str] | None:
    """What finds any of ``needles`` in a text, in any case (None: nothing to find)."""
    wanted = sorted({needle for needle in needles if needle}, key=len, reverse=True)
    return re.compile("|".join(re.escape(needle) for needle in wanted), re.IGNORECASE) if wanted else None
