"""Shop webhooks: verify the signature over the exact bytes, queue the delivery for the ledger, answer fast.

Only the standard library, Powertools and boto3 load here: the ledger writer maps the body after the queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.http_body import raw_body
from loyalty.http_errors import register_error_handlers
from loyalty.observability import logger, metrics
from loyalty.wiring import webhook_receiver

app = APIGatewayHttpResolver()
register_error_handlers(app)


@app.post("/webhooks/shopify")
def shopify_webhook() -> dict[str, str]:
    receiver, max_bytes = webhook_receiver()
    return receiver.shopify(raw_body(app.current_event, max_bytes), app.current_event.headers)


@app.post("/webhooks/woocommerce")
def woocommerce_webhook() -> dict[str, str]:
    receiver, max_bytes = webhook_receiver()
    return receiver.woocommerce(raw_body(app.current_event, max_bytes), app.current_event.headers)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
