"""Shop webhooks over HTTP through the embedded stack, into the ledger, read back on the member API."""

from __future__ import annotations

import itertools
import json
import uuid
from typing import Any

import boto3

from infra.local.stack import Stack
from loyalty.programme.earning import GrantedOffer, earn_for_order
from loyalty.programme.rules import load_program
from loyalty.shop.events import OrderPaidEvent, ProductEvent
from loyalty.shop.shopify import parse_shopify_webhook
from tests.e2e.conftest import Shop, payload

numbers = itertools.count(1)


def shopify_order(email: str, customer_id: int | None, order_id: int | None = None) -> bytes:
    order: dict[str, Any] = json.loads(payload("shopify/orders_paid.json"))
    order["id"] = order_id or 5_900_000_000_000 + next(numbers)
    order["email"] = email
    if customer_id is None:
        order["customer"] = None
    else:
        order["customer"] = {**order["customer"], "id": customer_id, "email": email}
    return json.dumps(order).encode()


def unique_email() -> str:
    return f"shopper-{uuid.uuid4().hex[:10]}@example.se"


def expected_points(body: bytes, offers: tuple[GrantedOffer, ...] = ()) -> int:
    """What the rules give this order for a bronze member, with the catalogue's categories for its first product
    (the rules themselves are unit-tested with hand-computed figures), and the member's offers if any."""
    event = parse_shopify_webhook("orders/paid", "nordic-outdoor.myshopify.com", "x", body)
    product = parse_shopify_webhook("products/create", "x", "y", payload("shopify/products_create.json"))
    assert isinstance(event, OrderPaidEvent) and isinstance(product, ProductEvent)
    lines = tuple(
        line.model_copy(update={"categories": product.categories if line.product_id == product.product_id else ()})
        for line in event.order.lines
    )
    return earn_for_order(load_program(), event.order.model_copy(update={"lines": lines}), "bronze", offers).points


def member_by_email(shop: Shop, email: str) -> dict[str, Any]:
    status, member = shop.get(f"/members?email={email}")
    assert status == 200, member
    return member


def test_signed_order_gives_pending_points_and_redelivery_changes_nothing(stack: Stack, shop: Shop) -> None:
    # Given a catalogue product and a signed paid order from a new customer
    email = unique_email()
    body = shopify_order(email, customer_id=7_300_000_000_000 + next(numbers))
    # When Shopify delivers it, and then delivers it again with the same webhook id
    status, answer = shop.shopify("orders/paid", body, webhook_id="order-webhook-1")
    assert (status, answer) == (200, {"status": "queued"})
    stack.wait_idle()
    assert shop.shopify("orders/paid", body, webhook_id="order-webhook-1")[0] == 200
    stack.wait_idle()
    # Then the member exists with the order's points pending (and the signup bonus available), once
    member = member_by_email(shop, email)
    assert member["points"]["pending"] == expected_points(body) > 0
    assert member["points"]["available"] == load_program().bonuses.signup
    assert [entry["kind"] for entry in member["entries"]].count("accrual") == 1
    assert all(entry["reason"] for entry in member["entries"])


def test_refund_reverses_what_the_line_earned(stack: Stack, shop: Shop) -> None:
    email = unique_email()
    order_id = 5_800_000_000_000 + next(numbers)
    body = shopify_order(email, customer_id=7_400_000_000_000 + next(numbers), order_id=order_id)
    shop.shopify("orders/paid", body)
    stack.wait_idle()
    earned = member_by_email(shop, email)["points"]["pending"]
    # When 2 of the 3 units of line 14870123456790 are refunded
    refund = payload("shopify/refunds_create_partial.json", order_id=order_id, id=next(numbers))
    assert shop.shopify("refunds/create", refund)[0] == 200
    stack.wait_idle()
    # Then the reversal equals 2/3 of what that line earned, as stored at earning time
    member = member_by_email(shop, email)
    reversal = next(entry for entry in member["entries"] if entry["kind"] == "reversal")
    assert reversal["pending"] < 0
    assert member["points"]["pending"] == earned + reversal["pending"]


