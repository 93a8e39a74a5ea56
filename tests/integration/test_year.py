"""A year of a small shop, day by day, for a few hundred members: orders, refunds, redemptions and every
scheduled job on its date, on the official DynamoDB Local. At the end every ledger invariant holds for every
member, including the tier and the segment recomputed from the ledger."""

from __future__ import annotations

import os
from collections import Counter
from datetime import timedelta
from decimal import Decimal

import pytest

from infra.local.simulation import (
    PRODUCTS,
    SHOP,
    DayEnds,
    Enrol,
    OrderPaid,
    Redeem,
    Refer,
    Refund,
    in_time_order,
    simulate_year,
)
from loyalty.adapters.dynamodb.job_runs import DynamoDBJobRuns
from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.adapters.dynamodb.offer_records import DynamoDBOfferRecords
from loyalty.adapters.dynamodb.reviews import DynamoDBReviews
from loyalty.errors import InsufficientPointsError
from loyalty.fakes.offers import InMemoryOfferQueue
from loyalty.jobs import JOBS, ScheduledJobs
from loyalty.ledger.model import EntryKind
from loyalty.ledger.service import Ledger
from loyalty.offers.rules import load_offer_rules
from loyalty.programme.orders import Order, OrderLine
from loyalty.programme.rules import ProgramRules
from loyalty.programme.tiers import tier_in_force
from tests.conftest import FakeClock, create_table

pytestmark = pytest.mark.dynamodb_local

MEMBERS = int(os.environ.get("LOYALTY_YEAR_MEMBERS", "200"))


def order_of(happening: OrderPaid) -> Order:
    """The order as the shop adapter makes it (prices with 25 % VAT; a discount code takes 15 % off each line)."""
    off = Decimal("0.15") if happening.discount_code else Decimal(0)
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
                discount=(Decimal(PRODUCTS[product][1]) * quantity * off).quantize(Decimal("0.01")),
                tax=(Decimal(PRODUCTS[product][1]) * quantity * (1 - off) / 5).quantize(Decimal("0.01")),
            )
            for line_id, product, quantity in happening.lines
        ),
        discount_codes=(happening.discount_code,) if happening.discount_code else (),
    )


def test_a_year_day_by_day_keeps_every_invariant(
    own_dynamodb_local: str, rules: ProgramRules, clock: FakeClock
) -> None:
    create_table(own_dynamodb_local)
    # Given the programme's rules, its jobs and a simulated year of a small shop
    ledger = Ledger(DynamoDBLedgerStore(), rules, clock=clock)
    reviews = DynamoDBReviews()
    jobs = ScheduledJobs(
        ledger, reviews, DynamoDBJobRuns(), InMemoryOfferQueue(), load_offer_rules(), DynamoDBOfferRecords()
    )
    members: dict[str, str] = {}
    counts: Counter[str] = Counter()
    tiers_seen: dict[str, set[str]] = {}
    # When every happening is applied at its time and the jobs run at the end of each day
    happenings = in_time_order(simulate_year(members=MEMBERS))
    clock.now = happenings[0].at
    for happening in happenings:
        clock.now = max(clock.now, happening.at)
        if isinstance(happening, Enrol):
            members[happening.member_id] = ledger.enrol(happening.member_id, email=happening.email)
            ledger.bonus(happening.member_id, "signup", happening.member_id)
        elif isinstance(happening, OrderPaid):
            ledger.accrue(happening.member_id, order_of(happening))
            reviews.schedule(happening.member_id, ledger.rules.local_date(clock.now) + timedelta(days=1))
            counts["orders"] += 1
        elif isinstance(happening, Refund):
            ledger.reverse(SHOP, happening.order_id, happening.refund_id, dict(happening.lines))
        elif isinstance(happening, Refer):
            ledger.bonus(happening.member_id, "referral", happening.referral_id)
        elif isinstance(happening, Redeem):
            try:
                ledger.redeem(happening.member_id, happening.points, happening.redemption_id, "voucher")
                counts["redemptions"] += 1
            except InsufficientPointsError:
                counts["refused redemptions"] += 1
        elif isinstance(happening, DayEnds):
            for job in JOBS:
                counts[f"{job} changed"] += jobs.run(job, happening.day).changed
            if happening.day.day == 1:
                for member in members:
                    stored = ledger.store.member(member)  # the tier as stored (one read; a summary reads the lots too)
                    assert stored is not None
                    tiers_seen.setdefault(member, set()).add(
                        tier_in_force(rules, stored.tier, stored.tier_override, happening.day)
                    )
    # Then every member's ledger explains their balance, lots, tier and segment
    problems = {member: ledger.check_invariants(member) for member in members}
    assert {member: found for member, found in problems.items() if found} == {}
    summaries = [ledger.summary(member) for member in members]
    assert all(summary.segment is not None for summary in summaries)
    # And the year did what a year does: releases, expiry, reviews, members moving between tiers
    assert counts["release changed"] > counts["orders"] * 0.8
    assert counts["expire changed"] > 0
    assert counts["review changed"] >= MEMBERS
    assert sum(1 for seen in tiers_seen.values() if len(seen) > 1) > MEMBERS // 10
    assert len({summary.segment for summary in summaries}) >= 6
    assert any(e.kind is EntryKind.EXPIRY for e in ledger.entries(next(iter(members))))
