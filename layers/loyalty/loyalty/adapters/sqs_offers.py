"""The offer queue on SQS: requests for the offer sender, sent in batches of ten."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from loyalty.adapters.sqs import SqsQueue

if TYPE_CHECKING:
    from loyalty.offers.requests import OfferRequest

BATCH = 10  # SendMessageBatch takes at most 10 messages


class OfferQueueError(RuntimeError):
    """SQS refused some offer requests; the caller retries them (they are idempotent downstream)."""


class SqsOfferQueue(SqsQueue):
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
