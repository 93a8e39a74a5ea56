"""The ledger service on its in-memory store: every operation, its duplicate, its bad input.

tests/contract/test_ledger_store.py holds the in-memory store to the DynamoDB store's behaviour."""

from __future__ import annotations

from datetime import date

import pytest

from loyalty.errors import (
    InsufficientPointsError,
    InvalidAmountError,
    NotDueError,
    RefundExceedsOrderError,
    UnknownCurrencyError,
    UnknownMemberError,
    UnknownOrderError,
)
from loyalty.fakes import Fakes
from loyalty.ledger.model import EntryKind, LedgerResult, ParkedRefund
from loyalty.ledger.service import Ledger
from tests.conftest import FakeClock
from tests.orders import simple_order

# EUR earns 1 point per euro at x1 for a bronze member with no campaign on 2026-03-02 (a Monday).


def enrolled(ledger: Ledger, member_id: str = "m1") -> str:
    ledger.enrol(member_id, email=f"{member_id}@example.com")
    return member_id


def test_accrual_is_pending_and_a_duplicate_changes_nothing(ledger: Ledger, clock: FakeClock) -> None:
    # Given an enrolled member
    member = enrolled(ledger)
    order = simple_order("1001", clock.now, [("1", 2, "50.00"), ("2", 1, "25.00")])
    # When the paid order is accrued twice
    first = ledger.accrue(member, order)
    again = ledger.accrue(member, order)
    # Then the points are pending once, and the duplicate returns the original entry
    assert first.entry.pending == 125 and first.entry.points == 0
    assert first.entry.lines == {"1": 100, "2": 25}
    assert again.duplicate and again.entry == first.entry
    summary = ledger.summary(member)
    assert (summary.available, summary.pending, summary.lifetime, summary.qualifying) == (0, 125, 125, 125)
    assert ledger.check_invariants(member) == []


def test_release_makes_points_available_as_a_lot(ledger: Ledger, clock: FakeClock) -> None:
    # Given an accrued order
    member = enrolled(ledger)
    ledger.accrue(member, simple_order("1001", clock.now))
    # When it is released, twice
    release = ledger.release("shopify:demo", "1001")
    assert ledger.release("shopify:demo", "1001") == release.model_copy(update={"duplicate": True})
    # Then its points are available in one lot expiring at the month end 12 months after earning
    summary = ledger.summary(member)
    assert (summary.available, summary.pending) == (100, 0)
    lots = ledger.open_lots(member)
    assert [(lot.points, lot.remaining, str(lot.expires_on)) for lot in lots] == [(100, 100, "2027-03-31")]
    assert (summary.next_expiry_on, summary.next_expiry_points) == (lots[0].expires_on, 100)
    assert ledger.check_invariants(member) == []


def test_a_release_by_the_due_index_reads_member_and_order_together_and_trusts_only_the_order(
    ledger: Ledger, fakes: Fakes, clock: FakeClock
) -> None:
    member, other = enrolled(ledger, "m1"), enrolled(ledger, "m2")
    ledger.accrue(member, simple_order("1001", clock.now))
    ledger.accrue(other, simple_order("1002", clock.now))
    reads: list[str] = []
    store = fakes.ledger_store
    for name in ("member_and_order", "order", "member"):
        original = getattr(store, name)
        setattr(store, name, lambda *a, _n=name, _o=original, **k: reads.append(_n) or _o(*a, **k))
    ledger.release("shopify:demo", "1001", member)  # as the release job knows it
    assert reads == ["member_and_order"]
    reads.clear()
    ledger.release("shopify:demo", "1002", member)  # a due item naming another member: the order's own is used
    assert reads == ["member_and_order", "order", "member"]
    assert (ledger.summary(member).available, ledger.summary(other).available) == (100, 100)


def test_summaries_read_many_members_and_without_expiry_skip_the_lots(ledger: Ledger, clock: FakeClock) -> None:
    # Given two members, one with released points
    first, second = enrolled(ledger, "m1"), enrolled(ledger, "m2")
    ledger.accrue(first, simple_order("1001", clock.now))
    ledger.release("shopify:demo", "1001")
    # When both are summarised together (with an id no member has), with and without their expiry
    full = ledger.summaries([first, second, "nobody"])
    standing = ledger.summaries([first, second], expiry=False)
    # Then each summary is the member's own, the unknown id is left out
    assert full == {first: ledger.summary(first), second: ledger.summary(second)}
    assert full[first].next_expiry_points == 100
    # And without expiry everything but the next expiry is the same
    assert standing[first] == full[first].model_copy(update={"next_expiry_on": None, "next_expiry_points": 0})
    assert ledger.summary(first, expiry=False) == standing[first]