def test_refund_that_arrives_before_its_order_is_not_lost(stack: Stack, shop: Shop) -> None:
    email = unique_email()
    order_id = 5_700_000_000_000 + next(numbers)
    refund = payload("shopify/refunds_create_partial.json", order_id=order_id, id=next(numbers))
    assert shop.shopify("refunds/create", refund)[0] == 200
    stack.wait_idle()
    body = shopify_order(email, customer_id=7_500_000_000_000 + next(numbers), order_id=order_id)
    shop.shopify("orders/paid", body)
    stack.wait_idle()
    member = member_by_email(shop, email)
    assert sorted(entry["kind"] for entry in member["entries"] if entry["kind"] != "bonus") == ["accrual", "reversal"]
    assert 0 < member["points"]["pending"] < expected_points(body)


def test_bad_or_missing_signature_is_401_and_stores_nothing(stack: Stack, shop: Shop) -> None:
    email = unique_email()
    body = shopify_order(email, customer_id=7_600_000_000_000 + next(numbers))
    assert shop.shopify("orders/paid", body, secret="not-the-secret")[0] == 401
    assert shop.shopify("orders/paid", body, sign=False)[0] == 401
    tampered = body.replace(b'"quantity": 3', b'"quantity": 30')
    assert tampered != body
    status, _ = shop.post(
        "/webhooks/shopify",
        tampered,
        {"Content-Type": "application/json", "X-Shopify-Topic": "orders/paid", "X-Shopify-Hmac-Sha256": "AAAA"},
    )
    assert status == 401
    assert shop.woocommerce("order.updated", payload("woocommerce/order_completed.json"), secret="wrong")[0] == 401
    stack.wait_idle()
    assert shop.get(f"/members?email={email}")[0] == 404


def test_malformed_json_is_400_and_unknown_topic_is_200_ignored(stack: Stack, shop: Shop) -> None:
    assert shop.shopify("orders/paid", b'{"id": 1, "line_items": [')[0] == 400
    status, answer = shop.shopify("carts/update", b'{"id": 1}')
    assert (status, answer["status"]) == (200, "ignored")
    processing = json.loads(payload("woocommerce/order_completed.json"))
    processing["status"] = "processing"  # neither earns nor reverses yet
    status, answer = shop.woocommerce("order.updated", json.dumps(processing).encode())
    assert (status, answer["status"]) == (200, "ignored")


def test_body_over_the_limit_is_413(stack: Stack, shop: Shop) -> None:
    huge = b'{"padding": "' + b"x" * (1_048_576 + 10) + b'"}'
    assert shop.shopify("orders/paid", huge)[0] == 413


