"""Redemptions' codes made in the shops, from the table's stream: each pending redemption's code created in
Shopify or WooCommerce and the redemption marked active (or refused, with its points back). A shop that cannot
answer now fails that record alone; the stream retries it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger, metrics
from loyalty.wiring import services

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


def make_code(record: DynamoDBRecord) -> None:
    image = record.dynamodb.new_image if record.dynamodb else None
    found = services.redemption_of(dict(image or {}))
    if found is not None:
        services.code_maker().make(*found)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return dict(process_partial_response(event=event, record_handler=make_code, processor=processor, context=context))