def test_partial_refunds_reverse_pro_rata_and_never_more_than_earned(ledger: Ledger, clock: FakeClock) -> None:
    # Given an order of 3 units earning 100 points (33.33 a unit)
    member = enrolled(ledger)
    ledger.accrue(member, simple_order("1001", clock.now, [("1", 3, "33.34")]))
    # When one unit, then the other two, are refunded (and the second refund is redelivered)
    first = ledger.reverse("shopify:demo", "1001", "r1", {"1": 1})
    second = ledger.reverse("shopify:demo", "1001", "r2", {"1": 2})
    repeat = ledger.reverse("shopify:demo", "1001", "r2", {"1": 2})
    # Then 100 * 2/3 = 66.67 -> 67 is kept after the first (33 reversed) and the rest after the second
    assert not isinstance(first, ParkedRefund) and first.entry.pending == -33
    assert not isinstance(second, ParkedRefund) and second.entry.pending == -67
    assert not isinstance(repeat, ParkedRefund) and repeat.duplicate
    assert ledger.summary(member).pending == 0 and ledger.summary(member).lifetime == 0
    # And a further refund is refused and writes nothing
    with pytest.raises(RefundExceedsOrderError):
        ledger.reverse("shopify:demo", "1001", "r3", {"1": 1})
    assert ledger.check_invariants(member) == []
    # And a fully refunded order has nothing to release
    assert ledger.release("shopify:demo", "1001") is None


def test_refund_after_release_takes_available_points(ledger: Ledger, clock: FakeClock) -> None:
    member = enrolled(ledger)
    ledger.accrue(member, simple_order("1001", clock.now, [("1", 1, "60.00"), ("2", 1, "40.00")]))
    ledger.release("shopify:demo", "1001")
    # When line 2 is refunded after the return window
    result = ledger.reverse("shopify:demo", "1001", "r1", {"2": 1})
    # Then exactly what line 2 earned is reversed from available points
    assert not isinstance(result, ParkedRefund)
    assert (result.entry.points, result.entry.lines) == (-40, {"2": 40})
    assert ledger.summary(member).available == 60
    assert ledger.check_invariants(member) == []


def test_refund_after_points_were_spent_never_goes_below_zero(ledger: Ledger, clock: FakeClock) -> None:
    member = enrolled(ledger)
    ledger.accrue(member, simple_order("1001", clock.now))
    ledger.release("shopify:demo", "1001")
    ledger.redeem(member, 80, "red-1", "voucher")
    # When the whole order is refunded
    result = ledger.reverse("shopify:demo", "1001", "r1")
    # Then only the 20 left are taken, and the 80 spent are recorded as not recovered
    assert not isinstance(result, ParkedRefund)
    assert (result.entry.points, result.entry.unrecovered) == (-20, 80)
    assert ledger.summary(member).available == 0
    assert ledger.check_invariants(member) == []


def test_refund_before_its_order_is_parked_and_applied_on_arrival(ledger: Ledger, clock: FakeClock) -> None:
    member = enrolled(ledger)
    # When the refund of one of two lines arrives first (twice), then the order
    parked = ledger.reverse("shopify:demo", "1001", "r1", {"2": 1})
    assert parked == ParkedRefund(order_key="shopify:demo#1001", refund_id="r1")
    assert ledger.reverse("shopify:demo", "1001", "r1", {"2": 1}) == parked.model_copy(update={"duplicate": True})
    ledger.accrue(member, simple_order("1001", clock.now, [("1", 1, "60.00"), ("2", 1, "40.00")]))
    # Then the order earned 100 and the early refund took back line 2's 40
    summary = ledger.summary(member)
    assert (summary.pending, summary.lifetime) == (60, 60)
    kinds = sorted(entry.kind for entry in ledger.entries(member))
    assert kinds == [EntryKind.ACCRUAL, EntryKind.REVERSAL]
    assert ledger.check_invariants(member) == []


def test_redemption_beyond_the_balance_is_refused_and_writes_nothing(ledger: Ledger, clock: FakeClock) -> None:
    member = enrolled(ledger)
    ledger.bonus(member, "signup", member, points=50)
    before = list(ledger.entries(member))
    with pytest.raises(InsufficientPointsError):
        ledger.redeem(member, 51, "red-1", "too much")
    assert list(ledger.entries(member)) == before
    assert ledger.summary(member).available == 50


