"""Ledger benchmarks on the official DynamoDB Local: requests and items per order event, and cost vs history."""

from __future__ import annotations

import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.adapters.dynamodb.models import EntryItem, MemberItem, member_pk, table_connection
from loyalty.ledger.service import Ledger
from loyalty.programme.rules import ProgramRules
from tests.bench.conftest import Figures
from tests.orders import simple_order

WRITES = {"PutItem", "UpdateItem", "DeleteItem"}


class DynamoDBCalls:
    """Counts DynamoDB requests and the items each writes, with botocore's event hooks on the ledger's clients."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.items_written = 0
        table_connection().client.meta.events.register("before-parameter-build.dynamodb", self._count)

    def _count(self, model: Any, params: dict[str, Any], **_: Any) -> None:
        self.requests[model.name] += 1
        if model.name == "TransactWriteItems":
            self.items_written += len(params["TransactItems"])
        elif model.name in WRITES:
            self.items_written += 1
        elif model.name == "BatchWriteItem":
            self.items_written += sum(len(v) for v in params["RequestItems"].values())

    def reset(self) -> None:
        self.requests.clear()
        self.items_written = 0


def test_requests_and_items_per_order_event(local_table: str, rules: ProgramRules, figures: Figures) -> None:
    ledger = Ledger(DynamoDBLedgerStore(), rules)
    ledger.enrol("bench")
    calls = DynamoDBCalls()
    orders = 50
    for number in range(orders):
        ledger.accrue("bench", simple_order(f"b{number}", datetime.now(UTC), [("1", 2, "10"), ("2", 1, "5")]))
    print(f"\nrequests for {orders} order events: {dict(calls.requests)}")
    figures.record(
        "dynamodb_requests_per_order_event", sum(calls.requests.values()) / orders, "2 (read + 1 transaction)"
    )
    figures.record("dynamodb_items_per_order_event", calls.items_written / orders, "<= 3, no idempotency write")
    assert calls.requests["TransactWriteItems"] == orders


def _member_with_history(member_id: str, entries: int) -> None:
    """A member with ``entries`` prior lots, written directly (fast set-up; the accrual under test is real)."""
    now = datetime.now(UTC) - timedelta(days=30)
    pk = member_pk(member_id)
    with EntryItem.batch_write() as batch:
        for number in range(entries):
            key = f"bonus#review#{number}"
            batch.save(
                EntryItem(
                    pk, f"ENTRY#{key}", member_id=member_id, source_key=key, kind="bonus", created_at=now,
                    hist_sk=f"{now.isoformat()}#{number:08d}", points=1, lifetime=1, reason="review bonus",
                    lot_start=number, lot_end=number + 1, expires_on="2099-12-31",
                )
            )  # fmt: skip
    MemberItem(
        pk, "MEMBER", member_id=member_id, enrolled_at=now, available=entries, lifetime=entries,
        released=entries, lot_expiry_max="2099-12-31", qualifying={},
    ).save()  # fmt: skip


def _median_accrual_seconds(ledger: Ledger, member_id: str, samples: int) -> float:
    timings = []
    for number in range(samples):
        order = simple_order(f"{member_id}-{number}", datetime.now(UTC))
        started = time.perf_counter()
        ledger.accrue(member_id, order)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def test_accrual_cost_does_not_grow_with_history(local_table: str, rules: ProgramRules, figures: Figures) -> None:
    ledger = Ledger(DynamoDBLedgerStore(), rules)
    _member_with_history("short", 10)
    _member_with_history("long", 10_000)
    _median_accrual_seconds(ledger, "short", 20)  # warm up the JVM and the connection pool
    rounds = [
        (_median_accrual_seconds(ledger, "long", 60), _median_accrual_seconds(ledger, "short", 60)) for _ in range(3)
    ]
    long_s = statistics.median(r[0] for r in rounds)
    short_s = statistics.median(r[1] for r in rounds)
    print(f"\nmedian accrual: 10,000 prior entries {long_s * 1000:.2f} ms, 10 prior entries {short_s * 1000:.2f} ms")
    figures.record("accrual_cost_ratio_10k_vs_10", long_s / short_s, "<= 1.1")
    assert ledger.check_invariants("long") == []
