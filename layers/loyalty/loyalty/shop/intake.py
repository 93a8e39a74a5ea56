"""What the webhook receiver decides before the queue: signature, ping, topic, well-formed JSON, and the message.

The receiver answers the shop within its deadline and on a cold start too, so this module loads nothing but
the standard library. A verified delivery for a topic we use goes on the ledger queue as it came: the
platform, the topic, the shop and its webhook id (the headers we need), and the body's exact text. Turning
it into one of our events (`loyalty.shop.webhooks`) happens after the queue, in the ledger writer, so a
body that we fail to map lands in the dead-letter queue to be replayed once fixed, instead of being refused
to the shop, which would retry and, after enough failures, remove the subscription.

Signatures (both platforms): the header is the base64 HMAC-SHA256 of the raw body with the secret, checked in
constant time over the exact bytes received, before anything reads the body.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from loyalty.errors import InvalidSignatureError, MalformedPayloadError, PayloadTooLargeError
from loyalty.observability import logger, metrics
from loyalty.wire_json import load_json

if TYPE_CHECKING:  # the port is only a type here: the receiver starts without defining it
    from loyalty.ports.queues import LedgerQueue

SHOPIFY_TOPICS = frozenset(
    {
        "orders/paid",
        "refunds/create",
        "customers/create",
        "customers/update",
        "customers/email_marketing_consent_update",
        "customers/marketing_consent_update",
        "products/create",
        "products/update",
        "customers/data_request",  # the mandatory privacy webhooks
        "customers/redact",
        "shop/redact",
    }
)
WOOCOMMERCE_TOPICS = frozenset(
    {"order.created", "order.updated", "customer.created", "customer.updated", "product.created", "product.updated"}
)
WOOCOMMERCE_EARNING_STATUS = "completed"
WOOCOMMERCE_REVERSING_STATUSES = ("refunded", "cancelled")
QUEUE_MESSAGE_LIMIT = 1_048_576  # bytes: SQS's largest message

WOOCOMMERCE_API_SETTING = (
    "set the webhook's API version to 'WP REST API Integration v3' (WooCommerce > Settings > Advanced > Webhooks)"
)
_LEGACY_RESOURCES = ("order", "customer", "product")

_PING_BODY = re.compile(rb"webhook_id=[0-9]{1,20}")


class OtherApiVersionError(Exception):
    """A WooCommerce body from another API version than WP REST API v3; the message says which."""


def woocommerce_api_version(body: Mapping[str, Any]) -> str | None:
    """The other API version a WooCommerce body comes from, or None for WP REST API v3 (or v2, alike)."""
    if "id" not in body and any(isinstance(body.get(name), dict) for name in _LEGACY_RESOURCES):
        return "the legacy API"  # {"order": {...}}
    if "date_created" in body and not any(name.endswith("_gmt") for name in body):
        return "WP REST API v1"  # dates only in the shop's time zone
    return None


_FORM = "application/x-www-form-urlencoded"


def signature_matches(raw_body: bytes, header_value: str | None, secret: str) -> bool:
    """True if `header_value` is the base64 HMAC-SHA256 of `raw_body` with `secret` (constant-time compare).

    A missing, empty or garbled header, or an empty secret, gives False.
    """
    if not header_value or not secret:
        return False
    try:
        received = base64.b64decode(header_value.strip(), validate=True)
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters in the header
        return False
    expected = hmac.new(secret.encode(), raw_body, hashlib.sha256).digest()
    return hmac.compare_digest(received, expected)


def is_woocommerce_ping(raw_body: bytes, content_type: str | None) -> bool:
    """True for the unsigned `webhook_id=N` ping WooCommerce sends (form-encoded) when a webhook is saved."""
    if content_type is not None and content_type.split(";")[0].strip().lower() != _FORM:
        return False
    return _PING_BODY.fullmatch(raw_body.strip()) is not None


def woocommerce_order_status(value: str) -> str:
    """`wc-Completed ` -> `completed`: WooCommerce order statuses as the programme compares them."""
    return value.strip().lower().removeprefix("wc-")


def shopify_message(topic: str, shop_domain: str, webhook_id: str, raw_body: bytes) -> str | None:
    """The ledger-queue message for a verified Shopify delivery, or None for a topic the programme does not use.

    `topic`, `shop_domain` and `webhook_id` are the X-Shopify-Topic, X-Shopify-Shop-Domain and
    X-Shopify-Webhook-Id headers. Raises MalformedPayloadError for a missing shop domain or webhook id, or a
    body that is not a JSON object, and PayloadTooLargeError for a message the queue cannot take.
    """
    topic = topic.strip().lower()
    if topic not in SHOPIFY_TOPICS:
        return None
    shop_domain, webhook_id = shop_domain.strip().lower(), webhook_id.strip()
    if not shop_domain or not webhook_id:
        raise MalformedPayloadError(f"shopify {topic}: the shop domain and the webhook id are required")
    text, _ = _json_object(raw_body, f"shopify {topic}")
    return _message("shopify", topic, shop_domain, webhook_id, text)


def woocommerce_message(topic: str, source: str, raw_body: bytes) -> str | None:
    """The ledger-queue message for a verified WooCommerce delivery, or None for a topic or order status the
    programme does not use (an order is used when completed, refunded or cancelled).

    `topic` is X-WC-Webhook-Topic and `source` X-WC-Webhook-Source. Raises MalformedPayloadError for a missing
    source or a body that is not a JSON object, OtherApiVersionError for a body of another API version than
    v3, and PayloadTooLargeError for a message the queue cannot take.
    """
    topic = topic.strip().lower()
    if topic not in WOOCOMMERCE_TOPICS:
        return None
    if not source.strip():
        raise MalformedPayloadError(f"woocommerce {topic}: the webhook source is required")
    text, body = _json_object(raw_body, f"woocommerce {topic}")
    other = woocommerce_api_version(body)
    if other is not None:
        raise OtherApiVersionError(other)
    status = body.get("status")
    if topic.startswith("order.") and isinstance(status, str):  # other than text: the ledger writer says so
        status = woocommerce_order_status(status)
        if status != WOOCOMMERCE_EARNING_STATUS and status not in WOOCOMMERCE_REVERSING_STATUSES:
            return None
    return _message("woocommerce", topic, source.strip(), None, text)


def _json_object(raw_body: bytes, what: str) -> tuple[str, dict[str, Any]]:
    """The body's text and its JSON object. Parsed from the decoded text: given bytes, json.loads would also
    take UTF-16 and UTF-32, which the shops never send."""
    try:
        text = raw_body.decode()
    except UnicodeDecodeError:
        raise MalformedPayloadError(f"{what}: body is not valid UTF-8 JSON") from None
    body = load_json(text.removeprefix("\ufeff"), what)
    if not isinstance(body, dict):
        raise MalformedPayloadError(f"{what}: body is not a JSON object")
    return text, body


def _message(platform: str, topic: str, shop: str, webhook_id: str | None, text: str) -> str:
    message = json.dumps(
        {"platform": platform, "topic": topic, "shop": shop, "webhook_id": webhook_id, "body": text},
        ensure_ascii=False,  # non-ASCII text stays one character, not a six-character escape
    )
    # SQS takes any character but the control characters (which json.dumps escapes), unpaired surrogates (which
    # strict UTF-8 never decodes to) and these two
    message = message.replace("\ufffe", "\\ufffe").replace("\uffff", "\\uffff")
    if len(message.encode()) > QUEUE_MESSAGE_LIMIT:
        raise PayloadTooLargeError(f"{platform} {topic}: the body is too large to queue")
    return message


class WebhookReceiver:
    """A shop's delivery, verified and queued for the ledger writer; the answer the shop gets."""

    def __init__(
        self, queue: LedgerQueue, secret: Callable[[str], str], shopify_secret_name: str, woocommerce_secret_name: str
    ) -> None:
        self.queue = queue
        self.secret = secret  # secret name -> secret
        self.shopify_secret_name = shopify_secret_name
        self.woocommerce_secret_name = woocommerce_secret_name

    def shopify(self, raw_body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        """`headers` with lower-cased names, as API Gateway gives them."""
        if not signature_matches(raw_body, headers.get("x-shopify-hmac-sha256"), self.secret(self.shopify_secret_name)):
            raise InvalidSignatureError("missing or invalid X-Shopify-Hmac-Sha256")
        topic = headers.get("x-shopify-topic", "")
        shop, webhook_id = headers.get("x-shopify-shop-domain", ""), headers.get("x-shopify-webhook-id", "")
        return self._queue("shopify", topic, shopify_message(topic, shop, webhook_id, raw_body))

    def woocommerce(self, raw_body: bytes, headers: Mapping[str, str]) -> dict[str, str]:
        if is_woocommerce_ping(raw_body, headers.get("content-type")):
            logger.info("woocommerce webhook saved (ping)")
            return {"status": "ok"}
        secret = self.secret(self.woocommerce_secret_name)
        if not signature_matches(raw_body, headers.get("x-wc-webhook-signature"), secret):
            raise InvalidSignatureError("missing or invalid X-WC-Webhook-Signature")
        topic = headers.get("x-wc-webhook-topic", "")
        try:
            message = woocommerce_message(topic, headers.get("x-wc-webhook-source", ""), raw_body)
        except OtherApiVersionError as other:  # answered, so WooCommerce keeps the webhook; the log says what to do
            logger.warning(f"woocommerce webhook from {other}: not used; {WOOCOMMERCE_API_SETTING}", topic=topic)
            metrics.add_metric(name="WebhookOtherApiVersion", unit="Count", value=1)
            return {"status": "ignored", "topic": topic, "reason": f"{other}: {WOOCOMMERCE_API_SETTING}"}
        return self._queue("woocommerce", topic, message)

    def _queue(self, platform: str, topic: str, message: str | None) -> dict[str, str]:
        if message is None:
            logger.info("webhook topic ignored", platform=platform, topic=topic)
            metrics.add_metric(name="WebhookIgnored", unit="Count", value=1)
            return {"status": "ignored", "topic": topic}
        self.queue.send(message)
        logger.info("webhook queued", platform=platform, topic=topic)
        metrics.add_metric(name="WebhookQueued", unit="Count", value=1)
        return {"status": "queued"}