def test_redemption_is_idempotent_and_consumes_oldest_lots_first(ledger: Ledger, clock: FakeClock) -> None:
    member = enrolled(ledger)
    ledger.bonus(member, "signup", member, points=30)
    clock.advance(days=40)
    ledger.bonus(member, "review", "rev-1", points=50)
    # When 40 points are redeemed (and the request repeated)
    ledger.redeem(member, 40, "red-1", "voucher")
    assert ledger.redeem(member, 40, "red-1", "voucher").duplicate
    # Then the older lot is used up and 40 of the newer remain
    assert [(lot.points, lot.remaining) for lot in ledger.open_lots(member)] == [(50, 40)]
    assert ledger.summary(member).available == 40


def test_expiry_takes_only_what_is_left_of_the_lot(ledger: Ledger, clock: FakeClock) -> None:
    member = enrolled(ledger)
    lot = ledger.bonus(member, "signup", member, points=100).entry
    ledger.redeem(member, 30, "red-1", "voucher")
    # Before its date the lot cannot expire
    with pytest.raises(NotDueError):
        ledger.expire(member, lot.source_key)
    # When its expiry date comes and the job runs twice
    assert lot.expires_on is not None
    clock.now = clock.now.replace(year=lot.expires_on.year, month=lot.expires_on.month, day=lot.expires_on.day)
    with pytest.raises(NotDueError):  # still valid on its last day
        ledger.expire(member, lot.source_key)
    clock.advance(days=1)
    expired = ledger.expire(member, lot.source_key)
    assert expired is not None and not expired.duplicate
    assert ledger.expire(member, lot.source_key) is None  # a rerun finds nothing left of the lot
    # Then 70 expired (not the 30 redeemed), as an explicit entry, and nothing is open
    expiry = [entry for entry in ledger.entries(member) if entry.kind is EntryKind.EXPIRY]
    assert [entry.points for entry in expiry] == [-70]
    assert ledger.summary(member).available == 0 and ledger.open_lots(member) == []
    assert ledger.check_invariants(member) == []


def test_adjustments_are_audited_and_never_go_below_zero(ledger: Ledger, clock: FakeClock) -> None:
    member = enrolled(ledger)
    credit = ledger.adjust(member, 25, actor="005xx0000012345", reason="late delivery", adjustment_id="a1")
    assert credit.entry.actor == "005xx0000012345" and "late delivery" in credit.entry.reason
    assert ledger.adjust(member, 25, "005xx0000012345", "late delivery", "a1").duplicate
    with pytest.raises(InsufficientPointsError):
        ledger.adjust(member, -26, actor="005xx0000012345", reason="correction", adjustment_id="a2")
    ledger.adjust(member, -25, actor="005xx0000012345", reason="correction", adjustment_id="a3")
    assert ledger.summary(member).available == 0
    assert ledger.check_invariants(member) == []


def test_history_is_newest_first_and_paginated(ledger: Ledger, clock: FakeClock) -> None:
    member = enrolled(ledger)
    for number in range(5):
        clock.advance(minutes=1)
        ledger.bonus(member, "review", f"rev-{number}", points=number + 1)
    first = ledger.history(member, limit=2)
    second = ledger.history(member, limit=2, cursor=first.cursor)
    third = ledger.history(member, limit=2, cursor=second.cursor)
    keys = [entry.source_key for page in (first, second, third) for entry in page.entries]
    assert keys == [f"bonus#review#rev-{n}" for n in (4, 3, 2, 1, 0)]
    assert all(entry.reason for page in (first, second, third) for entry in page.entries)


@pytest.mark.parametrize(
    "operation",
    [
        lambda ledger, order: ledger.accrue("nobody", order),
        lambda ledger, order: ledger.redeem("nobody", 1, "r", "x"),
        lambda ledger, order: ledger.bonus("nobody", "signup", "s"),
        lambda ledger, order: ledger.adjust("nobody", 5, "actor", "why", "a"),
        lambda ledger, order: ledger.summary("nobody"),
        lambda ledger, order: ledger.expire("nobody", "bonus#signup#nobody"),
    ],
)
def test_unknown_member_is_refused(ledger: Ledger, clock: FakeClock, operation) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(UnknownMemberError):
        operation(ledger, simple_order("1", clock.now))


@pytest.mark.parametrize("points", [0, -5])
def test_zero_or_negative_amounts_are_refused(ledger: Ledger, points: int) -> None:
    member = enrolled(ledger)
    with pytest.raises(InvalidAmountError):
        ledger.redeem(member, points, "r", "x")
    with pytest.raises(InvalidAmountError):
        ledger.bonus(member, "signup", "s", points=points)
    with pytest.raises(InvalidAmountError):
        ledger.reverse("shopify:demo", "1", "r", {"1": points})
    assert list(ledger.entries(member)) == []


