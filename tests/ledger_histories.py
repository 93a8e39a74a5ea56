"""Random ledger histories against a reference model, on a store chosen by the test module that runs them.

The reference model keeps its own arithmetic (pro-rata refunds, FIFO lots, expiry), so a mistake in the ledger's
shows up as a difference. After every step the member's counters are checked incrementally: what the store holds
must equal what it held before plus the deltas of the entries written since (each entry is read once), and agree
with the model, as must the open lots the entries describe. At the end of each history every invariant is checked
over the whole ledger (loyalty.ledger.replay.check_invariants: sums, lot stream, tier), and the store's open lots.

Days pass as the scheduled jobs see them: each day's releases, then the lots whose last valid day was the day
before, found where they fall due. A store where reads are cheap is asked every day; one where they are not is
asked on the days the model expects work (an item missing from its day, or on another day, still shows: the
model's release or expiry does not happen).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, ClassVar

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from loyalty.errors import InsufficientPointsError, RefundExceedsOrderError
from loyalty.ledger.model import Entry, ParkedRefund
from loyalty.ledger.service import Ledger
from loyalty.ledger.state import COUNTERS, MemberState
from loyalty.ledger.store import LedgerStore
from loyalty.ports.job_runs import JobRuns
from loyalty.programme.rules import Expiry, ProgramRules
from tests.conftest import FakeClock
from tests.orders import simple_order

SHOP = "shopify:prop"

# A store for one history, its job runs, and what to do when the history ends (drop a table).
Backend = tuple[LedgerStore, JobRuns, Callable[[], None]]


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
    """One member per history, on a fresh store (the due work of one history must not mix with another's)."""

    rules_under_test: ClassVar[ProgramRules]
    backend: ClassVar[Callable[[], Backend]]
    every_day: ClassVar[bool] = True  # ask for due work every day, or on the days the model expects some
    member_numbers = itertools.count()

    @initialize()
    def start(self) -> None:
        self.store, self.job_runs, self.drop = self.backend()
        self.clock = FakeClock(datetime(2026, 1, 5, 10, tzinfo=UTC))
        self.ledger = Ledger(self.store, self.rules_under_test, clock=self.clock)
        self.member = f"prop-{next(self.member_numbers)}"
        self.ledger.enrol(self.member)
        self.orders: dict[str, ModelOrder] = {}
        self.lots: list[list[Any]] = []  # [remaining, expires_on] oldest first
        self.available = 0
        self.ids = itertools.count()
        self.checked = self._member()  # the member as of the last check
        self.checked_up_to = self.clock.now  # entries written up to here are accounted for
        self.lot_entries: dict[str, Entry] = {}  # every lot the entries read so far describe

    # ------------------------------------------------------------ the model's own arithmetic

    def _pending(self) -> int:
        return sum(sum(o.left_points.values()) for o in self.orders.values() if o.placed and not o.released)

    def _take(self, points: int) -> None:
        self.available -= points
        for lot in self.lots:
            used = min(points, lot[0])
            lot[0] -= used
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
        self._place(f"{self.member}-o{next(self.ids)}", lines)

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
        again = self.ledger.reverse(SHOP, order_id, refund_id, lines if not full else None)
        assert not isinstance(again, ParkedRefund) and again.duplicate

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
        """The scheduled jobs' work each day: releases due that day, then lots whose last valid day was yesterday,
        each found where it falls due (as loyalty.jobs finds it)."""
        for _ in range(days):
            self.clock.advance(days=1)
            today = self.rules_under_test.local_date(self.clock.now)
            releases = any(o.placed and o.release_on == today for o in self.orders.values())
            expiries = any(lot[1] == today - timedelta(days=1) for lot in self.lots)
            released: list[str] = []  # in the order the job found them (on the table, shard by shard)
            for work in self._due(self.job_runs.releases_due_by(today)) if self.every_day or releases else []:
                assert work.shop is not None and work.order_id is not None
                self.ledger.release(work.shop, work.order_id)
                released.append(work.order_id)
            for order_id, model in sorted(self.orders.items(), key=lambda item: _found_first(released, item[0])):
                if model.placed and not model.released and model.release_on == today and any(model.left_units.values()):
                    model.released = True
                    points = sum(model.left_points.values())
                    entry = self.ledger.release(SHOP, order_id)
                    assert entry is not None and entry.duplicate  # the job already did it
                    self.available += points
                    if points:
                        self.lots.append([points, entry.entry.expires_on])
            yesterday = self.job_runs.lots_expiring_after(today - timedelta(days=1))
            for work in self._due(yesterday) if self.every_day or expiries else []:
                assert work.lot is not None
                self.ledger.expire_lot(work.lot)
            due = sum(lot[0] for lot in self.lots if lot[1] < today)
            self.available -= due
            self.lots = [lot for lot in self.lots if lot[1] >= today]

    def _due(self, partitions: list[tuple[str, str | None]]) -> list[Any]:
        found = []
        for partition, up_to in partitions:
            for page, _ in self.job_runs.due_pages(partition, None, 100, up_to):
                found += page
        return found

    # ------------------------------------------------------------ checks

    def _member(self) -> MemberState:
        member = self.store.member(self.member)
        assert member is not None
        return member

    @invariant()
    def ledger_agrees_with_the_model(self) -> None:
        if not hasattr(self, "ledger"):
            return
        member = self._member()
        new = self.store.entries(self.member, since=self.checked_up_to + timedelta(microseconds=1))
        deltas = {
            "available": sum(e.points for e in new),
            "pending": sum(e.pending for e in new),
            "lifetime": sum(e.lifetime for e in new),
            "released": sum((e.lot_end or 0) - (e.lot_start or 0) for e in new),
        }
        for name, delta in deltas.items():
            assert getattr(member, name) == getattr(self.checked, name) + delta, f"{name} moved apart from its entries"
        assert all(getattr(member, name) >= 0 for name in COUNTERS)
        assert member.released - member.consumed == member.available
        assert (member.available, member.pending) == (self.available, self._pending())
        self.lot_entries.update({e.source_key: e for e in new if e.lot_end is not None})
        assert self._open_lots(member) == [lot[0] for lot in self.lots]
        self.checked = member
        self.checked_up_to = max([self.checked_up_to, *(e.created_at for e in new)])

    def _open_lots(self, member: MemberState) -> list[int]:
        """What is left of each lot the entries describe, in stream order."""
        lots = sorted(self.lot_entries.values(), key=lambda e: e.lot_start or 0)
        return [
            (e.lot_end or 0) - max(member.consumed, e.lot_start or 0)
            for e in lots
            if (e.lot_end or 0) > member.consumed
        ]

    def teardown(self) -> None:
        if hasattr(self, "ledger"):
            try:
                assert self.ledger.check_invariants(self.member) == []
                assert [lot.remaining for lot in self.ledger.open_lots(self.member)] == self._open_lots(self._member())
            finally:
                self.drop()


def _found_first(found: list[str], order_id: str) -> tuple[int, str]:
    """Orders the job found in the order it found them (the order of their lots), then the others by id."""
    return (found.index(order_id), "") if order_id in found else (len(found), order_id)


def run_histories(rules: ProgramRules, backend: Callable[[], Backend], examples: int, every_day: bool = True) -> None:
    """Drive ``examples`` random histories, each on a fresh store from ``backend``."""
    # Short windows, so that a history of a few dozen steps sees releases and expiry
    short = rules.model_copy(update={"pending_days": 3, "expiry": Expiry(months=1)})
    attributes = {"rules_under_test": short, "backend": staticmethod(backend), "every_day": every_day}
    machine = settings(
        max_examples=examples,
        stateful_step_count=20,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )(type("Histories", (LedgerHistories,), attributes))
    machine.TestCase().runTest()
