"""The offer queue: requests to send members offers, for the offer sender. The only module that knows SQS."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import boto3

from loyalty.offer_requests import OfferRequest

BATCH = 10  # SendMessageBatch takes at most 10 messages


class OfferQueueError(RuntimeError):
    """SQS refused some offer requests; the caller retries them (they are idempotent downstream)."""


class OfferQueue:
    def __init__(self, queue_url: str, client: Any | None = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("sqs")
        return self._client

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
