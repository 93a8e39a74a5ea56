"""`make demo`: a year of a small shop through the points ledger on the official DynamoDB Local.

Prints a progress bar while the year runs, then a summary: members by tier, points outstanding and
pending, entries written, and the ledger invariants checked for every member.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
from tqdm import tqdm

from infra.local.dynamodb_local import DynamoDBLocal
from infra.local.simulation import (
    PRODUCTS,
    SHOP,
    DayEnds,
    Enrol,
    Happening,
    OrderPaid,
    Redeem,
    Refund,
    in_time_order,
    simulate_year,
)
from infra.local.template import create_table_kwargs
from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.adapters.dynamodb_models import bind_table
from loyalty.earning import Order, OrderLine
from loyalty.errors import InsufficientPointsError
from loyalty.program import load_program

REGION = "eu-north-1"
TABLE = "loyalty-demo"


class SimulatedClock:
    """The ledger's clock during the demo: set to each happening's time, a microsecond apart."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def set(self, moment: datetime) -> None:
        self.now = max(self.now, moment)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now


def order_of(happening: OrderPaid) -> Order:
    """The order as the ledger sees it; categories come from the shop's catalogue."""
    return Order(
        shop=SHOP,
        order_id=happening.order_id,
        currency="SEK",
        placed_at=happening.at,
        prices_include_tax=True,
        lines=tuple(
            OrderLine(
                line_id=line_id,
                product_id=product,
                categories=PRODUCTS[product][2],
                quantity=quantity,
                unit_price=Decimal(PRODUCTS[product][1]),
                tax=Decimal(PRODUCTS[product][1] * quantity) * Decimal("0.2"),  # 25 % Swedish VAT in the price
            )
            for line_id, product, quantity in happening.lines
        ),
    )


def apply(ledger: Ledger, happening: Happening, counts: Counter[str]) -> None:
    if isinstance(happening, Enrol):
        ledger.enrol(happening.member_id, happening.email)
        ledger.bonus(happening.member_id, "signup", happening.member_id)
        counts["members enrolled"] += 1
    elif isinstance(happening, OrderPaid):
        result = ledger.accrue(happening.member_id, order_of(happening))
        counts["redeliveries ignored" if result.duplicate else "orders"] += 1
    elif isinstance(happening, Refund):
        ledger.reverse(SHOP, happening.order_id, happening.refund_id, dict(happening.lines))
        counts["refunds before their order" if happening.before_order else "partial refunds"] += 1
    elif isinstance(happening, Redeem):
        try:
            ledger.redeem(happening.member_id, happening.points, happening.redemption_id, "reward voucher")
            counts["redemptions"] += 1
        except InsufficientPointsError:
            counts["redemptions refused (not enough points)"] += 1
    elif isinstance(happening, DayEnds):
        counts["orders released"] += ledger.release_due(happening.day)
        counts["lots expired"] += ledger.expire_due(happening.day)


def print_summary(ledger: Ledger, member_ids: Sequence[str], counts: Counter[str]) -> bool:
    tiers: Counter[str] = Counter()
    available = pending = entries = 0
    broken: list[str] = []
    for member_id in tqdm(member_ids, desc="checking invariants", unit="member", file=sys.stdout):
        summary = ledger.summary(member_id)
        tiers[summary.tier] += 1
        available += summary.available
        pending += summary.pending
        entries += sum(1 for _ in ledger.entries(member_id))
        broken += [f"{member_id}: {problem}" for problem in ledger.check_invariants(member_id)]
    print("\nThe year in numbers")
    for name, count in sorted(counts.items()):
        print(f"  {name:<42} {count:>8,}")
    print("\nMembers by tier")
    for tier in ledger.rules.tiers:
        print(f"  {tier.display_name:<42} {tiers[tier.name]:>8,}")
    print("\nPoints")
    print(f"  {'outstanding (available)':<42} {available:>8,}")
    print(f"  {'pending (inside the return window)':<42} {pending:>8,}")
    print(f"  {'ledger entries written':<42} {entries:>8,}")
    print("\nInvariants")
    if broken:
        print(f"  VIOLATED for {len(broken)} checks:")
        for line in broken[:20]:
            print(f"    {line}")
        return False
    print(f"  balance = sum of entries, no negative balance, lot stream intact: OK for all {len(member_ids):,} members")
    return True


def run(members: int, endpoint: str) -> bool:
    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    if TABLE in client.list_tables()["TableNames"]:
        client.delete_table(TableName=TABLE)
    client.create_table(**create_table_kwargs(TABLE))
    bind_table(TABLE, region=REGION, host=endpoint)
    clock = SimulatedClock()
    ledger = Ledger(load_program(), clock=clock)
    happenings = in_time_order(simulate_year(members=members))
    counts: Counter[str] = Counter()
    print(f"Simulating a year of {SHOP} with {members:,} members ({len(happenings):,} events) on {endpoint}")
    for happening in tqdm(happenings, desc="simulating the year", unit="event", file=sys.stdout):
        clock.set(happening.at)
        apply(ledger, happening, counts)
    member_ids = sorted(h.member_id for h in happenings if isinstance(h, Enrol))
    return print_summary(ledger, member_ids, counts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1000)
    args = parser.parse_args(argv)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    with DynamoDBLocal() as dynamodb:
        return 0 if run(args.members, dynamodb.url) else 1


if __name__ == "__main__":
    raise SystemExit(main())
