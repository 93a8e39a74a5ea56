"""The shops' codes adapter against the emulated Shopify Admin GraphQL API and WooCommerce REST API: the shapes
each platform documents, one code however often it is asked, bounded retries when the shop asks for patience,
and the shop's own words when it refuses."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from infra.local.shopify_admin import ShopifyAdmin
from infra.local.woocommerce_rest import WooCommerceRest
from loyalty.adapters.shop_codes import ATTEMPTS, ShopCodesBySecret
from loyalty.errors import ShopRefusedError, ShopRetryableError
from loyalty.ports.shops import CodeRequest, CustomerLabels, RefundedLine

SHOPIFY = "shopify:demo-shop.myshopify.com"
WOO = "woocommerce:kahvila.example.fi"


@pytest.fixture
def shopify() -> Iterator[ShopifyAdmin]:
    admin = ShopifyAdmin(tokens={"demo-shop.myshopify.com": "shpat_test"}).start()
    yield admin
    admin.stop()


@pytest.fixture
def woo() -> Iterator[WooCommerceRest]:
    rest = WooCommerceRest(keys={"kahvila.example.fi": ("ck_test", "cs_test")}).start()
    yield rest
    rest.stop()


@pytest.fixture
def waits() -> list[float]:
    return []


@pytest.fixture
def codes(shopify: ShopifyAdmin, woo: WooCommerceRest, waits: list[float]) -> ShopCodesBySecret:
    credentials = {
        SHOPIFY: {"accessToken": "shpat_test", "apiUrl": f"{shopify.url}/shops/demo-shop.myshopify.com"},
        WOO: {"consumerKey": "ck_test", "consumerSecret": "cs_test", "apiUrl": f"{woo.url}/shops/kahvila.example.fi"},
    }
    return ShopCodesBySecret(lambda: credentials, sleep=waits.append)


def request(shop: str = SHOPIFY, kind: str = "amount_off", code: str = "LOY-ABCD-EFGH", **more: object) -> CodeRequest:
    values: dict[str, object] = {
        "shop": shop,
        "code": code,
        "title": "Loyalty reward: 50 off (rdm_1)",
        "kind": kind,
        "starts_at": datetime(2026, 3, 2, 9, tzinfo=UTC),
        "ends_at": datetime(2026, 4, 1, 22, tzinfo=UTC),
        "currency": "SEK",
        "customer_email": "anna@example.com",
        "amount": Decimal(50) if kind == "amount_off" else None,
        "percent": Decimal(10) if kind == "percent_off" else None,
        "product": "40000000001" if kind == "free_product" else None,
        "min_subtotal": Decimal(200),
    } | more
    return CodeRequest(**values)  # type: ignore[arg-type]


def test_a_shopify_amount_off_code_for_one_customer_once(codes: ShopCodesBySecret, shopify: ShopifyAdmin) -> None:
    shopify.add_customer("demo-shop.myshopify.com", 501, "anna@example.com")
    made = codes.create(request())
    assert made.apply_url == "https://demo-shop.myshopify.com/discount/LOY-ABCD-EFGH"
    discount = shopify.discount("demo-shop.myshopify.com", "LOY-ABCD-EFGH")
    assert discount is not None and discount.id == made.shop_code_id
    given = discount.input
    assert given["customerGets"] == {
        "value": {"discountAmount": {"amount": "50.00", "appliesOnEachItem": False}},
        "items": {"all": True},
    }
    assert given["context"] == {"customers": {"add": ["gid://shopify/Customer/501"]}}
    assert (given["usageLimit"], given["appliesOncePerCustomer"]) == (1, True)
    assert given["minimumRequirement"] == {"subtotal": {"greaterThanOrEqualToSubtotal": "200.00"}}
    assert given["endsAt"] == "2026-04-01T22:00:00+00:00"
    # Asked again (an earlier attempt made it): the same discount, not a second
    assert codes.create(request()) == made
    assert len(shopify.discounts) == 1


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("percent_off", {"customerGets": {"value": {"percentage": 0.1}, "items": {"all": True}}}),
        (
            "free_product",
            {
                "customerGets": {
                    "value": {"percentage": 1.0},
                    "items": {"products": {"productVariantsToAdd": ["gid://shopify/ProductVariant/40000000001"]}},
                }
            },
        ),
        ("free_shipping", {"destination": {"all": True}}),
    ],
)
def test_shopify_codes_of_each_kind(
    codes: ShopCodesBySecret, shopify: ShopifyAdmin, kind: str, expected: dict[str, object]
) -> None:
    codes.create(request(kind=kind))
    discount = shopify.discount("demo-shop.myshopify.com", "LOY-ABCD-EFGH")
    assert discount is not None
    assert discount.kind == ("free_shipping" if kind == "free_shipping" else "basic")
    assert expected.items() <= discount.input.items()
    assert discount.input["context"] == {"all": "ALL"}  # no Shopify customer with that e-mail: single use, anyone


def test_shopify_throttling_and_errors_are_retried_a_bounded_number_of_times(
    codes: ShopCodesBySecret, shopify: ShopifyAdmin, waits: list[float]
) -> None:
    shopify.inject("throttled", times=2)
    shopify.inject("server_error")
    codes.create(request())
    assert len(waits) == 3 and all(0 < wait <= 4 for wait in waits)
    shopify.inject("throttled", times=ATTEMPTS * 3)
    with pytest.raises(ShopRetryableError):
        codes.create(request(code="LOY-SECO-NDXX"))
    assert shopify.discount("demo-shop.myshopify.com", "LOY-SECO-NDXX") is None


def test_shopify_refusals_carry_its_words_and_a_wrong_token_is_not_the_members_fault(
    codes: ShopCodesBySecret, shopify: ShopifyAdmin
) -> None:
    with pytest.raises(ShopRefusedError, match="Ends at needs to be after starts_at"):
        codes.create(request(ends_at=datetime(2026, 3, 1, tzinfo=UTC)))
    shopify.tokens["demo-shop.myshopify.com"] = "rotated"
    with pytest.raises(ShopRetryableError, match="access token"):
        codes.create(request())


def test_a_shopify_code_is_removed_and_removing_it_again_is_fine(
    codes: ShopCodesBySecret, shopify: ShopifyAdmin
) -> None:
    made = codes.create(request())
    codes.remove(SHOPIFY, made.shop_code_id)
    assert shopify.discount("demo-shop.myshopify.com", "LOY-ABCD-EFGH") is None
    codes.remove(SHOPIFY, made.shop_code_id)


def test_a_woocommerce_coupon_for_one_customer_once(codes: ShopCodesBySecret, woo: WooCommerceRest) -> None:
    made = codes.create(request(shop=WOO))
    coupon = woo.coupon("kahvila.example.fi", "LOY-ABCD-EFGH")
    assert coupon is not None and str(coupon["id"]) == made.shop_code_id
    assert (coupon["discount_type"], coupon["amount"], coupon["minimum_amount"]) == ("fixed_cart", "50.00", "200.00")
    assert (coupon["usage_limit"], coupon["email_restrictions"]) == (1, ["anna@example.com"])
    assert coupon["date_expires"] == "2026-03-31"  # the last whole day before the code ends
    assert codes.create(request(shop=WOO)) == made  # asked again: the same coupon
    assert len(woo.coupons) == 1
    codes.remove(WOO, made.shop_code_id)
    assert woo.coupon("kahvila.example.fi", "LOY-ABCD-EFGH") is None
    codes.remove(WOO, made.shop_code_id)  # already gone: fine


def test_woocommerce_kinds_errors_and_retries(
    codes: ShopCodesBySecret, woo: WooCommerceRest, waits: list[float]
) -> None:
    codes.create(request(shop=WOO, kind="free_product", code="LOY-PROD-UCTX"))
    product = woo.coupon("kahvila.example.fi", "LOY-PROD-UCTX")
    assert product is not None and (product["product_ids"], product["amount"]) == ([40000000001], "100")
    woo.inject_server_errors(2)
    codes.create(request(shop=WOO, kind="free_shipping", code="LOY-SHIP-PING"))
    assert len(waits) == 2
    shipping = woo.coupon("kahvila.example.fi", "LOY-SHIP-PING")
    assert shipping is not None and shipping["free_shipping"] is True
    woo.inject_server_errors(ATTEMPTS)
    with pytest.raises(ShopRetryableError):
        codes.create(request(shop=WOO, code="LOY-NEVE-RMAD"))
    woo.keys["kahvila.example.fi"] = ("ck_other", "cs_other")
    with pytest.raises(ShopRetryableError, match="API keys"):
        codes.create(request(shop=WOO, code="LOY-NEVE-RMAD"))


def test_a_shop_without_credentials_waits_for_them(codes: ShopCodesBySecret) -> None:
    with pytest.raises(ShopRetryableError, match="no credentials"):
        codes.create(request(shop="shopify:other.myshopify.com"))


# ---------------------------------------------------------------- the member's tier and segment on the customer


def labels(shop: str, customer_id: str, tier: str, segment: str | None = "satisfaction") -> CustomerLabels:
    others = tuple(t for t in ("bronze", "silver", "gold", "platinum") if t != tier)
    return CustomerLabels(shop, customer_id, tier, segment, others)


def test_a_shopify_customer_gets_the_tier_and_segment_as_metafields_and_one_tier_tag(
    codes: ShopCodesBySecret, shopify: ShopifyAdmin
) -> None:
    shopify.add_customer("demo-shop.myshopify.com", 42, "anna@example.com")
    codes.label(labels(SHOPIFY, "42", "silver"))
    codes.label(labels(SHOPIFY, "42", "gold", "ambassador"))  # a later change replaces, never adds up
    customer = shopify.customer("demo-shop.myshopify.com", 42)
    assert customer is not None
    assert customer["metafields"] == {"loyalty.tier": "gold", "loyalty.segment": "ambassador"}
    assert customer["tags"] == {"loyalty-tier-gold"}
    codes.label(labels(SHOPIFY, "42", "gold", None))  # no segment any more: none shown
    assert customer["metafields"] == {"loyalty.tier": "gold"}


def test_a_customer_the_shop_does_not_have_is_a_refusal_and_throttling_is_waited_out(
    codes: ShopCodesBySecret, shopify: ShopifyAdmin, waits: list[float]
) -> None:
    with pytest.raises(ShopRefusedError, match="does not exist"):
        codes.label(labels(SHOPIFY, "404", "gold"))
    shopify.add_customer("demo-shop.myshopify.com", 43, "bo@example.com")
    shopify.inject("throttled")
    codes.label(labels(SHOPIFY, "43", "silver"))
    assert waits and (shopify.customer("demo-shop.myshopify.com", 43) or {})["tags"] == {"loyalty-tier-silver"}


def test_a_woocommerce_customer_gets_the_tier_and_segment_as_meta(
    codes: ShopCodesBySecret, woo: WooCommerceRest
) -> None:
    woo.add_customer("kahvila.example.fi", 17, "anna@example.com")
    codes.label(labels(WOO, "17", "silver"))
    codes.label(labels(WOO, "17", "gold", "price"))
    assert woo.customer_meta("kahvila.example.fi", 17) == {"loyalty_tier": "gold", "loyalty_segment": "price"}
    with pytest.raises(ShopRefusedError, match="Invalid resource ID"):
        codes.label(labels(WOO, "18", "gold"))


# ---------------------------------------------------------------- the lines of a WooCommerce order's refunds


def test_a_woocommerce_refunds_lines_are_read_from_its_order(codes: ShopCodesBySecret, woo: WooCommerceRest) -> None:
    woo.add_refund("kahvila.example.fi", 23817, 23858, {"1543": (1, "10.19"), "1545": (0, "7.03")})
    woo.add_refund("kahvila.example.fi", 23817, 23859, {})  # an amount refunded without lines
    assert codes.refund_lines(WOO, "23817", "23858") == {
        "1543": RefundedLine(1, Decimal("10.19")),
        "1545": RefundedLine(0, Decimal("7.03")),  # an amount refunded on the line, no unit
    }
    assert codes.refund_lines(WOO, "23817", "23859") == {}
    with pytest.raises(ShopRefusedError, match="Invalid ID"):
        codes.refund_lines(WOO, "23817", "99999")
    woo.inject_server_errors(ATTEMPTS)
    with pytest.raises(ShopRetryableError):
        codes.refund_lines(WOO, "23817", "23858")
