"""The monthly figures through the embedded stack: an order's entries reach the KpiFunction from the table's
stream and are counted once, for the programme and the member's tier and segment, however often they come."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from infra.local.stack import Stack
from loyalty.adapters.dynamodb.kpis import DynamoDBKpiStore
from loyalty.adapters.dynamodb.models import bind_table
from loyalty.programme.rules import load_program
from tests.e2e.conftest import Shop
from tests.e2e.test_webshop_pipeline import expected_points, shopify_order, unique_email


def test_an_order_is_counted_once_in_its_months_figures(stack: Stack, shop: Shop) -> None:
    bind_table(stack.names["LoyaltyTable"])
    store = DynamoDBKpiStore()
    month = load_program().local_date(datetime.now(UTC)).strftime("%Y-%m")
    before = store.month(month)
    # Given a new shopper's paid order, delivered twice by the shop
    body = shopify_order(unique_email(), customer_id=int(time.time() * 1000))
    assert shop.shopify("orders/paid", body)[0] == 200
    assert shop.shopify("orders/paid", body)[0] == 200
    # When the pipeline has applied it and the stream has been read
    stack.wait_idle()
    after = store.month(month)

    def added(group: str, counter: str) -> int:
        return after.get(group, {}).get(counter, 0) - before.get(group, {}).get(counter, 0)

    # Then the month has one more order, with its points and the enrolment bonus, in the programme's figures
    signup = load_program().bonuses.signup
    assert added("programme", "orders") == 1 and added("programme", "purchasers") == 1
    assert added("programme", "returning_purchasers") == 0  # their first purchase
    assert added("programme", "members_enrolled") == 1  # the order enrolled them
    assert added("programme", "points_issued") == expected_points(body) + signup
    # And the same in the new member's tier's and segment's
    assert added("tier#bronze", "orders") == 1 and added("segment#none", "orders") == 1
