"""Where a member's data export is kept for download, and the dead-letter queues an erasure reaches.

Implemented by loyalty.adapters.s3_exports, loyalty.adapters.sqs_dead_letters and loyalty.fakes.privacy.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

MIN_PHONE_DIGITS = 7  # a shorter "phone" would match unrelated numbers
EXPORT_LINK_DAYS = 7  # a download link's life (S3's longest for a signed link); the export itself goes then too


class MemberExports(Protocol):
    def put(self, member_id: str, name: str, body: bytes) -> None:
        """Keep the member's export ``name`` (JSON) for EXPORT_LINK_DAYS days (then it goes)."""
        ...

    def read(self, member_id: str, name: str) -> bytes | None:
        """The export as kept; None if there is none (never made, gone, or erased)."""
        ...

    def delete(self, member_id: str) -> int:
        """Delete every export of the member (an erasure); how many there were."""
        ...


class DeadLetters(Protocol):
    def drop_holding(self, emails: Sequence[str], phones: Sequence[str]) -> int:
        """Delete each dead-letter message whose body holds one of the e-mail addresses or phone numbers
        (``finder``): a failed delivery of an erased person's data (a replay would bring it back). How many were
        deleted."""
        ...


def finder(emails: Sequence[str], phones: Sequence[str] = ()) -> re.Pattern[str] | None:
    """What finds any of the e-mail addresses (whole, in any case: ``ann@x.se`` is not in ``joann@x.se``) or phone
    numbers (their digits, whole, at least 7 of them) in a text; None: nothing to find."""
    parts = [
        rf"(?<![\w.+-]){re.escape(email.strip())}(?![\w-]|\.[\w-])"  # a full stop after it ends it
        for email in emails
        if email and "@" in email
    ]
    for phone in phones:
        digits = re.sub(r"\D", "", phone or "")
        if len(digits) >= MIN_PHONE_DIGITS:
            parts.append(rf"(?<!\d){re.escape(digits)}(?!\d)")
    return re.compile("|".join(sorted(set(parts), key=len, reverse=True)), re.IGNORECASE) if parts else None
