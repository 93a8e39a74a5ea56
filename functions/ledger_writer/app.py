"""Queued webhook deliveries into the catalogue, the members and the ledger; one bad message never fails its batch.

Each delivery is turned into one of our events after the queue: one that cannot be mapped fails alone, is
retried, then waits in the dead-letter queue with its body intact, to be replayed once the mapping is fixed.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from loyalty.observability import logger, metrics
from loyalty.shop.webhooks import QueuedWebhook
from loyalty.wiring import services


class QueuedWebhookRecord(SqsRecordModel):
    body: Json[QueuedWebhook]


processor = BatchProcessor(event_type=EventType.SQS, model=QueuedWebhookRecord)


def record_handler(record: QueuedWebhookRecord) -> str:
    return services.shop_event_applier().deliver(record.body)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    services.idempotency("dedup_key").register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
