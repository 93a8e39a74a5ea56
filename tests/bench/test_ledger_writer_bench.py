"""The ledger writer's DynamoDB requests per orders/paid delivery, on the official DynamoDB Local: the applier wired
as ledger_writer wires it (loyalty.wiring.services), Powertools idempotency on a table of its own included."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.session
import pytest

from infra.local.instances import lambda_context
from infra.local.shop_emulator import customer_payload, order_payload, product_payload, refund_payload
from infra.local.simulation import PRODUCTS, Enrol, OrderPaid, Refund
from infra.local.template import create_table_kwargs
from loyalty.adapters.dynamodb.models import table_connection
from loyalty.fakes.offers import InMemoryOfferQueue
from loyalty.observability import logger
from loyalty.shop.applier import ShopEventApplier
from loyalty.shop.webhooks import QueuedWebhook
from loyalty.wiring import services
from tests.bench.conftest import Figures
from tests.conftest import dynamodb_client

SHOP = "bench-shop.myshopify.com"
MEMBERS = 10
ORDERS = 100
_COUNTER_ID = "bench-dynamodb-requests"


class DynamoDBRequests:
    """Counts the DynamoDB requests of every client in the process, with botocore's event hooks: the table's
    (pynamodb's one client) and each client created while counting (Powertools idempotency makes its own)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, idempotency_table: str) -> None:
        self.requests: Counter[str] = Counter()
        self.idempotency: Counter[str] = Counter()
        self.idempotency_table = idempotency_table
        create_client = botocore.session.Session.create_client

        def counted(session: botocore.session.Session, service_name: str, *args: Any, **kwargs: Any) -> Any:
            client = create_client(session, service_name, *args, **kwargs)
            self._watch(client)
            return client

        monkeypatch.setattr(botocore.session.Session, "create_client", counted)
        self._watch(table_connection().client)

    def _watch(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.dynamodb", self._count, unique_id=_COUNTER_ID)

    def _count(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == self.idempotency_table:
            self.idempotency[model.name] += 1
        else:
            self.requests[model.name] += 1

    def reset(self) -> None:
        self.requests.clear()
        self.idempotency.clear()


@pytest.fixture
def quiet_logger() -> Iterator[None]:
    level = logger.log_level
    logger.setLevel("WARNING")  # a line per delivery would bury the figures
    yield
    logger.setLevel(level)


@pytest.fixture
def idempotency_table(dynamodb_local: str) -> Iterator[str]:
    name = f"idempotency-bench-{uuid.uuid4().hex[:8]}"
    client = dynamodb_client(dynamodb_local)
    client.create_table(**create_table_kwargs(name, "IdempotencyTable"))
    client.get_waiter("table_exists").wait(TableName=name)
    yield name
    client.delete_table(TableName=name)


def _webhook(topic: str, payload: dict[str, Any]) -> QueuedWebhook:
    return QueuedWebhook(
        platform="shopify", topic=topic, shop=SHOP, webhook_id=str(uuid.uuid4()), body=json.dumps(payload)
    )


def test_dynamodb_requests_per_order_in_the_ledger_writer(
    local_table: str,
    idempotency_table: str,
    dynamodb_local: str,
    monkeypatch: pytest.MonkeyPatch,
    figures: Figures,
    quiet_logger: None,
) -> None:
    # Given the ledger writer wired as in Lambda, on DynamoDB Local (the offer queue in memory: SQS is not counted)
    monkeypatch.setenv("LOYALTY_TABLE", local_table)
    monkeypatch.setenv("LOYALTY_IDEMPOTENCY_TABLE", idempotency_table)
    monkeypatch.setenv("OFFER_QUEUE_URL", "https://sqs.eu-north-1.amazonaws.com/123456789012/offers")
    monkeypatch.setenv("SHOP_CREDENTIALS_SECRET_NAME", "loyalty/shops")  # read only for a refund a shop lists
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    calls = DynamoDBRequests(monkeypatch, idempotency_table)
    services.reset()
    applier: ShopEventApplier = services.shop_event_applier()
    applier.offer_queue = InMemoryOfferQueue()
    services.idempotency("dedup_key").register_lambda_context(lambda_context("ledger_writer", 900))
    # And the catalogue and the members known (their customers linked), as after the shop's first webhooks
    start = datetime.now(UTC) - timedelta(days=2)
    for product_id in PRODUCTS:
        assert applier.deliver(_webhook("products/create", product_payload(product_id, start))) == "product saved"
    people = [Enrol(start, f"bench-{number}", f"bench-{number}@example.com") for number in range(MEMBERS)]
    for person in people:
        assert applier.deliver(_webhook("customers/create", customer_payload(person))) == "member enrolled"
    products = sorted(PRODUCTS)
    orders = [
        OrderPaid(
            start + timedelta(minutes=number),
            people[number % MEMBERS].member_id,
            str(5000 + number),
            tuple((str(line + 1), products[(number + line) % len(products)], 1 + line % 2) for line in range(3)),
        )
        for number in range(ORDERS)
    ]
    webhooks = [_webhook("orders/paid", order_payload(order, f"{order.member_id}@example.com")) for order in orders]
    # When each order is delivered once
    outcomes, seconds, cpu_seconds = _delivered(applier, webhooks, calls)
    # Then every order is accrued, and the figure is the requests per delivery, with and without idempotency's
    assert outcomes == {"order accrued": ORDERS}
    print(f"\nledger writer, {ORDERS} orders/paid: table {dict(calls.requests)}, idempotency {dict(calls.idempotency)}")
    total = sum(calls.requests.values()) + sum(calls.idempotency.values())
    figures.record("ledger_writer_dynamodb_requests_per_order", total / ORDERS, "<= 5 (idempotency 2, read 2, write 1)")
    figures.record(
        "ledger_writer_table_requests_per_order", sum(calls.requests.values()) / ORDERS, "<= 3 (without idempotency)"
    )
    figures.record("ledger_writer_ms_per_order", seconds * 1000 / ORDERS, "(wall time, DynamoDB Local; informative)")
    figures.record("ledger_writer_cpu_ms_per_order", cpu_seconds * 1000 / ORDERS, "(this process's CPU; informative)")
    assert sum(calls.idempotency.values()) == 2 * ORDERS  # the record put in progress, then completed
    # When one unit of the first line of half the orders is refunded
    refunds = [
        _webhook("refunds/create", refund_payload(Refund(start + timedelta(days=1), order.order_id,
                                                         f"{order.order_id}-r1", (("1", 1),))))
        for order in orders[::2]
    ]  # fmt: skip
    outcomes, _, _ = _delivered(applier, refunds, calls)
    # Then each is applied, and the figure is the requests per refund delivery
    assert outcomes == {"refund applied": len(refunds)}
    print(f"ledger writer, {len(refunds)} refunds/create: table {dict(calls.requests)}, idempotency "
          f"{dict(calls.idempotency)}")  # fmt: skip
    total = sum(calls.requests.values()) + sum(calls.idempotency.values())
    figures.record("ledger_writer_dynamodb_requests_per_refund", total / len(refunds), "(idempotency 2 included)")
    # And every member's ledger holds its invariants
    for person in people:
        member_id = applier.ledger.member_for_email(person.email)
        assert member_id is not None and applier.ledger.check_invariants(member_id) == []


def _delivered(
    applier: ShopEventApplier, webhooks: list[QueuedWebhook], calls: DynamoDBRequests
) -> tuple[Counter[str], float, float]:
    """The outcomes of delivering each webhook once, and the seconds it took, in wall time and in this process's
    CPU time (the handler's side: DynamoDB Local runs in a process of its own); ``calls`` counts from zero."""
    calls.reset()
    started, cpu_started = time.perf_counter(), time.process_time()
    outcomes = Counter(applier.deliver(webhook) for webhook in webhooks)
    return outcomes, time.perf_counter() - started, time.process_time() - cpu_started
