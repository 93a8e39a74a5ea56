"""Random histories against a reference model, and concurrent writers, on the official DynamoDB Local.

The reference model keeps its own arithmetic (pro-rata refunds, FIFO lots, expiry) so that a mistake in
the ledger's shows up as a difference, and every ledger invariant is checked after every step.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import boto3
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.errors import InsufficientPointsError, RefundExceedsOrderError
from loyalty.ledger import ParkedRefund
from loyalty.program import Expiry, ProgramRules
from tests.conftest import FakeClock, create_table
from tests.orders import simple_order

pytestmark = pytest.mark.dynamodb_local

EXAMPLES = int(os.environ.get("LOYALTY_HYPOTHESIS_EXAMPLES", "200"))
SHOP = "shopify:prop"


def kept(points: int, quantity: int, quantity_left: int) -> int:
    return int((Decimal(points) * quantity_left / quantity).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class ModelOrder:
    quantities: dict[str, int]  # line -> units ordered
    points: dict[str, int] = field(default_factory=dict)  # line -> points earned (from the accrual)
    left_units: dict[str, int] = field(default_factory=dict)
    left_points: dict[str, int] = field(default_factory=dict)
    placed: bool = False
    released: bool = False
    release_on: date | None = None
    refunds: dict[str, dict[str, int]] = field(default_factory=dict)  # refund id -> lines


class LedgerHistories(RuleBasedStateMachine):
    """One member in a table of its own per example (the due index's dates must not fill up across examples)."""

    rules_under_test: ProgramRules
    endpoint_url: str
    member_numbers = itertools.count()

    @initialize()
    def start(self) -> None:
        self.table = create_table(self.endpoint_url)
        self.clock = FakeClock(datetime(2026, 1, 5, 10, tzinfo=UTC))
        self.ledger = Ledger(self.rules_under_test, clock=self.clock)
        self.member = f"prop-{os.getpid()}-{next(self.member_numbers)}"
        self.ledger.enrol(self.member)
        self.orders: dict[str, ModelOrder] = {}
        self.lots: list[list[object]] = []  # [remaining, expires_on] oldest first
        self.available = 0
        self.ids = itertools.count()

    # ------------------------------------------------------------ the model's own arithmetic

    def _pending(self) -> int:
        return sum(sum(o.left_points.values()) for o in self.orders.values() if o.placed and not o.released)

    def _take(self, points: int) -> None:
        self.available -= points
        for lot in self.lots:
            used = min(points, lot[0])  # type: ignore[call-overload]
            lot[0] -= used  # type: ignore[operator]
            points -= used
        self.lots = [lot for lot in self.lots if lot[0]]

    def _apply_refund(self, order: ModelOrder, lines: dict[str, int]) -> None:
        reversed_points = 0
        for line, units in lines.items():
            order.left_units[line] -= units
            new_points = kept(order.points[line], order.quantities[line], order.left_units[line])
            reversed_points += order.left_points[line] - new_points
            order.left_points[line] = new_points
        if order.released:
            self._take(min(reversed_points, self.available))

    # ------------------------------------------------------------ rules

    @rule(lines=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 300)), min_size=1, max_size=3))
    def place_order(self, lines: list[tuple[int, int]]) -> None:
        order_id = f"{self.member}-o{next(self.ids)}"
        self._place(order_id, lines)

    def _place(self, order_id: str, lines: list[tuple[int, int]]) -> None:
        model = self.orders.setdefault(order_id, ModelOrder({}))
        model.quantities = {str(n): qty for n, (qty, _) in enumerate(lines)}
        order = simple_order(
            order_id, self.clock.now, [(str(n), qty, f"{price}.50") for n, (qty, price) in enumerate(lines)], SHOP
        )
        result = self.ledger.accrue(self.member, order)
        assert not result.duplicate
        model.placed = True
        model.points = dict(result.entry.lines or {})
        model.left_units = dict(model.quantities)
        model.left_points = dict(model.points)
        model.release_on = self.rules_under_test.release_date(self.rules_under_test.local_date(self.clock.now))
        for lines_refunded in model.refunds.values():  # refunds that arrived first
            self._apply_refund(model, lines_refunded)

    @precondition(lambda self: any(o.placed for o in self.orders.values()))
    @rule(data=st.data())
    def redeliver_order(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(sorted(k for k, o in self.orders.items() if o.placed)))
        order = simple_order(order_id, self.clock.now, [("0", 1, "1.00")], SHOP)
        assert self.ledger.accrue(self.member, order).duplicate

    @precondition(lambda self: any(o.placed for o in self.orders.values()))
    @rule(data=st.data(), full=st.booleans())
    def refund(self, data: st.DataObject, full: bool) -> None:
        order_id = data.draw(st.sampled_from(sorted(k for k, o in self.orders.items() if o.placed)))
        model = self.orders[order_id]
        refund_id = f"r{next(self.ids)}"
        left = {line: units for line, units in model.left_units.items() if units > 0}
        if not left:
            with pytest.raises(RefundExceedsOrderError):
                self.ledger.reverse(SHOP, order_id, refund_id)
            return
        if full:
            lines = left
            result = self.ledger.reverse(SHOP, order_id, refund_id)
        else:
            line = data.draw(st.sampled_from(sorted(left)))
            lines = {line: data.draw(st.integers(1, left[line]))}
            result = self.ledger.reverse(SHOP, order_id, refund_id, lines)
        assert not isinstance(result, ParkedRefund)
        self._apply_refund(model, lines)
        model.refunds[refund_id] = lines
        # a redelivered refund changes nothing
        assert self.ledger.reverse(SHOP, order_id, refund_id, lines if not full else None).duplicate  # type: ignore[union-attr]

    @precondition(lambda self: any(o.placed and any(o.left_units.values()) for o in self.orders.values()))
    @rule(data=st.data())
    def refund_too_much(self, data: st.DataObject) -> None:
        order_id = data.draw(st.sampled_from(sorted(k for k, o in self.orders.items() if o.placed)))
        line, units = max(self.orders[order_id].left_units.items(), key=lambda item: item[1])
        with pytest.raises(RefundExceedsOrderError):
            self.ledger.reverse(SHOP, order_id, f"r{next(self.ids)}", {line: units + 1})

    @rule(lines=st.lists(st.tuples(st.integers(1, 4), st.integers(1, 300)), min_size=1, max_size=3), data=st.data())
    def refund_before_order(self, lines: list[tuple[int, int]], data: st.DataObject) -> None:
        order_id = f"{self.member}-o{next(self.ids)}"
        line = data.draw(st.integers(0, len(lines) - 1))
        units = data.draw(st.integers(1, lines[line][0]))
        refund = {str(line): units}
        assert isinstance(self.ledger.reverse(SHOP, order_id, "early", refund), ParkedRefund)
        self.orders[order_id] = ModelOrder({}, refunds={"early": refund})
        self._place(order_id, lines)

    @rule(points=st.integers(1, 400))
    def redeem(self, points: int) -> None:
        redemption_id = f"red{next(self.ids)}"
        if points > self.available:
            with pytest.raises(InsufficientPointsError):
                self.ledger.redeem(self.member, points, redemption_id, "reward")
            return
        self.ledger.redeem(self.member, points, redemption_id, "reward")
        assert self.ledger.redeem(self.member, points, redemption_id, "reward").duplicate
        self._take(points)

    @rule(points=st.integers(1, 200))
    def bonus(self, points: int) -> None:
        entry = self.ledger.bonus(self.member, "review", f"b{next(self.ids)}", points=points).entry
        self.available += points
        self.lots.append([points, entry.expires_on])

    @rule(days=st.integers(1, 25))
    def days_pass(self, days: int) -> None:
        """The scheduled jobs run once a day: releases due that day, then expiries due that day."""
        for _ in range(days):
            self.clock.advance(days=1)
            today = self.rules_under_test.local_date(self.clock.now)
            self.ledger.release_due(today)
            for order_id, model in sorted(self.orders.items()):
                if model.placed and not model.released and model.release_on == today and any(model.left_units.values()):
                    model.released = True
                    points = sum(model.left_points.values())
                    entry = self.ledger.release(SHOP, order_id)
                    assert entry is not None and entry.duplicate  # the job already did it
                    self.available += points
                    if points:
                        self.lots.append([points, entry.entry.expires_on])
            self.ledger.expire_due(today)
            due = sum(lot[0] for lot in self.lots if lot[1] < today)  # type: ignore[misc, operator]
            self.available -= due
            self.lots = [lot for lot in self.lots if lot[1] >= today]  # type: ignore[operator]

    def teardown(self) -> None:
        if hasattr(self, "table"):
            boto3.client("dynamodb", endpoint_url=self.endpoint_url).delete_table(TableName=self.table)

    @invariant()
    def ledger_agrees_with_the_model(self) -> None:
        if not hasattr(self, "ledger"):
            return
        assert self.ledger.check_invariants(self.member) == []
        summary = self.ledger.summary(self.member)
        assert (summary.available, summary.pending) == (self.available, self._pending())
        assert [lot.remaining for lot in self.ledger.open_lots(self.member)] == [lot[0] for lot in self.lots]


def test_random_histories_keep_every_invariant(own_dynamodb_local: str, rules: ProgramRules) -> None:
    # Given short windows so that a history of a few dozen steps sees releases and expiry
    LedgerHistories.rules_under_test = rules.model_copy(update={"pending_days": 3, "expiry": Expiry(months=1)})
    LedgerHistories.endpoint_url = own_dynamodb_local
    machine = settings(
        max_examples=EXAMPLES,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )(LedgerHistories)
    # When hypothesis drives random histories; Then every invariant holds after every step
    machine.TestCase().runTest()


def test_concurrent_writers_lose_no_update(local_table: str, rules: ProgramRules) -> None:
    # Given one member with some points and 8 threads doing 100 mixed operations each
    ledger = Ledger(rules)
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