def test_unknown_currency_and_unknown_lines_are_refused(ledger: Ledger, clock: FakeClock) -> None:
    member = enrolled(ledger)
    with pytest.raises(UnknownCurrencyError):
        ledger.accrue(member, simple_order("x", clock.now, currency="USD"))
    ledger.accrue(member, simple_order("1001", clock.now))
    with pytest.raises(UnknownOrderError):
        ledger.reverse("shopify:demo", "1001", "r1", {"nope": 1})
    with pytest.raises(UnknownOrderError):
        ledger.release("shopify:demo", "missing")
    assert [entry.kind for entry in ledger.entries(member)] == [EntryKind.ACCRUAL]


def test_erasure_removes_personal_data_and_keeps_amounts(ledger: Ledger, clock: FakeClock) -> None:
    member = enrolled(ledger)
    ledger.bonus(member, "signup", member, points=10)
    ledger.erase_personal_data(member)
    assert ledger.summary(member).available == 10
    assert ledger.check_invariants(member) == []
    assert ledger.summary(member).profile.email is None
    assert ledger.member_for_email(f"{member}@example.com") is None


def test_one_member_per_email_address(ledger: Ledger) -> None:
    # Given a member enrolled from one shop
    first = ledger.enrol("m-shop-a", email="Anna.Berg@example.com", first_name="Anna")
    # When the same person (address in another case) is enrolled from a second shop
    second = ledger.enrol("m-shop-b", email=" anna.berg@EXAMPLE.com")
    # Then both shops' enrolments give the same member, and no second member exists
    assert first == second == "m-shop-a"
    assert ledger.member_for_email("anna.berg@example.com") == "m-shop-a"
    with pytest.raises(UnknownMemberError):
        ledger.summary("m-shop-b")


