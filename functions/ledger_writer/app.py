"""Queued webhook deliveries into the catalogue, the members and the ledger; one bad message never fails its batch.

Each delivery is turned into one of our events here, after the queue: one that cannot be mapped fails alone,
is retried, then waits in the dead-letter queue with its body intact, to be replayed once the mapping is fixed.
"""

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
from loyalty.adapters.webshops import QueuedWebhook, shop_event
from loyalty.errors import MalformedPayloadError
from loyalty.events import ShopEvent
from loyalty.observability import logger, metrics
from loyalty.offer_rules import load_offer_rules
from loyalty.program import load_program
from loyalty.settings import LedgerWriterSettings, load_settings
from loyalty.shop_events import ShopEventApplier


class QueuedWebhookRecord(SqsRecordModel):
    body: Json[QueuedWebhook]


processor = BatchProcessor(event_type=EventType.SQS, model=QueuedWebhookRecord)
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


def record_handler(record: QueuedWebhookRecord) -> str:
    webhook = record.body
    try:
        event = shop_event(webhook)
    except MalformedPayloadError as error:  # the message names fields, never their values
        logger.warning("webhook body not mapped", platform=webhook.platform, topic=webhook.topic, error=str(error))
        metrics.add_metric(name="WebhookNotMapped", unit="Count", value=1)
        raise
    if event is None:
        logger.info("webhook ignored", platform=webhook.platform, topic=webhook.topic)
        metrics.add_metric(name="WebhookIgnored", unit="Count", value=1)
        return "ignored"
    outcome = _apply_once()(event=event)
    logger.info(outcome, kind=event.kind, dedup_key=event.dedup_key)
    metrics.add_metric(name="ShopEventApplied", unit="Count", value=1)
    return outcome


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    idempotency.register_lambda_context(context)
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
