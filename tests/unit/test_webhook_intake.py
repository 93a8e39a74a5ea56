"""The receiver's side of a webhook: what is queued, what is ignored, what is refused, and that the ledger
writer reads back exactly the bytes the shop signed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from loyalty.errors import MalformedPayloadError, PayloadTooLargeError
from loyalty.shop import shopify, woocommerce
from loyalty.shop.events import OrderPaidEvent, RefundEvent
from loyalty.shop.intake import (
    QUEUE_MESSAGE_LIMIT,
    SHOPIFY_TOPICS,
    WOOCOMMERCE_TOPICS,
    shopify_message,
    woocommerce_message,
)
from loyalty.shop.shopify import parse_shopify_webhook
from loyalty.shop.webhooks import QueuedWebhook, shop_event
from loyalty.shop.woocommerce import parse_woocommerce_webhook

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "tests" / "events"
SHOP_DOMAIN = "fjallvind-outdoor.myshopify.com"
SOURCE = "https://kahvipaahtimo.example.fi/"
SHOPIFY = [
    ("orders/paid", "orders_paid.json"),
    ("refunds/create", "refunds_create_partial.json"),
    ("customers/create", "customers_create.json"),
    ("customers/update", "customers_create.json"),
    ("products/create", "products_create.json"),
    ("products/update", "products_create.json"),
]
WOOCOMMERCE = [
    ("order.updated", "order_completed.json"),
    ("order.updated", "order_refunded.json"),
    ("customer.created", "customer_created.json"),
    ("customer.updated", "customer_created.json"),
    ("product.updated", "product_updated.json"),
    ("product.created", "product_updated.json"),
]


def raw(platform: str, name: str) -> bytes:
    return (EVENTS / platform / name).read_bytes()


def queued(message: str | None) -> QueuedWebhook:
    assert message is not None
    return QueuedWebhook.model_validate_json(message)


@pytest.mark.parametrize(("topic", "name"), SHOPIFY)
def test_shopify_delivery_is_queued_and_maps_as_the_body_itself_would(topic: str, name: str) -> None:
    # Given a verified Shopify delivery of a topic the programme uses
    body = raw("shopify", name)
    # When the receiver queues it and the ledger writer reads it back
    webhook = queued(shopify_message(topic, SHOP_DOMAIN, "wh-1", body))
    # Then the body is byte for byte what the shop sent, and it maps to the same event
    assert webhook.body.encode() == body
    assert (webhook.platform, webhook.topic, webhook.shop, webhook.webhook_id) == (
        "shopify",
        topic,
        SHOP_DOMAIN,
        "wh-1",
    )
    assert shop_event(webhook) == parse_shopify_webhook(topic, SHOP_DOMAIN, "wh-1", body) is not None


@pytest.mark.parametrize(("topic", "name"), WOOCOMMERCE)
def test_woocommerce_delivery_is_queued_and_maps_as_the_body_itself_would(topic: str, name: str) -> None:
    body = raw("woocommerce", name)
    webhook = queued(woocommerce_message(topic, SOURCE, body))
    assert webhook.body.encode() == body
    assert (webhook.platform, webhook.topic, webhook.shop, webhook.webhook_id) == ("woocommerce", topic, SOURCE, None)
    assert shop_event(webhook) == parse_woocommerce_webhook(topic, SOURCE, body) is not None


def test_topic_names_are_read_as_the_platforms_send_them() -> None:
    body = raw("shopify", "orders_paid.json")
    webhook = queued(shopify_message(" Orders/Paid ", " Fjallvind-Outdoor.myshopify.com", " wh-2 ", body))
    assert (webhook.topic, webhook.shop, webhook.webhook_id) == ("orders/paid", SHOP_DOMAIN, "wh-2")
    assert isinstance(shop_event(webhook), OrderPaidEvent)


@pytest.mark.parametrize("topic", ["orders/create", "orders/cancelled", "app/uninstalled", ""])
def test_shopify_topics_the_programme_does_not_use_are_not_queued(topic: str) -> None:
    assert shopify_message(topic, SHOP_DOMAIN, "wh-1", raw("shopify", "orders_paid.json")) is None


@pytest.mark.parametrize("topic", ["coupon.created", "order.deleted", "action.woocommerce_order_status_changed"])
def test_woocommerce_topics_the_programme_does_not_use_are_not_queued(topic: str) -> None:
    assert woocommerce_message(topic, SOURCE, raw("woocommerce", "order_completed.json")) is None


@pytest.mark.parametrize("status", ["pending", "processing", "on-hold", "failed", "checkout-draft", "wc-processing"])
def test_woocommerce_order_in_a_status_that_neither_earns_nor_reverses_is_not_queued(status: str) -> None:
    order = json.loads(raw("woocommerce", "order_completed.json"))
    order["status"] = status
    assert woocommerce_message("order.updated", SOURCE, json.dumps(order).encode()) is None


@pytest.mark.parametrize(("status", "kind"), [("wc-completed", OrderPaidEvent), ("Cancelled", RefundEvent)])
def test_woocommerce_order_status_is_read_as_woocommerce_writes_it(status: str, kind: type) -> None:
    order = json.loads(raw("woocommerce", "order_completed.json"))
    order["status"] = status
    assert isinstance(
        shop_event(queued(woocommerce_message("order.updated", SOURCE, json.dumps(order).encode()))), kind
    )


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": 1, "line_items": [',  # cut short
        b"[1, 2, 3]",  # JSON, but not an object
        b'"orders/paid"',
        b"",
        b'{"total": NaN}',
        json.dumps({"email": "åsa@example.se"}).encode("utf-16"),  # JSON, but not UTF-8
        b'{"email": "a@example.se"}'.decode().encode("utf-16-le"),  # no byte order mark: valid UTF-8, with NULs
        b'{"name": "\xc3\x28"}',  # invalid UTF-8
    ],
)
def test_body_that_is_not_a_utf8_json_object_is_refused(body: bytes) -> None:
    with pytest.raises(MalformedPayloadError, match="shopify orders/paid: body is not"):
        shopify_message("orders/paid", SHOP_DOMAIN, "wh-1", body)
    with pytest.raises(MalformedPayloadError, match=r"woocommerce customer\.updated: body is not"):
        woocommerce_message("customer.updated", SOURCE, body)


@pytest.mark.parametrize(("domain", "webhook_id"), [("", "wh-1"), (SHOP_DOMAIN, ""), ("  ", " ")])
def test_shopify_delivery_without_its_shop_or_webhook_id_is_refused(domain: str, webhook_id: str) -> None:
    with pytest.raises(MalformedPayloadError, match="shop domain and the webhook id are required"):
        shopify_message("orders/paid", domain, webhook_id, raw("shopify", "orders_paid.json"))


def test_woocommerce_delivery_without_its_source_is_refused() -> None:
    with pytest.raises(MalformedPayloadError, match="webhook source is required"):
        woocommerce_message("order.updated", " ", raw("woocommerce", "order_completed.json"))


def test_a_body_whose_message_the_queue_cannot_take_is_too_large() -> None:
    # Given a body under a megabyte that JSON escaping takes over the queue's limit
    body = json.dumps({"id": 1, "note": '"' * 400_000}).encode()
    assert len(body) < QUEUE_MESSAGE_LIMIT
    with pytest.raises(PayloadTooLargeError, match="too large to queue"):
        shopify_message("orders/paid", SHOP_DOMAIN, "wh-1", body)


def test_message_keeps_every_character_of_the_body_in_characters_sqs_accepts() -> None:
    customer: dict[str, Any] = json.loads(raw("shopify", "customers_create.json"))
    customer.update(first_name="Åsa 🌲", last_name="Öberg\u2028", note="\ufffe\uffff")
    body = json.dumps(customer, ensure_ascii=False).encode()
    message = shopify_message("customers/update", SHOP_DOMAIN, "wh-3", body)
    assert message is not None and "Åsa 🌲" in message  # one character each, not six-character escapes
    assert "\ufffe" not in message and "\uffff" not in message  # the two characters SQS refuses
    assert queued(message).body.encode() == body


def test_size_is_counted_in_utf8_bytes_and_text_is_not_inflated_by_escapes() -> None:
    # Given 800 KB of Nordic text, which \u escapes would have taken to 2.4 MB
    body = json.dumps({"id": 1, "note": "å" * 400_000}, ensure_ascii=False).encode()
    message = shopify_message("orders/paid", SHOP_DOMAIN, "wh-5", body)
    assert message is not None and QUEUE_MESSAGE_LIMIT > len(message.encode()) > len(body)
    # And a little more text than fits: refused
    body = json.dumps({"id": 1, "note": "å" * 530_000}, ensure_ascii=False).encode()
    with pytest.raises(PayloadTooLargeError):
        shopify_message("orders/paid", SHOP_DOMAIN, "wh-6", body)


def test_a_utf8_byte_order_mark_is_taken_and_kept() -> None:
    body = b"\xef\xbb\xbf" + raw("shopify", "orders_paid.json")
    webhook = queued(shopify_message("orders/paid", SHOP_DOMAIN, "wh-7", body))
    assert webhook.body.encode() == body
    assert isinstance(shop_event(webhook), OrderPaidEvent)


@pytest.mark.parametrize("status", [None, 5, ["completed"]])
def test_woocommerce_order_whose_status_is_not_text_is_queued_for_the_ledger_writer_to_refuse(status: object) -> None:
    order = json.loads(raw("woocommerce", "order_completed.json"))
    order["status"] = status
    webhook = queued(woocommerce_message("order.updated", SOURCE, json.dumps(order).encode()))
    with pytest.raises(MalformedPayloadError, match="status"):
        shop_event(webhook)


def test_the_receiver_queues_exactly_the_topics_the_mapping_knows() -> None:
    assert set(shopify.BUILDERS) == SHOPIFY_TOPICS
    assert set(woocommerce.BUILDERS) == WOOCOMMERCE_TOPICS


def test_a_queued_body_missing_a_field_fails_in_the_ledger_writer_naming_the_field() -> None:
    order = json.loads(raw("shopify", "orders_paid.json"))
    del order["line_items"]
    webhook = queued(shopify_message("orders/paid", SHOP_DOMAIN, "wh-4", json.dumps(order).encode()))
    with pytest.raises(MalformedPayloadError, match="line_items: Field required"):
        shop_event(webhook)


def test_receiver_loads_neither_pydantic_nor_what_only_the_ledger_writer_needs() -> None:
    # Given a fresh interpreter with the receiver's settings / When it imports the handler and builds its services
    program = (
        "import sys, functions.webshop_webhook.app\n"
        "from loyalty.wiring import webhook_receiver\n"
        "receiver, _ = webhook_receiver()\n"
        "print(sorted(sys.modules))"
    )
    settings = {
        "LEDGER_QUEUE_URL": "https://sqs.eu-north-1.amazonaws.com/123456789012/ledger",
        "SHOPIFY_SECRET_NAME": "shopify",
        "WOOCOMMERCE_SECRET_NAME": "woocommerce",
        "AWS_DEFAULT_REGION": "eu-north-1",
    }
    loaded = subprocess.run(
        [sys.executable, "-c", program],
        capture_output=True, text=True, check=True,
        env={**os.environ, **settings, "PYTHONPATH": f"{ROOT / 'layers' / 'loyalty'}:{ROOT}"},
    ).stdout  # fmt: skip
    modules = set(loaded.strip("[]\n").replace("'", "").split(", "))
    # Then it loaded the receiver's path, and nothing only the ledger writer needs
    assert {"functions.webshop_webhook.app", "loyalty.shop.intake", "loyalty.adapters.sqs"} <= modules
    assert "loyalty.wiring.services" not in modules  # the other functions' wiring is not even compiled
    assert not {"pydantic", "pynamodb", "simple_salesforce", "loyalty.shop.events", "loyalty.shop.shopify"} & modules