def test_woocommerce_ping_and_completed_order(stack: Stack, shop: Shop) -> None:
    # The unsigned form ping WooCommerce sends when a webhook is saved gets a 200
    status, _ = shop.post(
        "/webhooks/woocommerce", b"webhook_id=12", {"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert status == 200
    # A completed order earns; its redelivery (new delivery id, same order and status) changes nothing
    body = payload("woocommerce/order_completed.json")
    assert shop.woocommerce("order.updated", body)[0] == 200
    assert shop.woocommerce("order.updated", body)[0] == 200
    stack.wait_idle()
    member = member_by_email(shop, "aino.virtanen@example.fi")
    assert member["points"]["pending"] > 0
    assert [entry["kind"] for entry in member["entries"]].count("accrual") == 1
    # A refunded status reverses the whole order
    assert shop.woocommerce("order.updated", payload("woocommerce/order_refunded.json"))[0] == 200
    stack.wait_idle()
    assert member_by_email(shop, "aino.virtanen@example.fi")["points"]["pending"] == 0


def test_same_person_in_two_shops_is_one_member(stack: Stack, shop: Shop) -> None:
    email = unique_email()
    shop.shopify("orders/paid", shopify_order(email, customer_id=7_700_000_000_000 + next(numbers)))
    stack.wait_idle()
    woo = json.loads(payload("woocommerce/order_completed.json"))
    woo.update(id=90_000 + next(numbers), customer_id=900 + next(numbers))
    woo["billing"]["email"] = email.upper()
    shop.woocommerce("order.updated", json.dumps(woo).encode())
    stack.wait_idle()
    member = member_by_email(shop, email)
    assert [entry["kind"] for entry in member["entries"]].count("accrual") == 2


def test_guest_order_is_held_and_claimed_on_enrolment(stack: Stack, shop: Shop) -> None:
    # Given a guest order (no customer account) with an e-mail
    email = unique_email()
    body = shopify_order(email, customer_id=None)
    shop.shopify("orders/paid", body)
    stack.wait_idle()
    assert shop.get(f"/members?email={email}")[0] == 404
    # When that person creates an account
    customer = json.loads(payload("shopify/customers_create.json"))
    customer.update(id=7_800_000_000_000 + next(numbers), email=email)
    assert shop.shopify("customers/create", json.dumps(customer).encode())[0] == 200
    stack.wait_idle()
    # Then the guest order's points are theirs
    assert member_by_email(shop, email)["points"]["pending"] == expected_points(body)


def test_poison_message_goes_to_the_dlq_and_the_rest_of_its_batch_is_applied(stack: Stack, shop: Shop) -> None:
    sqs = boto3.client("sqs")
    queue = stack.queue_url("LedgerQueue")
    email = unique_email()
    customer = json.loads(payload("shopify/customers_create.json"))
    customer.update(id=7_900_000_000_000 + next(numbers), email=email)
    good = json.dumps(
        {
            "platform": "shopify",
            "topic": "customers/create",
            "shop": "nordic-outdoor.myshopify.com",
            "webhook_id": str(uuid.uuid4()),
            "body": json.dumps(customer),
        }
    )
    # Given a batch with a message that is not a delivery at all, and a signed order the mapping cannot read
    sqs.send_message_batch(
        QueueUrl=queue,
        Entries=[
            {"Id": "poison", "MessageBody": '{"kind": "order_paid", "not": "an event"}'},
            {"Id": "good", "MessageBody": good},
        ],
    )
    unreadable = json.loads(shopify_order(unique_email(), customer_id=None))
    del unreadable["line_items"]
    webhook_id = str(uuid.uuid4())
    assert shop.shopify("orders/paid", json.dumps(unreadable).encode(), webhook_id=webhook_id)[0] == 200
    stack.wait_idle(timeout=60)
    # Then the rest of the batch is applied, and both wait in the dead-letter queue as they were queued
    assert member_by_email(shop, email)["profile"]["consent"]["email"] is True
    dead = sqs.receive_message(QueueUrl=stack.queue_url("LedgerDeadLetterQueue"), MaxNumberOfMessages=10)
    bodies = [message["Body"] for message in dead.get("Messages", [])]
    assert len(bodies) == 2 and '{"kind": "order_paid", "not": "an event"}' in bodies
    kept = json.loads(next(body for body in bodies if body.startswith('{"platform"')))
    assert (kept["topic"], kept["webhook_id"], json.loads(kept["body"])) == ("orders/paid", webhook_id, unreadable)


def test_a_woocommerce_partial_refund_takes_back_the_lines_it_refunded(stack: Stack, shop: Shop) -> None:
    # Given a completed WooCommerce order of two units of line 1543 among others
    order = json.loads(payload("woocommerce/order_completed.json"))
    order.update(id=order["id"] + next(numbers), customer_id=700_000 + next(numbers))
    order["billing"]["email"] = email = unique_email()
    assert shop.woocommerce("order.updated", json.dumps(order).encode())[0] == 200
    stack.wait_idle()
    before = member_by_email(shop, email)
    # When the shop refunds one of those units, and its next order update lists the refund
    stack.woocommerce.add_refund("kahvila.example.fi", order["id"], 900001, {"1543": (1, "10.19")})
    order["refunds"] = [{"id": 900001, "reason": "Kahvi loppu", "total": "-10.19"}]
    assert shop.woocommerce("order.updated", json.dumps(order).encode())[0] == 200
    assert shop.woocommerce("order.updated", json.dumps(order).encode())[0] == 200  # and again
    stack.wait_idle()
    # Then the member loses that unit's points only, once
    after = member_by_email(shop, email)
    reversals = [e for e in after["entries"] if e["kind"] == "reversal"]
    assert (
        len(reversals) == 1
        and 0 < before["points"]["pending"] - after["points"]["pending"] < before["points"]["pending"] / 2
    )
