"""The member's tier and segment on their customer in each shop, through the embedded stack: a Shopify customer's
metafields and tier tag, a WooCommerce customer's meta, set when the member is linked and again when a CRM user
sets the tier, never when only points change."""

from __future__ import annotations

import json
import time
from datetime import date, timedelta

from infra.local.stack import Stack
from tests.e2e.conftest import Shop, payload
from tests.e2e.test_programme_over_time import override_callout
from tests.e2e.test_salesforce import CALLOUT_SECRET
from tests.e2e.test_webshop_pipeline import shopify_order, unique_email

SHOPIFY = "nordic-outdoor.myshopify.com"
WOO = "kahvila.example.fi"


def test_the_tier_reaches_the_shopify_customer_and_follows_the_crm(stack: Stack, shop: Shop) -> None:
    # Given a Shopify customer whose first order makes them a member
    email, customer_id = unique_email(), int(time.time() * 1000)
    stack.shopify.add_customer(SHOPIFY, customer_id, email)
    assert shop.shopify("orders/paid", shopify_order(email, customer_id=customer_id))[0] == 200
    stack.wait_idle()
    # Then the shop's customer carries the tier, as a metafield and a tag
    customer = stack.shopify.customer(SHOPIFY, customer_id)
    assert customer is not None
    assert customer["metafields"]["loyalty.tier"] == "bronze" and customer["tags"] == {"loyalty-tier-bronze"}
    requests = stack.shopify.requests
    # When another order only adds points, the shop hears nothing
    assert shop.shopify("orders/paid", shopify_order(email, customer_id=customer_id))[0] == 200
    stack.wait_idle()
    assert stack.shopify.requests == requests
    # When a CRM user sets the member's tier to Gold
    member_id = shop.get(f"/members?email={email}")[1]["memberId"]
    until = (date.today() + timedelta(days=60)).isoformat()
    url = f"{stack.gateway_url}/webhooks/salesforce/flow"
    assert (
        stack.salesforce.send_flow_callout(url, override_callout(stack, member_id, validUntil=until), CALLOUT_SECRET)[0]
        == 202
    )
    stack.wait_idle()
    # Then the customer is Gold in the shop too, with the Bronze tag gone
    assert customer["metafields"]["loyalty.tier"] == "gold" and customer["tags"] == {"loyalty-tier-gold"}


def test_the_tier_reaches_the_woocommerce_customer(stack: Stack, shop: Shop) -> None:
    order = json.loads(payload("woocommerce/order_completed.json"))
    order.update(id=order["id"] + 1000, customer_id=4242)
    order["billing"]["email"] = email = unique_email()
    stack.woocommerce.add_customer(WOO, 4242, email)
    assert shop.woocommerce("order.updated", json.dumps(order).encode())[0] == 200
    stack.wait_idle()
    assert stack.woocommerce.customer_meta(WOO, 4242)["loyalty_tier"] == "bronze"
