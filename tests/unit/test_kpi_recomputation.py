"""The 12-month table (returning customers, average order value, active members) as GET /kpis answers it equals a
recomputation from the simulated year's events alone (infra/local/demo_figures.py, which `make demo` checks on
the embedded stack): the demo's customers, their orders as their Shopify webhooks carry them, refunds (some
before their orders), redemptions, applied to the ledger on the ports' fakes and counted as the stream counts."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal

import pytest

from infra.local.demo_figures import SentEvents, order_values, twelve_months
from infra.local.shop_emulator import order_payload
from infra.local.simulation import Enrol, OrderPaid, Redeem, Refund, in_time_order, simulate_year
from loyalty.errors import InsufficientPointsError
from loyalty.fakes import Fakes
from loyalty.kpis.counting import KpiCounting
from loyalty.kpis.figures import KpiFigures
from loyalty.kpis.report import programme_rows
from loyalty.ledger.model import LedgerResult
from loyalty.ledger.service import Ledger
from loyalty.programme.rewards import load_rewards
from loyalty.programme.tiers import month_key
from loyalty.shop.events import OrderPaidEvent
from loyalty.shop.shopify import parse_shopify_webhook
from tests.conftest import FakeClock

SHOP = "demo-shop.myshopify.com"


@pytest.mark.parametrize("seed", [7, 11])
def test_the_twelve_month_table_equals_a_recomputation_from_the_simulated_events(
    fakes: Fakes, ledger: Ledger, clock: FakeClock, seed: int
) -> None:
    # Given a simulated year of 40 customers, applied as the webshop pipeline applies it
    events, seen = SentEvents(), set()
    counting = KpiCounting(ledger, fakes.kpis)

    def month(at: datetime) -> str:  # the programme's month of a moment
        return month_key(ledger.rules.local_date(at))

    for happening in in_time_order(simulate_year(members=40, seed=seed)):
        clock.now = happening.at
        if isinstance(happening, Enrol):
            ledger.enrol(happening.member_id)
            counting.count_enrolments([(happening.member_id, happening.at)])
            events.joined_in(happening.member_id, month(happening.at))
        elif isinstance(happening, OrderPaid) and not happening.redelivered:
            payload = order_payload(happening, f"{happening.member_id}@example.com")
            event = parse_shopify_webhook("orders/paid", SHOP, happening.order_id, json.dumps(payload).encode())
            assert isinstance(event, OrderPaidEvent)
            ledger.accrue(happening.member_id, event.order)
            seen.add(happening.order_id)
            events.order(happening.member_id, month(happening.at), [line for line, _, _ in happening.lines], payload)
        elif isinstance(happening, Refund):
            lines = {str(int(happening.order_id) * 10 + int(line)): quantity for line, quantity in happening.lines}
            result = ledger.reverse(f"shopify:{SHOP}", happening.order_id, happening.refund_id, lines)
            assert happening.before_order or isinstance(result, LedgerResult)
            events.refund(happening.order_id, month(happening.at), happening.lines)
        elif isinstance(happening, Redeem):
            try:
                ledger.redeem(happening.member_id, 100, happening.redemption_id, "voucher")
            except InsufficientPointsError:
                continue  # refused: no activity
            events.redemption(happening.member_id, month(happening.at))
    members = sorted(events.joined)
    counting.count([entry for member in members for entry in ledger.entries(member)])
    # When GET /kpis is asked for the year
    answer = KpiFigures(fakes.kpis, load_rewards(ledger.rules)).months("2026-01", "2026-12")
    # Then each month's returning share, average order value and active share equal the recomputation
    recomputed = twelve_months(events, [f"2026-{m:02d}" for m in range(1, 13)])
    shown = {
        row["month"]: {name: row[name] for name in ("returningShare", "averageOrderValue", "activeShare")}
        for row in programme_rows(answer)
    }
    assert shown == recomputed
    # And each order's value in each month, as the demo names them when a month differs, equals the ledger's
    for number in range(1, 13):
        at = f"2026-{number:02d}"
        ledger_values: dict[str, Decimal] = {}
        for member in members:
            for entry in ledger.entries(member):
                if entry.value is not None and entry.order_key and month(entry.created_at) == at:
                    order_id = entry.order_key.rsplit("#", 1)[1]
                    ledger_values[order_id] = ledger_values.get(order_id, Decimal(0)) + entry.value
        assert ledger_values == order_values(events, at)
    assert sum(1 for row in shown.values() if row["averageOrderValue"]) >= 11 and len(seen) > 100
