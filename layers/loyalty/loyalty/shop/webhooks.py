"""A webhook delivery as the receiver queued it (`loyalty.shop.intake`), and the event it stands for."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from loyalty.shop.events import ShopEvent, Unused
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


def shop_event(webhook: QueuedWebhook, *, test_orders_earn: bool = False) -> ShopEvent | Unused | None:
    """The event the delivery stands for; Unused for a test delivery, a cancelled order and the like; None for
    a topic the programme does not use. `test_orders_earn`: Shopify orders marked `test` earn (a development
    store's setting).

    Raises MalformedPayloadError, naming the field, for a body that lacks something the mapping needs.
    """
    raw = webhook.body.encode()
    if webhook.platform == "shopify":
        return parse_shopify_webhook(
            webhook.topic, webhook.shop, webhook.webhook_id or "", raw, test_orders_earn=test_orders_earn
        )
    return parse_woocommerce_webhook(webhook.topic, webhook.shop, raw)
