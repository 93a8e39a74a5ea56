"""A burst of webhooks through the embedded stack, as a busy shop sends them: nothing lost, nothing twice.

Several hundred signed deliveries go out at once over eight connections: customers, orders, Shopify's
redeliveries of some orders, and refunds, a third of them sent before the order they refund. The stack's
ledger must end where the same deliveries, applied one after another on the in-memory store, end: the same
points, entries and tier for every member, and every invariant holding. Concurrency (several deliveries for
one member in flight, an order and its customer enrolling at once) must cause no lost update and no double
effect. No member crosses a tier threshold here, and the catalogue is in before the burst, so the order in
which the orders land cannot change what they earn.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import boto3

from infra.local.shop_emulator import ShopifyStore, customer_payload, order_payload, product_payload, refund_payload
from infra.local.simulation import PRODUCTS, Enrol, OrderPaid, Refund
from infra.local.stack import Stack
from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.adapters.dynamodb.models import bind_table
from loyalty.fakes import Fakes
from loyalty.ledger.model import MemberSummary
from loyalty.ledger.service import Ledger
from loyalty.offers.rules import load_offer_rules
from loyalty.programme.rules import load_program
from loyalty.shop.applier import ShopEventApplier
from loyalty.shop.webhooks import QueuedWebhook
from tests.e2e.conftest import SHOPIFY_SECRET

MEMBERS = 30
ORDERS_EACH = 9
REDELIVERED = 40
REFUNDED = 45
CHEAP = ("p-301", "p-400")  # at most 2 lines of 2 units each: 9 orders stay below the first tier threshold


def deliveries(run: str, rng: random.Random) -> list[tuple[str, dict[str, Any], str]]:
    """(topic, payload, webhook id) in the order they are sent."""
    now = datetime.now(UTC)
    base = rng.randrange(10**9, 2 * 10**9)
    customers = [Enrol(now, f"burst-{n:05d}", f"burst-{run}-{n}@example.com") for n in range(MEMBERS)]
    sent: list[tuple[str, dict[str, Any], str]] = [
        ("products/create", product_payload(product_id, now), f"{run}-product-{product_id}") for product_id in PRODUCTS
    ]
    sent += [("customers/create", customer_payload(c), f"{run}-customer-{c.member_id}") for c in customers]
    orders: list[tuple[OrderPaid, str]] = []
    for n in range(MEMBERS * ORDERS_EACH):
        customer = customers[n % MEMBERS]
        lines = tuple(
            (str(line), product_id, rng.randint(1, 2))
            for line, product_id in enumerate(rng.sample(CHEAP, rng.randint(1, 2)), start=1)
        )
        orders.append((OrderPaid(now, customer.member_id, str(base + n), lines), customer.email))
    burst = [("orders/paid", order_payload(order, email), f"{run}-order-{order.order_id}") for order, email in orders]
    for order, email in rng.sample(orders, REDELIVERED):  # the same webhook id and body again
        again = ("orders/paid", order_payload(order, email), f"{run}-order-{order.order_id}")
        burst.insert(rng.randrange(len(burst) + 1), again)
    for number, (order, _) in enumerate(rng.sample(orders, REFUNDED)):
        line_id, _, quantity = rng.choice(order.lines)
        refund = Refund(now, order.order_id, f"{order.order_id}-r1", ((line_id, rng.randint(1, quantity)),))
        first = next(i for i, (_, body, _) in enumerate(burst) if body.get("id") == int(order.order_id))
        overtakes = number % 3 == 0  # sent before its order
        position = rng.randrange(first + 1) if overtakes else rng.randrange(first + 1, len(burst) + 1)
        burst.insert(position, ("refunds/create", refund_payload(refund), f"{run}-refund-{refund.refund_id}"))
    return sent + burst


def standing(summary: MemberSummary) -> tuple[int, int, int, int, str]:
    return summary.available, summary.pending, summary.lifetime, summary.qualifying, summary.tier


def entries(ledger: Ledger, member_id: str) -> Counter[tuple[str, str, int, int]]:
    """What each entry did, by its source (member ids, random on each side, left out)."""
    return Counter(
        (e.kind.value, e.source_key.replace(member_id, "<member>"), e.points, e.pending)
        for e in ledger.entries(member_id)
    )


def dead_letters(stack: Stack) -> int:
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url("LedgerDeadLetterQueue"), AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def test_a_burst_of_webhooks_loses_nothing_and_applies_nothing_twice(stack: Stack) -> None:
    run = uuid.uuid4().hex[:8]
    domain = f"burst-{run}.myshopify.com"
    sent = deliveries(run, random.Random(run))
    assert len(sent) >= 350
    store = ShopifyStore(stack.gateway_url, SHOPIFY_SECRET, domain=domain, connections=8)
    dead_before = dead_letters(stack)
    # Given the shop's catalogue, known before its orders (a product's categories change what a line earns)
    catalogue = [delivery for delivery in sent if delivery[0] == "products/create"]
    statuses = [store.send(*delivery) for delivery in catalogue]
    stack.wait_idle(timeout=60)
    # When every other delivery goes out at once, eight at a time
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses += pool.map(lambda d: store.send(*d), sent[len(catalogue) :])
    stack.wait_idle(timeout=300)
    assert Counter(statuses) == {200: len(sent)}
    assert dead_letters(stack) == dead_before
    # And the same deliveries are applied one after another on the in-memory store
    fakes = Fakes()
    expected = Ledger(fakes.ledger_store, load_program())
    applier = ShopEventApplier(expected, fakes.directory, 30, load_offer_rules(), fakes.offer_queue)
    for topic, payload, webhook_id in sent:
        applier.deliver(QueuedWebhook(platform="shopify", topic=topic, shop=domain, webhook_id=webhook_id,
                                      body=json.dumps(payload)))  # fmt: skip
    # Then every member stands where the one-after-another ledger stands, entry for entry
    bind_table(stack.names["LoyaltyTable"])
    actual = Ledger(DynamoDBLedgerStore(), load_program())
    emails = [f"burst-{run}-{n}@example.com" for n in range(MEMBERS)]
    for email in emails:
        member, oracle = actual.member_for_email(email), expected.member_for_email(email)
        assert member is not None and oracle is not None, email
        assert standing(actual.summary(member)) == standing(expected.summary(oracle)), email
        assert entries(actual, member) == entries(expected, oracle), email
        assert actual.check_invariants(member) == [], email
    # And every order earned once, every refund reversed once, every member got one signup bonus
    kinds: Counter[str] = Counter()
    for email in emails:
        kinds.update(kind for kind, *_ in entries(actual, actual.member_for_email(email) or "").elements())
    assert kinds == {"accrual": MEMBERS * ORDERS_EACH, "reversal": REFUNDED, "bonus": MEMBERS}
