"""Offer requests from the queue to e-mail and SMS: consent, caps, quiet hours, language; one bad request never
fails its batch, and a failure worth retrying comes back through the queue."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from loyalty.observability import logger, metrics
from loyalty.offers.requests import OfferRequest
from loyalty.wiring import services


class OfferRecord(SqsRecordModel):
    body: Json[OfferRequest]


processor = BatchProcessor(event_type=EventType.SQS, model=OfferRecord)


def record_handler(record: OfferRecord) -> dict[str, str]:
    return services.offer_sender().handle(record.body)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
