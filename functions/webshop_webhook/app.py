"""Shop webhooks: verify the signature over the exact bytes, queue the delivery for the ledger, answer fast.

Only the standard library, Powertools and boto3 load here (`loyalty.webhook_intake`): the ledger writer maps
the body to our events after the queue.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.errors import InvalidSignatureError
from loyalty.http_body import raw_body
from loyalty.http_errors import register_error_handlers
from loyalty.observability import logger, metrics
from loyalty.settings import WebhookSettings, load_settings
from loyalty.webhook_intake import is_woocommerce_ping, shopify_message, signature_matches, woocommerce_message

app = APIGatewayHttpResolver()
register_error_handlers(app)


@cache
def _sqs() -> Any:
    return boto3.client("sqs")


def _secret(name: str, settings: WebhookSettings) -> str:
    return str(parameters.get_secret(name, max_age=settings.secret_max_age_seconds))


def _accepted(platform: str, topic: str, message: str | None, settings: WebhookSettings) -> Response:
    if message is None:
        logger.info("webhook topic ignored", platform=platform, topic=topic)
        metrics.add_metric(name="WebhookIgnored", unit="Count", value=1)
        return Response(200, content_types.APPLICATION_JSON, {"status": "ignored", "topic": topic})
    _sqs().send_message(QueueUrl=settings.queue_url, MessageBody=message)
    logger.info("webhook queued", platform=platform, topic=topic)
    metrics.add_metric(name="WebhookQueued", unit="Count", value=1)
    return Response(200, content_types.APPLICATION_JSON, {"status": "queued"})


@app.post("/webhooks/shopify")
def shopify_webhook() -> Response:
    settings = load_settings(WebhookSettings)
    raw = raw_body(app.current_event, settings.max_body_bytes)
    headers = app.current_event.headers
    secret = _secret(settings.shopify_secret_name, settings)
    if not signature_matches(raw, headers.get("x-shopify-hmac-sha256"), secret):
        raise InvalidSignatureError("missing or invalid X-Shopify-Hmac-Sha256")
    topic = headers.get("x-shopify-topic", "")
    message = shopify_message(
        topic, headers.get("x-shopify-shop-domain", ""), headers.get("x-shopify-webhook-id", ""), raw
    )
    return _accepted("shopify", topic, message, settings)


@app.post("/webhooks/woocommerce")
def woocommerce_webhook() -> Response:
    settings = load_settings(WebhookSettings)
    raw = raw_body(app.current_event, settings.max_body_bytes)
    headers = app.current_event.headers
    if is_woocommerce_ping(raw, headers.get("content-type")):
        logger.info("woocommerce webhook saved (ping)")
        return Response(200, content_types.APPLICATION_JSON, {"status": "ok"})
    secret = _secret(settings.woocommerce_secret_name, settings)
    if not signature_matches(raw, headers.get("x-wc-webhook-signature"), secret):
        raise InvalidSignatureError("missing or invalid X-WC-Webhook-Signature")
    topic = headers.get("x-wc-webhook-topic", "")
    message = woocommerce_message(topic, headers.get("x-wc-webhook-source", ""), raw)
    return _accepted("woocommerce", topic, message, settings)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
