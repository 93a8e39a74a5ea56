"""The member API's rewards through the embedded stack, as a rewards page or app calls it over HTTP: what a member
can have, redeeming with an Idempotency-Key (once, whatever is repeated), refusals that write nothing, the
member's redemptions and cancelling an unused code."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from datetime import date, timedelta
from typing import Any

from infra.local.stack import Stack
from tests.e2e.conftest import Shop
from tests.e2e.test_offers import emails_to
from tests.e2e.test_programme_over_time import override_callout
from tests.e2e.test_salesforce import CALLOUT_SECRET, callout, contact_for, unlinked_shopper
from tests.e2e.test_webshop_pipeline import shopify_order, unique_email

SHOP = "nordic-outdoor.myshopify.com"


def call(stack: Stack, method: str, path: str, body: Any = None, key: str | None = None) -> tuple[int, dict[str, Any]]:
    headers = {"Content-Type": "application/json"} | ({"Idempotency-Key": key} if key is not None else {})
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(stack.gateway_url + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def member_with_points(stack: Stack, shop: Shop, points: int) -> tuple[str, int]:
    """A shopper enrolled by their first order, given ``points`` by a CRM user: (member id, points available)."""
    _, member_id, available = shopper_with_points(stack, shop, points)
    return member_id, available


def shopper_with_points(stack: Stack, shop: Shop, points: int) -> tuple[str, str, int]:
    """(e-mail, member id, points available) of a shopper enrolled by their first order, given ``points``."""
    email, member_id = unlinked_shopper(stack, shop)
    body = callout(stack, "points.adjustment", contact={"id": None, "loyaltyMemberId": member_id, "email": None})
    body["adjustment"]["points"] = points
    status, _ = stack.salesforce.send_flow_callout(
        f"{stack.gateway_url}/webhooks/salesforce/flow", body, CALLOUT_SECRET
    )
    assert status == 202
    stack.wait_idle()
    _, member = shop.get(f"/members/{member_id}")
    return email, member_id, member["points"]["available"]


def test_a_member_redeems_once_and_cancels_through_the_api(stack: Stack, shop: Shop) -> None:
    member_id, available = member_with_points(stack, shop, 1000)
    status, offer = call(stack, "GET", f"/members/{member_id}/rewards?lang=sv")
    assert status == 200
    by_id = {reward["rewardId"]: reward for reward in offer["rewards"]}
    assert by_id["50-off"]["canRedeem"] is True and by_id["50-off"]["name"] == "50 kr rabatt"
    assert offer["available"] == available
    # When the member redeems 500 points, and the request is repeated
    key = str(uuid.uuid4())
    request = {"rewardId": "50-off", "shop": SHOP}
    status, made = call(stack, "POST", f"/members/{member_id}/redemptions", request, key)
    assert status == 201, made
    assert {"redemptionId", "code", "rewardId", "pointsSpent", "validUntil", "status"} <= set(made)
    assert (made["rewardId"], made["pointsSpent"], made["status"]) == ("50-off", 500, "pending")
    assert call(stack, "POST", f"/members/{member_id}/redemptions", request, key) == (201, made)
    _, member = shop.get(f"/members/{member_id}")
    assert member["points"]["available"] == available - 500
    assert call(stack, "GET", f"/members/{member_id}/redemptions")[1]["redemptions"] == [made]
    # Then cancelling the unused code gives the points back, once
    status, cancelled = call(stack, "DELETE", f"/members/{member_id}/redemptions/{made['redemptionId']}")
    assert (status, cancelled["status"]) == (200, "cancelled")
    assert call(stack, "DELETE", f"/members/{member_id}/redemptions/{made['redemptionId']}") == (200, cancelled)
    _, member = shop.get(f"/members/{member_id}")
    assert member["points"]["available"] == available


def test_refused_redemptions_say_why_and_write_nothing(stack: Stack, shop: Shop) -> None:
    member_id, available = member_with_points(stack, shop, 400)
    path = f"/members/{member_id}/redemptions"
    status, refused = call(stack, "POST", path, {"rewardId": "10-percent", "shop": SHOP}, "k-1")
    assert status == 409
    assert (refused["rule"], refused["balance"], refused["shortfall"]) == ("points", available, 1000 - available)
    status, refused = call(stack, "POST", path, {"rewardId": "tote-bag", "shop": SHOP}, "k-2")
    assert (status, refused["rule"]) == (409, "min_tier")
    assert call(stack, "POST", path, {"rewardId": "no-such", "shop": SHOP}, "k-3")[0] == 404
    assert call(stack, "POST", path, {"rewardId": "50-off", "shop": "other.myshopify.com"}, "k-4")[0] == 404
    assert call(stack, "POST", path, {"rewardId": "free-shipping", "shop": SHOP})[0] == 400  # no key
    assert call(stack, "POST", "/members/nobody/redemptions", {"rewardId": "50-off", "shop": SHOP}, "k")[0] == 404
    assert call(stack, "POST", path, {"rewardId": "free-shipping", "shop": SHOP}, "k-5")[0] == 201
    # The same key with another request: 422, nothing written
    assert call(stack, "POST", path, {"rewardId": "plant-a-tree"}, "k-5")[0] == 422
    _, member = shop.get(f"/members/{member_id}")
    assert member["points"]["available"] == available - 300
    assert len(call(stack, "GET", f"{path}")[1]["redemptions"]) == 1


def redemption(stack: Stack, member_id: str, redemption_id: str) -> dict[str, Any]:
    _, listed = call(stack, "GET", f"/members/{member_id}/redemptions")
    return next(r for r in listed["redemptions"] if r["redemptionId"] == redemption_id)


def test_a_redeemed_code_is_made_in_the_shop_and_a_cancel_removes_it(stack: Stack, shop: Shop) -> None:
    member_id, available = member_with_points(stack, shop, 1000)
    stack.shopify.inject("throttled", times=2)  # the shop asks for patience: the maker waits and goes on
    status, made = call(
        stack, "POST", f"/members/{member_id}/redemptions", {"rewardId": "50-off", "shop": SHOP}, str(uuid.uuid4())
    )
    assert status == 201 and made["status"] == "pending"
    stack.wait_idle()
    active = redemption(stack, member_id, made["redemptionId"])
    assert active["status"] == "active"
    assert active["applyUrl"] == f"https://{SHOP}/discount/{made['code']}"
    discount = stack.shopify.discount(SHOP, made["code"])
    assert discount is not None
    assert (discount.input["usageLimit"], discount.input["customerGets"]["value"]) == (
        1,
        {"discountAmount": {"amount": "50.00", "appliesOnEachItem": False}},
    )
    # Cancelled unused: the code leaves the shop, the points come back
    status, cancelled = call(stack, "DELETE", f"/members/{member_id}/redemptions/{made['redemptionId']}")
    assert (status, cancelled["status"]) == (200, "cancelled")
    assert stack.shopify.discount(SHOP, made["code"]) is None
    _, member = shop.get(f"/members/{member_id}")
    assert member["points"]["available"] == available


def test_a_code_the_shop_refuses_gives_the_points_back(stack: Stack, shop: Shop) -> None:
    member_id, available = member_with_points(stack, shop, 1000)
    stack.shopify.inject("user_error")
    status, made = call(
        stack, "POST", f"/members/{member_id}/redemptions", {"rewardId": "10-percent", "shop": SHOP}, "refused-1"
    )
    assert status == 201
    stack.wait_idle()
    refused = redemption(stack, member_id, made["redemptionId"])
    assert refused["status"] == "refused"
    assert "plan does not allow it" in refused["reason"]
    _, member = shop.get(f"/members/{member_id}")
    assert member["points"]["available"] == available
    reasons = [entry["reason"] for entry in member["entries"]]
    assert any("The shop refused the code" in reason for reason in reasons)


def test_an_order_that_uses_the_code_marks_it_used(stack: Stack, shop: Shop) -> None:
    email, member_id, _ = shopper_with_points(stack, shop, 1000)
    _, made = call(
        stack, "POST", f"/members/{member_id}/redemptions", {"rewardId": "free-shipping", "shop": SHOP}, "use-1"
    )
    stack.wait_idle()
    assert redemption(stack, member_id, made["redemptionId"])["status"] == "active"
    mailed = [message for message in emails_to(stack, email) if made["code"] in message["body"]]
    assert len(mailed) == 1  # the code, by e-mail, once (a service message)
    order = json.loads(shopify_order(email, customer_id=None))
    order["discount_codes"] = [{"code": made["code"], "amount": "49.00", "type": "shipping"}]
    assert shop.shopify("orders/paid", json.dumps(order).encode())[0] == 200
    stack.wait_idle()
    used = redemption(stack, member_id, made["redemptionId"])
    assert (used["status"], used["orderKey"]) == ("used", f"shopify:{SHOP}#{order['id']}")
    status, refused = call(stack, "DELETE", f"/members/{member_id}/redemptions/{made['redemptionId']}")
    assert (status, refused["rule"]) == (409, "status")


def test_an_experience_becomes_an_open_task_for_the_person_who_arranges_it(stack: Stack, shop: Shop) -> None:
    # Given a Gold member with a Contact and 5,000 points
    contact_id, member_id = contact_for(stack, shop, unique_email())
    url = f"{stack.gateway_url}/webhooks/salesforce/flow"
    until = (date.today() + timedelta(days=60)).isoformat()
    assert (
        stack.salesforce.send_flow_callout(url, override_callout(stack, member_id, validUntil=until), CALLOUT_SECRET)[0]
        == 202
    )
    body = callout(stack, "points.adjustment", contact={"id": None, "loyaltyMemberId": member_id, "email": None})
    body["adjustment"]["points"] = 5000
    assert stack.salesforce.send_flow_callout(url, body, CALLOUT_SECRET)[0] == 202
    stack.wait_idle()
    # When they redeem the styling session
    status, made = call(stack, "POST", f"/members/{member_id}/redemptions", {"rewardId": "styling-session"}, "style-1")
    assert (status, made["status"], made["code"]) == (201, "requested", None)
    stack.wait_idle()
    # Then their Contact has one open Task saying what to arrange
    tasks = [t for t in stack.salesforce.tasks() if t["WhoId"] == contact_id and "to arrange" in t["Subject"]]
    assert [(t["Subject"], t["Status"]) for t in tasks] == [
        ("Loyalty reward to arrange: styling-session", "Not Started")
    ]
