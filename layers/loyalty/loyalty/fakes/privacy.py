"""Member exports and dead-letter queues in memory."""

from __future__ import annotations

from collections.abc import Sequence

from loyalty.ports.privacy import finder


class InMemoryExports:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str], bytes] = {}

    def put(self, member_id: str, name: str, body: bytes) -> None:
        self.files[member_id, name] = body

    def read(self, member_id: str, name: str) -> bytes | None:
        return self.files.get((member_id, name))

    def delete(self, member_id: str) -> int:
        gone = [key for key in self.files if key[0] == member_id]
        for key in gone:
            del self.files[key]
        return len(gone)


class InMemoryDeadLetters:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def drop_holding(self, emails: Sequence[str], phones: Sequence[str]) -> int:
        pattern = finder(emails, phones)
        if pattern is None:
            return 0
        kept = [body for body in self.messages if not pattern.search(body)]
        dropped, self.messages = len(self.messages) - len(kept), kept
        return dropped
