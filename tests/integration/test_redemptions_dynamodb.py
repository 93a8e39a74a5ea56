"""Redemptions on DynamoDB Local, where requests really race: one member redeeming from 8 threads never goes below
zero, 8 threads with one Idempotency-Key make one redemption, and a redemption is one read and one write."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.adapters.dynamodb.models import table_connection
from loyalty.errors import RedemptionRefusedError
from loyalty.fakes.shops import InMemoryShopCodes
from loyalty.ledger.model import EntryKind
from loyalty.ledger.service import Ledger
from loyalty.programme.rewards import load_rewards
from loyalty.programme.rules import ProgramRules
from loyalty.rewards.member_api import MemberRewards
from tests.conftest import FakeClock

SHOP = "shopify:demo-shop.myshopify.com"
THREADS = 8


@pytest.fixture
def rewards(local_table: str, rules: ProgramRules, clock: FakeClock) -> MemberRewards:
    return MemberRewards(Ledger(DynamoDBLedgerStore(), rules, clock=clock), load_rewards(rules), InMemoryShopCodes())


def with_points(rewards: MemberRewards, member_id: str, points: int) -> str:
    rewards.ledger.enrol(member_id)
    rewards.ledger.adjust(member_id, points, "agent-1", "opening balance", f"open-{member_id}")
    return member_id


def at_once(calls: list[Any]) -> list[Any]:
    """Run the calls from THREADS threads released together; each result, or the error it raised."""
    start = threading.Barrier(len(calls))

    def run(call: Any) -> Any:
        start.wait()
        try:
            return call()
        except RedemptionRefusedError as refused:
            return refused

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(run, calls))


def test_eight_keys_at_once_never_spend_more_than_the_balance(rewards: MemberRewards) -> None:
    member = with_points(rewards, "racer-1", 1700)
    body = {"rewardId": "10-percent", "shop": SHOP}  # 1,000 points (no limit): one of the eight can have it
    outcomes = at_once([lambda n=n: rewards.redeem(member, body, f"key-{n}")[0] for n in range(THREADS)])
    made = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, RedemptionRefusedError)]
    assert (len(made), len(refused)) == (1, THREADS - 1)
    assert {r.rule for r in refused} == {"points"}
    assert rewards.ledger.summary(member).available == 700
    spent = [e for e in rewards.ledger.entries(member) if e.kind is EntryKind.REDEMPTION]
    assert [e.points for e in spent] == [-1000]
    assert rewards.ledger.check_invariants(member) == []


def test_eight_keys_at_once_keep_the_monthly_limit(rewards: MemberRewards) -> None:
    member = with_points(rewards, "racer-3", 10_000)
    body = {"rewardId": "50-off", "shop": SHOP}  # twice a month at most
    outcomes = at_once([lambda n=n: rewards.redeem(member, body, f"key-{n}")[0] for n in range(THREADS)])
    assert sum(isinstance(o, dict) for o in outcomes) == 2
    assert {o.rule for o in outcomes if isinstance(o, RedemptionRefusedError)} == {"per_month"}
    assert rewards.ledger.summary(member).available == 9000


def test_eight_requests_with_one_key_make_one_redemption(rewards: MemberRewards) -> None:
    member = with_points(rewards, "racer-2", 5000)
    body = {"rewardId": "50-off", "shop": SHOP}
    answers = at_once([lambda: rewards.redeem(member, body, "one-key") for _ in range(THREADS)])
    assert len({answer["redemptionId"] for answer, _ in answers}) == 1
    assert len({answer["code"] for answer, _ in answers}) == 1
    assert sum(made for _, made in answers) == 1
    assert rewards.ledger.summary(member).available == 4500
    assert len(rewards.ledger.redemptions(member)) == 1


def test_a_redemption_is_one_read_and_one_transaction(rewards: MemberRewards) -> None:
    member = with_points(rewards, "counted", 1000)
    requests: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        requests[model.name] += 1

    client = table_connection().client
    client.meta.events.register("before-parameter-build.dynamodb", count)
    try:
        rewards.redeem(member, {"rewardId": "50-off", "shop": SHOP}, "counted-key")
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb", count)
    assert requests == Counter({"BatchGetItem": 1, "TransactWriteItems": 1})
