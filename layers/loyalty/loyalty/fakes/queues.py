"""The ledger queue in memory."""

from __future__ import annotations


class InMemoryLedgerQueue:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def send(self, message: str) -> None:
        self.messages.append(message)
