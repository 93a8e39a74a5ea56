"""Monthly figures benchmark on the official DynamoDB Local: the requests the KPI counting makes per order event
(its accrual entry counted into the programme's, tier's and segment's figures, and the member's month noted once
a month: buyer, first purchase, active), as the stream would hand the entries over."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from loyalty.adapters.dynamodb.kpis import DynamoDBKpiStore
from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.kpis.counting import KpiCounting
from loyalty.ledger.model import EntryKind
from loyalty.ledger.service import Ledger
from loyalty.programme.rules import ProgramRules
from tests.bench.conftest import Figures
from tests.bench.test_ledger_bench import DynamoDBCalls
from tests.conftest import FakeClock
from tests.orders import simple_order

MEMBERS, ORDERS_EACH = 50, 4
WRITES = {"TransactWriteItems", "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}


def test_kpi_writes_per_order_event(local_table: str, rules: ProgramRules, figures: Figures) -> None:
    # Given fifty members' four orders each in one month, written to the ledger
    clock = FakeClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    ledger = Ledger(DynamoDBLedgerStore(), rules, clock=clock)
    members = [f"kpi-{n}" for n in range(MEMBERS)]
    for member in members:
        ledger.enrol(member)
    for number in range(ORDERS_EACH):
        clock.now += timedelta(days=1)
        for member in members:
            ledger.accrue(member, simple_order(f"{member}-o{number}", clock.now))
    accruals = [e for m in members for e in ledger.entries(m) if e.kind is EntryKind.ACCRUAL]
    # When the stream hands the accrual entries to the counting, a batch of a hundred at a time
    counting = KpiCounting(ledger, DynamoDBKpiStore())
    calls = DynamoDBCalls()
    for start in range(0, len(accruals), 100):
        counting.count(accruals[start : start + 100])
    # Then the figures: write and read requests per order event
    writes = sum(n for name, n in calls.requests.items() if name in WRITES)
    reads = sum(n for name, n in calls.requests.items() if name not in WRITES)
    print(f"\nKPI counting of {len(accruals)} order entries: {dict(sorted(calls.requests.items()))}")
    figures.record(
        "kpi_writes_per_order_event",
        writes / len(accruals),
        "<= 1.5 (the entry's counters; the member's month once per member and month: buyer, first purchase, active)",
    )
    figures.record("kpi_reads_per_order_event", reads / len(accruals), "<= 1.1")
    assert DynamoDBKpiStore().month("2026-03")["programme"]["orders"] == len(accruals)
