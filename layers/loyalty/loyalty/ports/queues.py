"""The ledger queue: verified webhook deliveries for the ledger writer.

Implemented by loyalty.adapters.sqs.SqsLedgerQueue and loyalty.fakes.queues. Only the standard library loads
here: the webhook receiver imports it.
"""

from __future__ import annotations

from typing import Protocol


class LedgerQueue(Protocol):
    def send(self, message: str) -> None:
        """Queue one message (JSON text within the queue's size limit)."""
        ...