def test_an_accrual_prepared_ahead_earns_with_the_catalogues_categories_and_one_read(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    # Given a member and a catalogue that knows one of the order's two products (shoes earn more)
    member = enrolled(ledger)
    fakes.directory.save_product("shopify:demo", "p-1", "Shoe", ("shoes",), clock.now)
    order = simple_order("1001", clock.now, [("1", 1, "100.00"), ("2", 1, "100.00")])
    # When the accrual is prepared and made
    prepared = ledger.prepare_accrual(member, order)
    accrual = ledger.accrue_prepared(prepared)
    # Then the known product's line earns by its category, the unknown one at the base rate, and is named
    assert prepared.unknown_products == ("p-2",)
    assert accrual.result.entry.categories == ("shoes",)
    plain = ledger.accrue(enrolled(ledger, "m2"), simple_order("1002", clock.now, [("1", 1, "100.00")]))
    assert accrual.result.entry.lines is not None and plain.entry.lines is not None
    assert accrual.result.entry.lines["1"] > plain.entry.lines["1"] == accrual.result.entry.lines["2"]
    # And without the catalogue the lines keep their own categories
    assert ledger.prepare_accrual(member, order, catalogue=False).order == order
    assert ledger.check_invariants(member) == []


@pytest.mark.parametrize("amounts", [["50.00"], ["400.00", "700.00"], ["100.00", "900.00", "2500.00"]])
def test_the_summary_after_an_accrual_is_the_summary_read_after_it(
    ledger: Ledger, clock: FakeClock, amounts: list[str]
) -> None:
    # Given a member with orders (the later ones reaching silver, then gold)
    member = enrolled(ledger)
    for number, amount in enumerate(amounts):
        # When each order is accrued, and then delivered again
        order = simple_order(f"10{number}", clock.now, [("1", 1, amount)])
        accrual = ledger.accrue_prepared(ledger.prepare_accrual(member, order))
        # Then the summary that comes with it is the one a read after it gives, the duplicate's too
        assert accrual.summary == ledger.summary(member, expiry=False)
        again = ledger.accrue_prepared(ledger.prepare_accrual(member, order))
        assert again.result.duplicate and again.summary == accrual.summary
        clock.advance(hours=1)
    assert ledger.summary(member).tier == {1: "bronze", 2: "silver", 3: "gold"}[len(amounts)]


def test_the_summary_after_an_accrual_counts_the_refund_that_came_before_it(ledger: Ledger, clock: FakeClock) -> None:
    # Given a refund of one of two units that arrived before its order
    member = enrolled(ledger)
    assert isinstance(ledger.reverse("shopify:demo", "1001", "r1", {"1": 1}), ParkedRefund)
    # When the order is accrued
    accrual = ledger.accrue_prepared(ledger.prepare_accrual(member, simple_order("1001", clock.now, [("1", 2, "50")])))
    # Then the summary has the refund applied too
    assert accrual.summary == ledger.summary(member, expiry=False)
    assert accrual.summary.pending == 50


def test_an_accrual_brings_the_review_forward_in_its_write_and_never_puts_it_back(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    # Given a member whose next review is in a month
    member = enrolled(ledger)
    fakes.memory.reviews[member] = date(2026, 4, 2)
    # When an order is accrued with its review brought forward to 3 March
    order = simple_order("1001", clock.now)
    ledger.accrue_prepared(ledger.prepare_accrual(member, order), review_on=date(2026, 3, 3))
    # Then the review is on 3 March
    assert fakes.memory.reviews[member] == date(2026, 3, 3)
    # And another order asking for a later day, and a redelivery asking for an earlier one, leave it there
    ledger.accrue_prepared(ledger.prepare_accrual(member, simple_order("1002", clock.now)), date(2026, 3, 9))
    assert ledger.accrue_prepared(ledger.prepare_accrual(member, order), date(2026, 3, 2)).result.duplicate
    assert fakes.memory.reviews[member] == date(2026, 3, 3)
    assert ledger.check_invariants(member) == []


def test_an_accrual_whose_review_moved_before_its_write_reads_again_and_leaves_the_review(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    # Given an accrual prepared while the member's review was a month away
    member = enrolled(ledger)
    fakes.memory.reviews[member] = date(2026, 4, 2)
    prepared = ledger.prepare_accrual(member, simple_order("1001", clock.now))
    # When another writer brings the review forward to 3 March before the accrual writes
    fakes.reviews.schedule(member, date(2026, 3, 3))
    accrual = ledger.accrue_prepared(prepared, review_on=date(2026, 3, 4))
    # Then the accrual is written once, and the earlier review stands
    assert not accrual.result.duplicate and ledger.summary(member).pending == 100
    assert fakes.memory.reviews[member] == date(2026, 3, 3)
    assert ledger.check_invariants(member) == []


def test_a_reversal_brings_the_review_forward_in_its_write_and_never_puts_it_back(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    # Given an accrued order of two units, and the member's next review in a month
    member = enrolled(ledger)
    ledger.accrue(member, simple_order("1001", clock.now, [("1", 2, "50.00")]))
    fakes.memory.reviews[member] = date(2026, 4, 2)
    # When a refund of one unit is reversed with the review brought forward to 3 March
    first = ledger.reverse("shopify:demo", "1001", "r1", {"1": 1}, review_on=date(2026, 3, 3))
    # Then the reversal and the review are written
    assert isinstance(first, LedgerResult) and not first.duplicate and first.entry.lifetime == -50
    assert fakes.memory.reviews[member] == date(2026, 3, 3)
    # And a refund asking for a later day, and a redelivery asking for an earlier one, leave the review there
    assert not ledger.reverse("shopify:demo", "1001", "r2", {"1": 1}, review_on=date(2026, 3, 9)).duplicate  # type: ignore[union-attr]
    again = ledger.reverse("shopify:demo", "1001", "r1", {"1": 1}, review_on=date(2026, 3, 2))
    assert isinstance(again, LedgerResult) and again.duplicate
    assert fakes.memory.reviews[member] == date(2026, 3, 3)
    assert ledger.summary(member).pending == 0 and ledger.check_invariants(member) == []


def test_an_accrual_prepared_before_a_concurrent_write_decides_again_and_its_summary_is_still_right(
    ledger: Ledger, clock: FakeClock
) -> None:
    # Given two deliveries of one order prepared at once, and another order of the member prepared with them
    member = enrolled(ledger)
    order, other = simple_order("1001", clock.now), simple_order("1002", clock.now, [("1", 1, "40.00")])
    first, second, third = (ledger.prepare_accrual(member, o) for o in (order, order, other))
    # When the first is accrued, then the second (its state read before the first wrote), then the other order
    accrued = ledger.accrue_prepared(first)
    redelivered = ledger.accrue_prepared(second)
    assert ledger.summary(member, expiry=False) == accrued.summary == redelivered.summary
    later = ledger.accrue_prepared(third)
    # Then the second finds the first's entry (a duplicate), the other order decides again on what the first
    # wrote, and each summary is what a read after it gives
    assert redelivered.result.duplicate and redelivered.result.entry == accrued.result.entry
    assert not later.result.duplicate and later.summary == ledger.summary(member, expiry=False)
    assert later.summary.pending == 140 and ledger.check_invariants(member) == []
