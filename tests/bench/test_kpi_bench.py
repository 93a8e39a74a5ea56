"""Monthly figures benchmark on the official DynamoDB Local: the requests the KPI counting makes per order event
(its accrual entry counted into the programme's, tier's and segment's figures with the member's note: buyer,
first purchase, active, points held), as the stream would hand the entries over; and the monthly report's time
for the same year among 10,000 members and among a million (simulated as the expiry benchmark does: filler
members' items written with BatchWriteItem)."""

from __future__ import annotations

import os
import statistics
import time
from datetime import UTC, datetime, timedelta

from loyalty.adapters.dynamodb.kpis import DynamoDBKpiStore
from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.kpis.counting import KpiCounting
from loyalty.kpis.figures import KpiFigures
from loyalty.kpis.report import render_csv, render_html, render_roll_forward_csv
from loyalty.ledger.model import EntryKind
from loyalty.ledger.service import Ledger
from loyalty.programme.rewards import RewardCatalogue, load_rewards
from loyalty.programme.rules import ProgramRules
from tests.bench.conftest import Figures
from tests.bench.test_jobs_bench import filler
from tests.bench.test_ledger_bench import DynamoDBCalls
from tests.conftest import FakeClock, create_table
from tests.orders import simple_order

MEMBERS, ORDERS_EACH = 50, 4
REPORT_SMALL = 10_000
REPORT_LARGE = int(os.environ.get("LOYALTY_BENCH_MEMBERS", "1000000"))
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
        "<= 1.5 (one transaction an entry: its marker and counters with the member's note)",
    )
    figures.record("kpi_reads_per_order_event", reads / len(accruals), "<= 0.1 (a batch's notes read together)")
    assert DynamoDBKpiStore().month("2026-03")["programme"]["orders"] == len(accruals)


def timed_report(store: DynamoDBKpiStore, catalogue: RewardCatalogue, tiers: list[str]) -> float:
    """The monthly report of the year, as `make report` and the close build it: both GET /kpis answers, the HTML
    and the CSV files (the median of three)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        figures = KpiFigures(store, catalogue)
        by_segment, by_tier = (figures.months("2026-01", "2026-12", by=by) for by in ("segment", "tier"))
        render_html(by_segment, by_tier, tiers)
        render_csv(by_segment)
        render_roll_forward_csv(by_segment)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def test_kpi_report_time_does_not_grow_with_members(
    own_dynamodb_local: str, rules: ProgramRules, figures: Figures
) -> None:
    # A DynamoDB Local of its own: a million members' items would slow the other benches
    table = create_table(own_dynamodb_local)
    clock = FakeClock(datetime(2026, 1, 5, 9, tzinfo=UTC))
    ledger = Ledger(DynamoDBLedgerStore(), rules, clock=clock)
    store, catalogue = DynamoDBKpiStore(), load_rewards(rules)
    tiers = [tier.name for tier in rules.tiers]
    # Given a year of the same activity, counted as the stream counts it: 40 members' monthly orders
    members = [f"report-{n}" for n in range(40)]
    for member in members:
        ledger.enrol(member)
    for month in range(1, 13):
        clock.now = datetime(2026, month, 10, 9, tzinfo=UTC)
        for member in members:
            ledger.accrue(member, simple_order(f"{member}-{month}", clock.now))
    counting = KpiCounting(ledger, store)
    counting.count([entry for member in members for entry in ledger.entries(member)])
    # When the report is made among 10,000 members, then among a million (filler members' items on the table)
    filler(table, own_dynamodb_local, 0, REPORT_SMALL - len(members))
    small = timed_report(store, catalogue, tiers)
    filler(table, own_dynamodb_local, REPORT_SMALL, REPORT_LARGE - REPORT_SMALL)
    large = timed_report(store, catalogue, tiers)
    print(f"\nthe year's report: {REPORT_SMALL:,} members {small:.3f} s; {REPORT_LARGE:,} members {large:.3f} s")
    # Then it takes the same time: it reads the months' figures, never the members
    figures.record(f"kpi_report_time_ratio_{REPORT_LARGE // 1_000_000}m_vs_10k", large / small, "<= 1.2")
