"""Random ledger histories on the official DynamoDB Local (every invariant checked after every step, each history
on a table of its own), and concurrent writers on one member losing no update."""

from __future__ import annotations

import contextlib
import os
import random
import threading
from datetime import UTC, datetime, timedelta

import pytest

from loyalty.adapters.dynamodb.job_runs import DynamoDBJobRuns
from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.errors import InsufficientPointsError
from loyalty.ledger.service import Ledger
from loyalty.programme.rules import ProgramRules
from tests.conftest import create_table, dynamodb_client
from tests.ledger_histories import Backend, run_histories
from tests.orders import simple_order

pytestmark = pytest.mark.dynamodb_local

# 100 histories of 20 steps on DynamoDB Local take about two minutes here (the in-memory store runs 1,000, day by
# day); LOYALTY_HYPOTHESIS_EXAMPLES runs more
EXAMPLES = int(os.environ.get("LOYALTY_HYPOTHESIS_EXAMPLES", "100"))


def test_random_histories_keep_every_invariant_on_dynamodb_local(own_dynamodb_local: str, rules: ProgramRules) -> None:
    client = dynamodb_client(own_dynamodb_local)

    def table_of_its_own() -> Backend:
        name = create_table(own_dynamodb_local)
        return DynamoDBLedgerStore(), DynamoDBJobRuns(), lambda: client.delete_table(TableName=name)

    # Given / When hypothesis drives random histories / Then every invariant holds after every step
    run_histories(rules, table_of_its_own, EXAMPLES, every_day=False)


def test_concurrent_writers_lose_no_update(local_table: str, rules: ProgramRules) -> None:
    # Given one member with some points and 8 threads doing 100 mixed operations each
    ledger = Ledger(DynamoDBLedgerStore(), rules)
    ledger.enrol("busy")
    ledger.bonus("busy", "signup", "busy", points=500)
    credited = [0] * 8
    debited = [0] * 8
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        rng = random.Random(number)
        try:
            for step in range(100):
                op = rng.choice(["bonus", "redeem", "adjust", "order"])
                key = f"t{number}-{step}"
                if op == "bonus":
                    ledger.bonus("busy", "review", key, points=rng.randint(1, 20))
                    credited[number] += ledger.bonus("busy", "review", key, points=1).entry.points
                elif op == "redeem":
                    with contextlib.suppress(InsufficientPointsError):
                        debited[number] += -ledger.redeem("busy", rng.randint(1, 30), key, "reward").entry.points
                elif op == "adjust":
                    credited[number] += ledger.adjust("busy", rng.randint(1, 10), "agent", "goodwill", key).entry.points
                else:
                    ledger.accrue("busy", simple_order(key, datetime.now(UTC) - timedelta(days=40)))
                    released = ledger.release("shopify:demo", key)
                    assert released is not None
                    credited[number] += released.entry.points
        except BaseException as error:  # report it in the main thread
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    # When they all run at once
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then no update is lost: the balance is the signup bonus plus credits minus debits, and the sum of entries
    assert errors == []
    assert ledger.check_invariants("busy") == []
    assert ledger.summary("busy").available == 500 + sum(credited) - sum(debited)
