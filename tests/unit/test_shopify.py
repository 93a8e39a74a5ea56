"""Shopify webhooks: signatures over the exact bytes of real payloads, and their normalisation into our events."""

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from loyalty.errors import MalformedPayloadError
from loyalty.programme.orders import Order, OrderLine
from loyalty.shop.events import CustomerEvent, OrderPaidEvent, ProductEvent, RefundEvent, ShopEventAdapter
from loyalty.shop.intake import signature_matches
from loyalty.shop.shopify import parse_shopify_webhook

EVENTS = Path(__file__).resolve().parents[1] / "events" / "shopify"
SECRET = "4f9c2b7e1a3d5f6081b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6"
SHOP_DOMAIN = "fjallvind-outdoor.myshopify.com"
SHOP = "shopify:fjallvind-outdoor.myshopify.com"
WEBHOOK_ID = "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043"
CET = timezone(timedelta(hours=1))
FILES = ["orders_paid.json", "refunds_create_partial.json", "customers_create.json", "products_create.json"]


def raw(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def payload(name: str) -> Any:
    return json.loads(raw(name))


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def parse(topic: str, body: bytes | Any, webhook_id: str = WEBHOOK_ID) -> Any:
    body = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_shopify_webhook(topic, SHOP_DOMAIN, webhook_id, body)


# --- signatures -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", FILES)
def test_signature_over_the_exact_bytes_is_valid(name: str) -> None:
    # Given a body as Shopify sent it and the header Shopify computed over those bytes
    body = raw(name)
    # When it is verified with the app secret / Then it is accepted
    assert signature_matches(body, sign(body), SECRET) is True


@pytest.mark.parametrize("name", FILES)
def test_signature_with_another_secret_is_refused(name: str) -> None:
    # Given a header signed with a different secret
    body = raw(name)
    header = sign(body, secret="an-old-rotated-secret")
    # When / Then it is refused
    assert signature_matches(body, header, SECRET) is False


@pytest.mark.parametrize("name", FILES)
def test_body_changed_by_one_byte_is_refused(name: str) -> None:
    # Given a valid header and a body with one byte changed in the middle
    body = raw(name)
    header = sign(body)
    middle = len(body) // 2
    tampered = body[:middle] + bytes([body[middle] ^ 0x01]) + body[middle + 1 :]
    # When / Then the signature no longer matches
    assert tampered != body
    assert signature_matches(tampered, header, SECRET) is False


def test_re_serialised_json_is_refused() -> None:
    # Given the same JSON document, re-serialised (same data, different bytes)
    body = raw("orders_paid.json")
    header = sign(body)
    re_serialised = json.dumps(json.loads(body), separators=(",", ":")).encode()
    # When / Then only the exact bytes received verify
    assert signature_matches(re_serialised, header, SECRET) is False


@pytest.mark.parametrize("header", [None, "", "   ", "not base64 at all!", "c2hvcnQ=", "héllo"])
def test_missing_empty_or_garbled_header_is_refused(header: str | None) -> None:
    # Given a real body and no usable header / When verified / Then refused without raising
    assert signature_matches(raw("orders_paid.json"), header, SECRET) is False


def test_empty_secret_is_refused_even_with_a_matching_header() -> None:
    # Given a header computed with an empty key (anyone could compute it)
    body = raw("orders_paid.json")
    # When / Then a missing secret never verifies
    assert signature_matches(body, sign(body, secret=""), "") is False


# --- orders/paid ------------------------------------------------------------------------------------------


def test_orders_paid_becomes_an_order_paid_event_with_exact_amounts() -> None:
    # Given a paid Swedish order: VAT-inclusive SEK prices, a 10% code, a gift card and shipping
    # When it is parsed
    event = parse("orders/paid", raw("orders_paid.json"))
    # Then every amount is taken exactly; discounts come from discount_allocations, not total_discount ("0.00")
    placed_at = datetime(2026, 3, 14, 11, 2, 36, tzinfo=CET)
    assert event == OrderPaidEvent(
        shop=SHOP,
        dedup_key=f"shopify:{WEBHOOK_ID}",
        occurred_at=datetime(2026, 3, 14, 11, 2, 41, tzinfo=CET),
        order=Order(
            shop=SHOP,
            order_id="5981234567890",
            currency="SEK",
            placed_at=placed_at,
            prices_include_tax=True,
            lines=(
                OrderLine(
                    line_id="14870123456789",
                    product_id="8123456789012",
                    quantity=1,
                    unit_price=Decimal("1499.00"),
                    discount=Decimal("149.90"),
                    tax=Decimal("269.82"),
                ),
                OrderLine(
                    line_id="14870123456790",
                    product_id="8123456789345",
                    quantity=3,
                    unit_price=Decimal("149.00"),
                    discount=Decimal("44.70"),
                    tax=Decimal("80.46"),
                ),
                OrderLine(
                    line_id="14870123456791",
                    product_id="8123456789999",
                    quantity=1,
                    unit_price=Decimal("500.00"),
                    discount=Decimal(0),
                    tax=Decimal(0),
                    is_gift_card=True,
                ),
            ),
            shipping=Decimal("59.00"),
            discount_codes=("SPRING10",),
        ),
        customer_id="7212345678901",
        email="astrid.lindqvist@example.se",
        first_name="Astrid",
    )


def test_orders_paid_amounts_add_up_to_the_shopify_totals() -> None:
    # Given the parsed order
    event = parse("orders/paid", raw("orders_paid.json"))
    body = payload("orders_paid.json")
    # When the lines are summed / Then they match Shopify's own subtotal, discounts and tax (shipping tax 11.80)
    lines = event.order.lines
    assert sum(line.amount for line in lines) == Decimal(body["subtotal_price"]) == Decimal("2251.40")
    assert sum(line.discount for line in lines) == Decimal(body["total_discounts"])
    assert sum(line.tax for line in lines) + Decimal("11.80") == Decimal(body["total_tax"])
    assert [line.categories for line in lines] == [(), (), ()]  # filled later from the product catalogue


def test_line_discount_falls_back_to_total_discount_without_allocations() -> None:
    # Given a line whose discount is only in total_discount
    body = payload("orders_paid.json")
    body["line_items"][0]["discount_allocations"] = []
    body["line_items"][0]["total_discount"] = "100.00"
    # When it is parsed / Then total_discount is the line discount
    assert parse("orders/paid", body).order.lines[0].discount == Decimal("100.00")


def test_guest_order_takes_the_order_email_and_billing_first_name() -> None:
    # Given a guest checkout: no customer object
    body = payload("orders_paid.json")
    body["customer"] = None
    # When it is parsed
    event = parse("orders/paid", body)
    # Then there is no customer id, and the e-mail and first name come from the order
    assert (event.customer_id, event.email, event.first_name) == (None, "astrid.lindqvist@example.se", "Astrid")


def test_presentment_currency_is_used_only_without_currency() -> None:
    # Given an order with no shop currency field
    body = payload("orders_paid.json")
    del body["currency"]
    body["presentment_currency"] = "sek"
    # When / Then the presentment currency is used, upper-cased
    assert parse("orders/paid", body).order.currency == "SEK"


def test_lines_of_quantity_zero_are_left_out() -> None:
    # Given a line whose quantity is 0
    body = payload("orders_paid.json")
    body["line_items"][1]["quantity"] = 0
    # When / Then only the other lines remain
    assert [line.line_id for line in parse("orders/paid", body).order.lines] == ["14870123456789", "14870123456791"]


def test_order_event_round_trips_through_json() -> None:
    # Given a parsed order / When it travels as JSON / Then it comes back equal, Decimals exact
    event = parse("orders/paid", raw("orders_paid.json"))
    assert ShopEventAdapter.validate_json(event.model_dump_json()) == event


# --- refunds/create ---------------------------------------------------------------------------------------


def test_partial_refund_lists_the_refunded_quantities_by_line() -> None:
    # Given a refund of two of the three pairs of socks
    # When it is parsed
    event = parse("refunds/create", raw("refunds_create_partial.json"))
    # Then it names the order, the refund and the line with its quantity
    assert event == RefundEvent(
        shop=SHOP,
        dedup_key=f"shopify:{WEBHOOK_ID}",
        occurred_at=datetime(2026, 3, 21, 14, 18, 5, tzinfo=CET),
        order_id="5981234567890",
        refund_id="1012345678901",
        lines={"14870123456790": 2},
    )


def test_refund_sums_repeated_lines_and_drops_zero_quantities() -> None:
    # Given refund line items with a repeated line and a zero quantity
    body = payload("refunds_create_partial.json")
    item = body["refund_line_items"][0]
    body["refund_line_items"] = [item, {**item, "quantity": 1}, {**item, "line_item_id": 14870123456789, "quantity": 0}]
    # When / Then quantities of the same line add up and the zero is dropped
    assert parse("refunds/create", body).lines == {"14870123456790": 3}


def test_refund_without_line_items_reverses_nothing() -> None:
    # Given a refund of shipping or of an amount only: no refund line items
    body = payload("refunds_create_partial.json")
    body["refund_line_items"] = []
    # When / Then lines is empty (nothing to reverse), not None (the whole order)
    assert parse("refunds/create", body).lines == {}


# --- customers --------------------------------------------------------------------------------------------


def test_customers_create_becomes_a_created_customer_event() -> None:
    # Given a new customer who subscribed to e-mail and unsubscribed from SMS
    # When it is parsed
    event = parse("customers/create", raw("customers_create.json"))
    # Then consent maps to booleans and created is True
    assert event == CustomerEvent(
        shop=SHOP,
        dedup_key=f"shopify:{WEBHOOK_ID}",
        occurred_at=datetime(2026, 3, 10, 19, 31, 53, tzinfo=CET),
        customer_id="7212345679555",
        email="erik.nyberg@example.se",
        first_name="Erik",
        last_name="Nyberg",
        phone="+46709876543",
        email_consent=True,
        sms_consent=False,
        locale=None,
        created=True,
    )


def test_customers_update_is_not_created() -> None:
    # Given the same body on customers/update / When / Then created is False
    assert parse("customers/update", raw("customers_create.json")).created is False


@pytest.mark.parametrize(
    ("consent", "expected"),
    [
        ({"state": "subscribed"}, True),
        ({"state": "pending"}, False),
        ({"state": "not_subscribed"}, False),
        ({"state": "redacted"}, False),
        ({"state": "a_state_shopify_adds_later"}, None),
        ({"state": None}, None),
        (None, None),
    ],
)
def test_email_consent_states(consent: dict[str, Any] | None, expected: bool | None) -> None:
    # Given an e-mail consent in a given state
    body = payload("customers_create.json")
    body["email_marketing_consent"] = consent
    # When / Then it maps to True, False or None (unknown: leave the stored consent alone)
    assert parse("customers/update", body).email_consent is expected


def test_customer_without_consent_fields_has_unknown_consent() -> None:
    # Given a customer webhook of API 2025-01 or later, which carries no consent fields
    body = payload("customers_create.json")
    del body["email_marketing_consent"], body["sms_marketing_consent"]
    # When it is parsed / Then both consents are unknown
    event = parse("customers/update", body)
    assert (event.email_consent, event.sms_consent) == (None, None)


# --- products ---------------------------------------------------------------------------------------------


def test_products_create_categories_are_the_type_and_the_tags() -> None:
    # Given a product of type "Shoes" tagged "New-Arrivals, outdoor, Running, shoes"
    # When it is parsed
    event = parse("products/create", raw("products_create.json"))
    # Then the categories are the type then the tags, case-folded, without the repeated "shoes"
    assert event == ProductEvent(
        shop=SHOP,
        dedup_key=f"shopify:{WEBHOOK_ID}",
        occurred_at=datetime(2026, 2, 20, 9, 15, 4, tzinfo=CET),
        product_id="8123456789012",
        title="Trail Runner GTX",
        categories=("shoes", "new-arrivals", "outdoor", "running"),
    )


def test_product_without_type_or_tags_has_no_categories() -> None:
    # Given a product with an empty type and tags made of separators only
    body = payload("products_create.json")
    body["product_type"], body["tags"] = "", " , ,"
    # When / Then it has no categories
    assert parse("products/update", body).categories == ()


# --- topics, dedup keys and malformed bodies --------------------------------------------------------------


@pytest.mark.parametrize("topic", ["orders/create", "orders/cancelled", "app/uninstalled", "customers/delete", ""])
def test_unknown_topic_is_ignored_without_parsing(topic: str) -> None:
    # Given a topic we do not handle, even with a body that is not JSON / When / Then None
    assert parse_shopify_webhook(topic, SHOP_DOMAIN, WEBHOOK_ID, b"not json") is None


def test_dedup_key_is_the_webhook_id() -> None:
    # Given the same body delivered twice with the same webhook id, and once with another
    first = parse("orders/paid", raw("orders_paid.json"))
    retry = parse("orders/paid", raw("orders_paid.json"))
    other = parse("orders/paid", raw("orders_paid.json"), webhook_id="0c1a3f6e-9d2b-4e5f-8a7b-6c5d4e3f2a1b")
    # When / Then a retry has the same key and another webhook a different one
    assert first.dedup_key == retry.dedup_key == f"shopify:{WEBHOOK_ID}"
    assert other.dedup_key != first.dedup_key


@pytest.mark.parametrize("body", [b"", b"{", b'{"id": 1,}', b"\xff\xfe\x00garbage", b'{"price": NaN}'])
def test_malformed_json_raises(body: bytes) -> None:
    # Given a body that is not valid JSON / When parsed on a known topic / Then MalformedPayloadError
    with pytest.raises(MalformedPayloadError, match="orders/paid"):
        parse("orders/paid", body)


@pytest.mark.parametrize(
    ("field", "named"),
    [("line_items", "line_items"), ("created_at", "created_at"), ("taxes_included", "taxes_included")],
)
def test_order_missing_a_required_field_raises_naming_it(field: str, named: str) -> None:
    # Given an order without a field we need
    body = payload("orders_paid.json")
    del body[field]
    # When / Then the error names the field and does not leak the customer's e-mail or phone
    with pytest.raises(MalformedPayloadError, match=named) as error:
        parse("orders/paid", body)
    assert "astrid" not in str(error.value) and "+4670" not in str(error.value)


def test_line_price_of_a_wrong_type_names_the_line() -> None:
    # Given a line whose price is not a number
    body = payload("orders_paid.json")
    body["line_items"][1]["price"] = {"amount": "149.00"}
    # When / Then the error gives the path to the field
    with pytest.raises(MalformedPayloadError, match=r"line_items\[1\]\.price"):
        parse("orders/paid", body)


def test_invalid_customer_email_is_not_repeated_in_the_error() -> None:
    # Given a customer whose e-mail has the wrong type (and contains an address)
    body = payload("customers_create.json")
    body["email"] = {"address": "erik.nyberg@example.se"}
    # When / Then the error names the field but never the value
    with pytest.raises(MalformedPayloadError, match="email") as error:
        parse("customers/create", body)
    assert "erik.nyberg" not in str(error.value)


def test_discount_above_the_line_price_raises() -> None:
    # Given a line discounted by more than it costs
    body = payload("orders_paid.json")
    body["line_items"][0]["discount_allocations"][0]["amount"] = "1600.00"
    # When / Then the order is refused as malformed
    with pytest.raises(MalformedPayloadError, match="exceeds"):
        parse("orders/paid", body)


def test_time_without_offset_raises() -> None:
    # Given a Shopify time without its offset (Shopify always sends one)
    body = payload("refunds_create_partial.json")
    body["created_at"] = "2026-03-21T14:18:05"
    # When / Then it is refused rather than guessed
    with pytest.raises(MalformedPayloadError, match="created_at"):
        parse("refunds/create", body)


@pytest.mark.parametrize("body", [b"[]", b'"order"', b"null"])
def test_body_that_is_not_an_object_raises(body: bytes) -> None:
    with pytest.raises(MalformedPayloadError):
        parse("products/create", body)


@pytest.mark.parametrize(("shop_domain", "webhook_id"), [("", WEBHOOK_ID), (SHOP_DOMAIN, " ")])
def test_missing_shop_domain_or_webhook_id_raises(shop_domain: str, webhook_id: str) -> None:
    with pytest.raises(MalformedPayloadError, match="required"):
        parse_shopify_webhook("orders/paid", shop_domain, webhook_id, raw("orders_paid.json"))
