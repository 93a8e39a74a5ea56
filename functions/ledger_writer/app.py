"""Queued shop events into the catalogue, the members and the ledger; one bad message never fails its batch."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from loyalty.adapters.dynamodb_directory import Directory
from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.adapters.dynamodb_models import bind_table
from loyalty.adapters.dynamodb_reviews import Reviews
from loyalty.adapters.sqs_offer_queue import OfferQueue
from loyalty.events import ShopEvent
from loyalty.observability import logger, metrics
from loyalty.offer_rules import load_offer_rules
from loyalty.program import load_program
from loyalty.settings import LedgerWriterSettings, load_settings
from loyalty.shop_events import ShopEventApplier


class ShopEventRecord(SqsRecordModel):
    body: Json[ShopEvent]


processor = BatchProcessor(event_type=EventType.SQS, model=ShopEventRecord)
idempotency = IdempotencyConfig(event_key_jmespath="dedup_key", expires_after_seconds=7 * 24 * 3600)


@cache
def _apply_once() -> Callable[..., str]:
    """The applier, wrapped so each shop event (by its dedup key) is applied once; built on first use."""
    settings = load_settings(LedgerWriterSettings)
    bind_table(settings.table)
    applier = ShopEventApplier(
        Ledger(load_program()),
        Directory(),
        Reviews(),
        settings.guest_hold_days,
        load_offer_rules(),
        OfferQueue(settings.offer_queue_url).send,
    )
    store = DynamoDBPersistenceLayer(table_name=settings.idempotency_table)

    @idempotent_function(data_keyword_argument="event", config=idempotency, persistence_store=store)
    def apply(event: ShopEvent) -> str:
        return applier.apply(event)

    return apply


def record_handler(record: ShopEventRecord) -> str:
    event = record.body
    outcome = _apply_once()(event=event)
    logger.info(outcome, kind=event.kind, dedup_key=event.dedup_key)
    metrics.add_metric(name="ShopEventApplied", unit="Count", value=1)
    return outcome


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
