"""WooCommerce webhooks: signatures over the exact bytes, the ping, dedup keys and normalisation into our events."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from loyalty.errors import MalformedPayloadError
from loyalty.programme.orders import Order, OrderLine
from loyalty.shop.events import CustomerEvent, OrderPaidEvent, ProductEvent, RefundEvent, ShopEventAdapter
from loyalty.shop.intake import is_woocommerce_ping, signature_matches
from loyalty.shop.woocommerce import parse_woocommerce_webhook

EVENTS = Path(__file__).resolve().parents[1] / "events" / "woocommerce"
SECRET = "wc-Zq8#r2Lk!pV6tY1mN4sX9b"
SOURCE = "https://kahvipaahtimo.example.fi/"  # X-WC-Webhook-Source as WooCommerce sends it
SHOP = "woocommerce:kahvipaahtimo.example.fi"
FILES = ["order_completed.json", "order_refunded.json", "customer_created.json", "product_updated.json"]


def raw(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def payload(name: str) -> Any:
    return json.loads(raw(name))


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def parse(topic: str, body: bytes | Any, source: str = SOURCE) -> Any:
    body = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_woocommerce_webhook(topic, source, body)


# --- the files are as WooCommerce sends them --------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_payload_files_are_compact_escaped_json(name: str) -> None:
    # Given a payload file / Then it is wp_json_encode output: ASCII only, escaped slashes, no whitespace
    body = raw(name)
    assert body.isascii() and b"\\/" in body and b'": ' not in body and not body.endswith(b"\n")


# --- signatures -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_signature_over_the_exact_bytes_is_valid(name: str) -> None:
    # Given a body as WooCommerce sent it and its X-WC-Webhook-Signature / When verified / Then accepted
    body = raw(name)
    assert signature_matches(body, sign(body), SECRET) is True


@pytest.mark.parametrize("name", FILES)
def test_signature_with_another_secret_is_refused(name: str) -> None:
    body = raw(name)
    assert signature_matches(body, sign(body, secret="wc-previous-secret"), SECRET) is False


@pytest.mark.parametrize("name", FILES)
def test_body_changed_by_one_byte_is_refused(name: str) -> None:
    # Given a valid signature and a body with one byte changed
    body = raw(name)
    header = sign(body)
    middle = len(body) // 2
    tampered = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
    # When / Then it no longer verifies
    assert signature_matches(tampered, header, SECRET) is False


def test_unescaped_re_encoding_is_refused() -> None:
    # Given the same order re-encoded without WooCommerce's \/ and \u escapes (same data, other bytes)
    body = raw("order_completed.json")
    header = sign(body)
    re_encoded = json.dumps(json.loads(body), ensure_ascii=False, separators=(",", ":")).encode()
    # When / Then only the body as sent verifies
    assert re_encoded != body
    assert signature_matches(re_encoded, header, SECRET) is False


@pytest.mark.parametrize("header", [None, "", "  ", "%%%not-base64%%%", "YWJj", "sïgnature"])
def test_missing_empty_or_garbled_header_is_refused(header: str | None) -> None:
    assert signature_matches(raw("order_completed.json"), header, SECRET) is False


def test_empty_secret_is_refused_even_with_a_matching_header() -> None:
    body = raw("order_completed.json")
    assert signature_matches(body, sign(body, secret=""), "") is False


# --- the ping ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    [None, "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=UTF-8"],
)
def test_ping_is_recognised(content_type: str | None) -> None:
    # Given the unsigned ping WooCommerce sends when a webhook is saved / When / Then it is a ping
    assert is_woocommerce_ping(b"webhook_id=15", content_type) is True


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"webhook_id=15", "application/json"),
        (b"webhook_id=", "application/x-www-form-urlencoded"),
        (b"webhook_id=abc", "application/x-www-form-urlencoded"),
        (b"webhook_id=15&topic=order.updated", "application/x-www-form-urlencoded"),
        (b'{"webhook_id":15}', "application/json"),
        (b"", None),
    ],
)
def test_anything_else_is_not_a_ping(body: bytes, content_type: str | None) -> None:
    assert is_woocommerce_ping(body, content_type) is False


@pytest.mark.parametrize("name", FILES)
def test_real_deliveries_are_not_pings(name: str) -> None:
    assert is_woocommerce_ping(raw(name), "application/json") is False


# --- orders -----------------------------------------------------------------------------------------------


def test_completed_order_becomes_an_order_paid_event_with_exact_amounts() -> None:
    # Given a completed Finnish order in EUR: a 10% coupon, three lines, shipping; the store's prices
    # include VAT but WooCommerce's line amounts never do
    # When it is parsed
    event = parse("order.updated", raw("order_completed.json"))
    # Then unit_price = subtotal / quantity, discount = subtotal - total, tax = total_tax, without tax
    assert event == OrderPaidEvent(
        shop=SHOP,
        dedup_key="woocommerce:kahvipaahtimo.example.fi:order:23817:completed",
        occurred_at=datetime(2026, 3, 16, 7, 12, 44, tzinfo=UTC),
        order=Order(
            shop=SHOP,
            order_id="23817",
            currency="EUR",
            placed_at=datetime(2026, 3, 14, 10, 47, 3, tzinfo=UTC),
            prices_include_tax=False,
            lines=(
                OrderLine(
                    line_id="1543",
                    product_id="1187",
                    quantity=2,
                    unit_price=Decimal("11.315"),
                    discount=Decimal("2.26"),
                    tax=Decimal("2.85"),
                ),
                OrderLine(
                    line_id="1544",
                    product_id="942",
                    quantity=1,
                    unit_price=Decimal("31.79"),
                    discount=Decimal("3.18"),
                    tax=Decimal("7.30"),
                ),
                OrderLine(
                    line_id="1545",
                    product_id="1302",
                    quantity=3,
                    unit_price=Decimal("3.9033333334"),  # 11.71 / 3 rounded up at 10 decimals
                    discount=Decimal("1.1700000002"),  # absorbs the rounding: the amount stays 10.54
                    tax=Decimal("2.69"),
                ),
            ),
            shipping=Decimal("5.50"),
            discount_codes=("kahvi10",),
        ),
        customer_id="57",
        email="aino.virtanen@example.fi",
        first_name="Aino",
    )


def test_completed_order_amounts_add_up_to_the_woocommerce_totals() -> None:
    # Given the parsed order
    order = parse("order.updated", raw("order_completed.json")).order
    body = payload("order_completed.json")
    # When line amounts, taxes and shipping are summed
    amounts = [line.amount for line in order.lines]
    paid = sum(amounts) + sum(line.tax for line in order.lines) + order.shipping + Decimal(body["shipping_tax"])
    # Then each amount is exactly the line total and the order total is what the customer paid
    assert amounts == [Decimal("20.37"), Decimal("28.61"), Decimal("10.54")]
    assert paid == Decimal(body["total"]) == Decimal("79.26")
    assert sum(line.discount for line in order.lines) == Decimal(body["discount_total"]) + Decimal("2e-10")


def test_order_created_as_completed_has_the_same_key_as_order_updated() -> None:
    # Given an order created directly as completed (admin, POS) and later updated, still completed
    created = parse("order.created", raw("order_completed.json"))
    updated = parse("order.updated", raw("order_completed.json"))
    # When / Then both are the same event downstream
    assert created == updated


def test_same_order_and_status_in_two_deliveries_has_the_same_dedup_key() -> None:
    # Given two deliveries of the completed order; the second after a note was added (other bytes, same status)
    first = raw("order_completed.json")
    second_body = payload("order_completed.json")
    second_body["date_modified_gmt"] = "2026-03-16T08:30:00"
    second_body["customer_note"] = "Kiitos!"
    # When both are parsed
    a, b = parse("order.updated", first), parse("order.updated", second_body)
    # Then they share one dedup key, so the order earns once
    assert a.dedup_key == b.dedup_key == "woocommerce:kahvipaahtimo.example.fi:order:23817:completed"


def test_different_status_gives_a_different_dedup_key() -> None:
    # Given the same order completed, then refunded
    completed = parse("order.updated", raw("order_completed.json"))
    refunded = parse("order.updated", raw("order_refunded.json"))
    # When / Then the keys differ, so the refund is not mistaken for a retry of the completion
    assert completed.dedup_key != refunded.dedup_key


@pytest.mark.parametrize("source", [SOURCE, "https://KahviPaahtimo.example.fi", "kahvipaahtimo.example.fi"])
def test_source_url_or_host_give_the_same_shop_and_key(source: str) -> None:
    # Given the source as the header URL (any case, with or without a slash) or a bare host
    event = parse("order.updated", raw("order_completed.json"), source=source)
    # When / Then the shop and key use the lower-cased host
    assert (event.shop, event.dedup_key) == (SHOP, "woocommerce:kahvipaahtimo.example.fi:order:23817:completed")


def test_source_with_a_port_keeps_the_port() -> None:
    event = parse("order.updated", raw("order_completed.json"), source="http://localhost:8080/")
    assert event.shop == "woocommerce:localhost:8080"


def test_refunded_order_reverses_the_whole_order() -> None:
    # Given the order moved to status refunded / When it is parsed
    event = parse("order.updated", raw("order_refunded.json"))
    # Then it is a refund of the whole order (lines None), identified by the status
    assert event == RefundEvent(
        shop=SHOP,
        dedup_key="woocommerce:kahvipaahtimo.example.fi:order:23817:refunded",
        occurred_at=datetime(2026, 3, 24, 13, 40, 19, tzinfo=UTC),
        order_id="23817",
        refund_id="status:refunded",
        lines=None,
    )


def test_cancelled_order_reverses_the_whole_order() -> None:
    body = payload("order_completed.json")
    body["status"] = "cancelled"
    event = parse("order.updated", body)
    assert (event.kind, event.refund_id, event.lines) == ("refund", "status:cancelled", None)
    assert event.dedup_key == "woocommerce:kahvipaahtimo.example.fi:order:23817:cancelled"


@pytest.mark.parametrize("status", ["pending", "processing", "on-hold", "failed", "checkout-draft"])
def test_other_statuses_are_ignored(status: str) -> None:
    # Given an order update in a status that neither earns nor reverses / When / Then None
    body = payload("order_completed.json")
    body["status"] = status
    assert parse("order.updated", body) is None


def test_guest_order_has_no_customer_id() -> None:
    # Given a guest checkout (customer_id 0) / When / Then customer_id is None and the e-mail is the billing one
    body = payload("order_completed.json")
    body["customer_id"] = 0
    event = parse("order.updated", body)
    assert (event.customer_id, event.email) == (None, "aino.virtanen@example.fi")


def test_line_total_above_its_subtotal_has_no_discount() -> None:
    # Given a line edited by hand so its total exceeds its subtotal
    body = payload("order_completed.json")
    body["line_items"][1].update(subtotal="31.79", total="33.00")
    line = parse("order.updated", body).order.lines[1]
    # When / Then the price is the total and there is no discount
    assert (line.unit_price, line.discount, line.amount) == (Decimal("33.00"), Decimal(0), Decimal("33.00"))


def test_deleted_product_and_zero_quantity_lines() -> None:
    # Given a line whose product was deleted (product_id 0) and a line of quantity 0
    body = payload("order_completed.json")
    body["line_items"][0]["product_id"] = 0
    body["line_items"][2]["quantity"] = 0
    lines = parse("order.updated", body).order.lines
    # When / Then the first has no product id and the zero line is left out
    assert [(line.line_id, line.product_id) for line in lines] == [("1543", None), ("1544", "942")]


def test_order_event_round_trips_through_json() -> None:
    event = parse("order.updated", raw("order_completed.json"))
    assert ShopEventAdapter.validate_json(event.model_dump_json()) == event


# --- customers and products -------------------------------------------------------------------------------


def test_customer_created_becomes_a_created_customer_event() -> None:
    # Given a new WooCommerce customer / When it is parsed
    event = parse("customer.created", raw("customer_created.json"))
    # Then the phone comes from billing and consent and locale are unknown (WooCommerce core has none)
    assert event == CustomerEvent(
        shop=SHOP,
        dedup_key="woocommerce:kahvipaahtimo.example.fi:customer:57:2026-03-14T10:45:51",
        occurred_at=datetime(2026, 3, 14, 10, 45, 51, tzinfo=UTC),
        customer_id="57",
        email="aino.virtanen@example.fi",
        first_name="Aino",
        last_name="Virtanen",
        phone="+358401234567",
        email_consent=None,
        sms_consent=None,
        locale=None,
        created=True,
    )


def test_customer_updates_are_keyed_by_modification_time() -> None:
    # Given the same customer updated later
    body = payload("customer_created.json")
    body["date_modified_gmt"] = "2026-04-02T06:00:12"
    # When parsed as customer.updated
    event = parse("customer.updated", body)
    # Then it is not "created" and has its own key; a retry of the same update would have the same key
    assert event.created is False
    assert event.dedup_key == "woocommerce:kahvipaahtimo.example.fi:customer:57:2026-04-02T06:00:12"
    assert parse("customer.updated", body).dedup_key == event.dedup_key


def test_product_updated_categories_are_category_and_tag_slugs() -> None:
    # Given a product in categories kahvi and new-arrivals, tagged luomu, reilu-kauppa and kahvi
    # When it is parsed
    event = parse("product.updated", raw("product_updated.json"))
    # Then its categories are the slugs, the repeated "kahvi" once; the title is unescaped
    assert event == ProductEvent(
        shop=SHOP,
        dedup_key="woocommerce:kahvipaahtimo.example.fi:product:1187:2026-03-18T08:05:31",
        occurred_at=datetime(2026, 3, 18, 8, 5, 31, tzinfo=UTC),
        product_id="1187",
        title="Café Crème / 250g",
        categories=("kahvi", "new-arrivals", "luomu", "reilu-kauppa"),
    )


def test_percent_encoded_slug_is_decoded_and_a_missing_slug_uses_the_name() -> None:
    # Given a category whose slug WordPress percent-encoded (non-Latin name) and a tag without a slug
    body = payload("product_updated.json")
    body["categories"] = [{"id": 52, "name": "Кофе", "slug": "%d0%ba%d0%be%d1%84%d0%b5"}]
    body["tags"] = [{"id": 53, "name": " Lahja-Idea "}]
    # When / Then the slug is decoded and the name is stripped and case-folded
    assert parse("product.created", body).categories == ("кофе", "lahja-idea")


# --- topics and malformed bodies --------------------------------------------------------------------------


@pytest.mark.parametrize("topic", ["order.deleted", "order.restored", "coupon.created", "action.wc_custom", ""])
def test_unknown_topic_is_ignored_without_parsing(topic: str) -> None:
    assert parse_woocommerce_webhook(topic, SOURCE, b"webhook_id=15") is None


@pytest.mark.parametrize("body", [b"", b"{", b"webhook_id=15", b'{"id":23817,"status":"completed",}'])
def test_malformed_json_raises(body: bytes) -> None:
    with pytest.raises(MalformedPayloadError, match=r"order\.updated"):
        parse("order.updated", body)


def test_completed_order_without_line_items_raises_naming_the_field() -> None:
    # Given a completed order lacking line_items
    body = payload("order_completed.json")
    del body["line_items"]
    # When / Then the error names the field and leaks no e-mail or phone
    with pytest.raises(MalformedPayloadError, match="line_items") as error:
        parse("order.updated", body)
    assert "aino" not in str(error.value) and "+358" not in str(error.value)


def test_money_that_is_not_a_number_raises() -> None:
    body = payload("order_completed.json")
    body["line_items"][0]["total"] = "twenty"
    with pytest.raises(MalformedPayloadError, match=r"line_items\[0\]\.total"):
        parse("order.updated", body)


def test_order_without_status_raises() -> None:
    body = payload("order_completed.json")
    del body["status"]
    with pytest.raises(MalformedPayloadError, match="status"):
        parse("order.updated", body)


def test_missing_source_raises() -> None:
    with pytest.raises(MalformedPayloadError, match="source"):
        parse("order.updated", raw("order_completed.json"), source=" ")
