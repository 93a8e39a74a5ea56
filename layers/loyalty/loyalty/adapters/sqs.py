"""The queues on SQS: verified webhook deliveries for the ledger writer, offer requests for the offer sender.

The webhook receiver loads this module: it imports boto3 and nothing else of weight.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from loyalty.offers.requests import OfferRequest

BATCH = 10  # SendMessageBatch takes at most 10 messages


class OfferQueueError(RuntimeError):
    """SQS refused some offer requests; the caller retries them (they are idempotent downstream)."""


class _Queue:
    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:  # created on first use and kept for the container's life
            self._client = boto3.client("sqs")
        return self._client


class SqsLedgerQueue(_Queue):
    def send(self, message: str) -> None:
        self.client.send_message(QueueUrl=self.queue_url, MessageBody=message)


class SqsOfferQueue(_Queue):
    def send(self, requests: Sequence[OfferRequest]) -> None:
        for start in range(0, len(requests), BATCH):
            batch = requests[start : start + BATCH]
            response = self.client.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "MessageBody": r.model_dump_json()} for n, r in enumerate(batch)],
            )
            if response.get("Failed"):
                codes = sorted({failure.get("Code", "?") for failure in response["Failed"]})
                raise OfferQueueError(f"{len(response['Failed'])} offer requests not queued: {', '.join(codes)}")
