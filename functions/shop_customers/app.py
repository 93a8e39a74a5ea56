"""Members' tiers and segments written to their customers in the shops (Shopify metafields and tags, WooCommerce
customer meta), from the table's stream: a batch's changes coalesced per member, pushed only when the tier in
force, the segment or the member's shop customers changed. A shop that cannot answer now fails that member's
record alone; the stream retries it."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger, metrics
from loyalty.wiring import services

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    labeller = services.customer_labeller()
    plan = labeller.plan(services.member_images(event))  # each member's last change, if anything shown changed
    written: list[int] = []

    def label(record: DynamoDBRecord) -> None:
        member = plan.get(str(record.dynamodb.sequence_number)) if record.dynamodb else None
        if member is not None:
            written.append(labeller.push(member))

    response = process_partial_response(event=event, record_handler=label, processor=processor, context=context)
    metrics.add_metric(name="ShopCustomerLabelled", unit="Count", value=sum(written))
    return dict(response)
