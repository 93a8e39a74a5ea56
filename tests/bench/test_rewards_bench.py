"""Redemptions: DynamoDB requests per redemption on DynamoDB Local, and the time a redemption takes through the
embedded stack's member API with 8 members redeeming at once."""

from __future__ import annotations

import json
import os
import statistics
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from infra.local.dynamodb_local import free_port
from infra.local.stack import LOCAL_TIME_SCALE, Ports, Stack
from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.adapters.dynamodb.models import bind_table, table_connection
from loyalty.fakes.shops import InMemoryShopCodes
from loyalty.ledger.service import Ledger
from loyalty.programme.rewards import load_rewards
from loyalty.programme.rules import ProgramRules, load_program
from loyalty.rewards.member_api import MemberRewards
from tests.bench.conftest import Figures
from tests.conftest import FakeClock

SHOP = "shopify:demo-shop.myshopify.com"
REDEMPTIONS = 200
MEMBERS_AT_ONCE = 8


def test_dynamodb_requests_per_redemption(
    local_table: str, rules: ProgramRules, clock: FakeClock, figures: Figures
) -> None:
    rewards = MemberRewards(Ledger(DynamoDBLedgerStore(), rules, clock=clock), load_rewards(rules), InMemoryShopCodes())
    members = [f"bench-{n}" for n in range(REDEMPTIONS // 2)]
    for member in members:
        rewards.ledger.enrol(member)
        rewards.ledger.adjust(member, 10_000, "bench", "opening balance", f"open-{member}")
    requests: Counter[str] = Counter()
    client = table_connection().client
    client.meta.events.register("before-parameter-build.dynamodb", lambda model, **_: requests.update([model.name]))
    for number in range(REDEMPTIONS):  # each member twice: the 500-point reward's monthly limit
        rewards.redeem(members[number % len(members)], {"rewardId": "50-off", "shop": SHOP}, f"key-{number}")
    print(f"\n{REDEMPTIONS} redemptions: {dict(requests)}")
    figures.record("dynamodb_requests_per_redemption", sum(requests.values()) / REDEMPTIONS, "<= 2")


def _post(url: str, body: dict[str, Any], key: str) -> float:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST",
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )  # fmt: skip
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 201
    return (time.perf_counter() - started) * 1000


def test_redemption_p95_through_the_stack(figures: Figures) -> None:
    saved = dict(os.environ)
    quiet = {"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"}
    os.environ.update(quiet)
    ports = Ports(gateway=free_port(), dynamodb=free_port(), moto=free_port(), salesforce=free_port())
    try:
        with Stack(
            ports=ports, time_scale=LOCAL_TIME_SCALE, environment=quiet, concurrency={"MemberApiFunction": 8}
        ) as stack:
            bind_table(stack.names["LoyaltyTable"])
            ledger = Ledger(DynamoDBLedgerStore(), load_program())
            members = [f"bench-{n}" for n in range(MEMBERS_AT_ONCE)]
            for member in members:
                ledger.enrol(member)
                ledger.adjust(member, 100_000, "bench", "opening balance", f"open-{member}")
            body = {"rewardId": "10-percent", "shop": SHOP}

            def member_redeems(member: str, keys: str = "bench") -> list[float]:
                url = f"{stack.gateway_url}/members/{member}/redemptions"
                return [_post(url, body, f"{keys}-{n}") for n in range(20)]

            with ThreadPoolExecutor(max_workers=MEMBERS_AT_ONCE) as pool:
                list(pool.map(member_redeems, members, ["warm-up"] * len(members)))  # cold starts, not measured
                times = [t for each in pool.map(member_redeems, members) for t in each]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    p95 = statistics.quantiles(times, n=20)[-1]
    print(f"\n{len(times)} redemptions by {MEMBERS_AT_ONCE} members at once: median {statistics.median(times):.0f} ms")
    figures.record("redemption_p95_ms", p95, "8 members at once, local stack")
