"""Shop webhooks: verify the signature over the exact bytes, normalise, queue for the ledger, answer fast."""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.adapters.shopify import parse_shopify_webhook, verify_shopify_signature
from loyalty.adapters.woocommerce import is_woocommerce_ping, parse_woocommerce_webhook, verify_woocommerce_signature
from loyalty.errors import InvalidSignatureError
from loyalty.events import ShopEvent
from loyalty.http_body import raw_body
from loyalty.http_errors import register_error_handlers
from loyalty.observability import logger, metrics
from loyalty.settings import WebhookSettings, load_settings

app = APIGatewayHttpResolver()
register_error_handlers(app)


@cache
def _sqs() -> Any:
    return boto3.client("sqs")


def _secret(name: str, settings: WebhookSettings) -> str:
    return str(parameters.get_secret(name, max_age=settings.secret_max_age_seconds))


def _accepted(event: ShopEvent | None, topic: str) -> Response:
    if event is None:
        logger.info("webhook topic ignored", topic=topic)
        metrics.add_metric(name="WebhookIgnored", unit="Count", value=1)
        return Response(200, content_types.APPLICATION_JSON, {"status": "ignored", "topic": topic})
    settings = load_settings(WebhookSettings)
    _sqs().send_message(QueueUrl=settings.queue_url, MessageBody=event.model_dump_json())
    logger.info("webhook queued", topic=topic, kind=event.kind, dedup_key=event.dedup_key)
    metrics.add_metric(name="WebhookQueued", unit="Count", value=1)
    return Response(200, content_types.APPLICATION_JSON, {"status": "queued"})


@app.post("/webhooks/shopify")
def shopify_webhook() -> Response:
    settings = load_settings(WebhookSettings)
    raw = raw_body(app.current_event, settings.max_body_bytes)
    headers = app.current_event.headers
    secret = _secret(settings.shopify_secret_name, settings)
    if not verify_shopify_signature(raw, headers.get("x-shopify-hmac-sha256"), secret):
        raise InvalidSignatureError("missing or invalid X-Shopify-Hmac-Sha256")
    topic = headers.get("x-shopify-topic", "")
    event = parse_shopify_webhook(
        topic, headers.get("x-shopify-shop-domain", ""), headers.get("x-shopify-webhook-id", ""), raw
    )
    return _accepted(event, topic)


@app.post("/webhooks/woocommerce")
def woocommerce_webhook() -> Response:
    settings = load_settings(WebhookSettings)
    raw = raw_body(app.current_event, settings.max_body_bytes)
    headers = app.current_event.headers
    if is_woocommerce_ping(raw, headers.get("content-type")):
        logger.info("woocommerce webhook saved (ping)")
        return Response(200, content_types.APPLICATION_JSON, {"status": "ok"})
    secret = _secret(settings.woocommerce_secret_name, settings)
    if not verify_woocommerce_signature(raw, headers.get("x-wc-webhook-signature"), secret):
        raise InvalidSignatureError("missing or invalid X-WC-Webhook-Signature")
    topic = headers.get("x-wc-webhook-topic", "")
    event = parse_woocommerce_webhook(topic, headers.get("x-wc-webhook-source", ""), raw)
    return _accepted(event, topic)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
