"""The expiry job on the official DynamoDB Local: items it reads per expired lot, and whether its time depends
on how many members the programme has (it must not: it reads one day's partition of the due index).

The 1M-member case is simulated: building a million real members here takes hours, so the table gets, on
top of the real members, filler lots (one per filler member) due on the other days of the year, written with
BatchWriteItem. The due index then holds a million members' lots, as it would; the filler members' own items
are left out because the job never reads a member whose lot is not due.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import boto3

from loyalty.adapters.dynamodb.job_runs import DynamoDBJobRuns
from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.adapters.dynamodb.models import ALL_MODELS, table_connection
from loyalty.adapters.dynamodb.offer_records import DynamoDBOfferRecords
from loyalty.adapters.dynamodb.reviews import DynamoDBReviews
from loyalty.fakes.offers import InMemoryOfferQueue
from loyalty.jobs import ScheduledJobs
from loyalty.ledger.service import Ledger
from loyalty.offers.rules import load_offer_rules
from loyalty.programme.rules import ProgramRules
from tests.bench.conftest import Figures
from tests.conftest import FakeClock, create_table

DUE_LOTS = int(os.environ.get("LOYALTY_BENCH_DUE_LOTS", "400"))
LARGE = int(os.environ.get("LOYALTY_BENCH_MEMBERS", "1000000"))
SMALL = 10_000
SMALL_EARNED = (date(2026, 1, 15), date(2026, 2, 15), date(2026, 3, 15))  # lots due 2027-02-01, -03-01, -04-01
LARGE_EARNED = (date(2026, 4, 15), date(2026, 5, 15), date(2026, 6, 15))  # lots due 2027-05-01, -06-01, -07-01


class ItemsRead:
    """Items returned by every DynamoDB read (Query, GetItem, BatchGetItem), counted with botocore's event hooks."""

    def __init__(self, ledger: Ledger) -> None:
        self.items = 0
        connections = [table_connection(), *(model._get_connection().connection for model in ALL_MODELS)]
        clients = {id(connection.client): connection.client for connection in connections}  # one, shared
        for client in clients.values():
            client.meta.events.register("after-call.dynamodb", self._count)

    def _count(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        if model.name in ("Query", "Scan"):
            self.items += int(parsed.get("Count", 0))
        elif model.name == "GetItem":
            self.items += 1 if "Item" in parsed else 0
        elif model.name == "BatchGetItem":
            self.items += sum(len(found) for found in parsed.get("Responses", {}).values())


def due_day(earned: date) -> date:
    month = earned.month + 1  # expires at the end of the month 12 months on: due the 1st of the month after
    return date(earned.year + 1 + month // 13, (month - 1) % 12 + 1, 1)


def real_members(ledger: Ledger, clock: FakeClock, prefix: str, earned_on: tuple[date, ...]) -> None:
    """DUE_LOTS real members for each earning date, each with one lot (a review bonus)."""
    for earned in earned_on:
        clock.now = datetime(earned.year, earned.month, earned.day, 10, tzinfo=UTC)
        for number in range(DUE_LOTS):
            member = f"{prefix}-{earned.month}-{number}"
            ledger.enrol(member)
            ledger.bonus(member, "review", member, points=10)


def filler(table: str, endpoint: str, start: int, count: int) -> None:
    """Lots of filler members, due on other days: four writers of BatchWriteItem, 25 items a request."""
    skip = {f"EXPIRE#{due_day(earned).isoformat()}" for earned in SMALL_EARNED + LARGE_EARNED}
    days = [d for d in (date(2027, 1, 1) + timedelta(days=n) for n in range(365)) if f"EXPIRE#{d}" not in skip]

    def items(first: int, last: int) -> Iterator[dict[str, Any]]:
        for n in range(first, last):
            pk = f"MEMBER#filler-{n}"
            yield {
                "PutRequest": {
                    "Item": {
                        "pk": {"S": pk},
                        "sk": {"S": "ENTRY#bonus#signup#x"},
                        "type": {"S": "entry"},
                        "due_pk": {"S": f"EXPIRE#{days[n % len(days)].isoformat()}"},
                        "due_sk": {"S": f"{pk}#ENTRY#bonus#signup#x"},
                    }
                }
            }

    def writer(first: int, last: int) -> None:
        client = boto3.client("dynamodb", endpoint_url=endpoint)
        batch: list[dict[str, Any]] = []
        for item in items(first, last):
            batch.append(item)
            if len(batch) == 25:
                client.batch_write_item(RequestItems={table: batch})
                batch = []
        if batch:
            client.batch_write_item(RequestItems={table: batch})

    step = -(-count // 4)
    threads = [
        threading.Thread(target=writer, args=(start + k * step, min(start + count, start + (k + 1) * step)))
        for k in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def timed_expiry(jobs: ScheduledJobs, clock: FakeClock, day: date) -> float:
    clock.now = datetime(day.year, day.month, day.day, 3, tzinfo=UTC)
    started = time.perf_counter()
    report = jobs.run("expire", day)
    elapsed = time.perf_counter() - started
    assert report.changed == DUE_LOTS, report
    return elapsed


def test_expiry_reads_and_time_do_not_grow_with_members(
    own_dynamodb_local: str, rules: ProgramRules, figures: Figures
) -> None:
    # A DynamoDB Local of its own, stopped with this module: a million members' items would slow the next benches
    dynamodb_local, local_table = own_dynamodb_local, create_table(own_dynamodb_local)
    clock = FakeClock(datetime(2026, 1, 1, tzinfo=UTC))
    ledger = Ledger(DynamoDBLedgerStore(), rules, clock=clock)
    jobs = ScheduledJobs(
        ledger, DynamoDBReviews(), DynamoDBJobRuns(), InMemoryOfferQueue(), load_offer_rules(), DynamoDBOfferRecords()
    )
    rules = ledger.rules.model_copy(update={"schedules": rules.schedules.model_copy(update={"catch_up_days": 0})})
    ledger.rules = rules
    # Given 10,000 members: real ones whose lots fall due, the rest filler
    real_members(ledger, clock, "small", SMALL_EARNED)
    filler(local_table, dynamodb_local, 0, SMALL - len(SMALL_EARNED) * DUE_LOTS)
    reads = ItemsRead(ledger)
    small = [timed_expiry(jobs, clock, due_day(earned)) for earned in SMALL_EARNED]
    figures.record("items_read_per_expired_lot", reads.items / (len(SMALL_EARNED) * DUE_LOTS), "<= 2")
    # Given a million members' lots on the due index, and the same number of lots falling due
    real_members(ledger, clock, "large", LARGE_EARNED)
    started = time.perf_counter()
    filler(local_table, dynamodb_local, SMALL, LARGE - SMALL - len(LARGE_EARNED) * DUE_LOTS)
    print(f"\nfiller for {LARGE:,} members written in {time.perf_counter() - started:.0f} s")
    large = [timed_expiry(jobs, clock, due_day(earned)) for earned in LARGE_EARNED]
    print(f"expiry of {DUE_LOTS} lots: {SMALL:,} members {small} s; {LARGE:,} members {large} s")
    figures.record(
        f"expiry_job_time_ratio_{LARGE // 1_000_000}m_vs_10k_members",
        statistics.median(large) / statistics.median(small),
        "<= 1.2",
    )
