"""A webhook delivery as the receiver queued it (`loyalty.shop.intake`), and the event it stands for."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from loyalty.shop.events import ShopEvent
from loyalty.shop.shopify import parse_shopify_webhook
from loyalty.shop.woocommerce import parse_woocommerce_webhook


class QueuedWebhook(BaseModel):
    """A verified delivery: the headers the mapping needs and the body's exact text."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: Literal["shopify", "woocommerce"]
    topic: str = Field(min_length=1)
    shop: str = Field(min_length=1)  # Shopify: the shop domain; WooCommerce: the webhook source
    webhook_id: str | None = None  # Shopify's X-Shopify-Webhook-Id, the same on every retry
    body: str


def shop_event(webhook: QueuedWebhook) -> ShopEvent | None:
    """The event the delivery stands for, or None for one the programme does not use.

    Raises MalformedPayloadError, naming the field, for a body that lacks something the mapping needs.
    """
    raw = webhook.body.encode()
    if webhook.platform == "shopify":
        return parse_shopify_webhook(webhook.topic, webhook.shop, webhook.webhook_id or "", raw)
    return parse_woocommerce_webhook(webhook.topic, webhook.shop, raw)
