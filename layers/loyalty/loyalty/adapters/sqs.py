"""The ledger queue on SQS: verified webhook deliveries for the ledger writer.

The webhook receiver loads this module on its cold start: it imports boto3 and nothing else.
"""

from __future__ import annotations

from typing import Any

import boto3


class SqsQueue:
    """A queue by its URL; the client is created on first use and kept for the container's life."""

    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("sqs")
        return self._client


class SqsLedgerQueue(SqsQueue):
    def send(self, message: str) -> None:
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=message)
