"""The monthly figures' store: counters per month and group, each entry's contribution added once, atomically."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from loyalty.fakes.kpis import InMemoryKpiStore
from loyalty.ports.kpis import Exposure, KpiStore, MemberMonths, Noted


@pytest.fixture(params=["memory", pytest.param("dynamodb", marks=pytest.mark.dynamodb_local)])
def store(request: pytest.FixtureRequest) -> KpiStore:
    if request.param == "memory":
        return InMemoryKpiStore()
    request.getfixturevalue("local_table")
    from loyalty.adapters.dynamodb.kpis import DynamoDBKpiStore

    return DynamoDBKpiStore()


def test_an_entrys_counts_are_added_once_to_each_of_its_groups(store: KpiStore) -> None:
    groups = ("programme", "tier#silver", "segment#new")
    assert store.add("m1#accrual#o1", "2026-11", groups, {"orders": 1, "points_issued": 120})
    assert not store.add("m1#accrual#o1", "2026-11", groups, {"orders": 1, "points_issued": 120})  # again
    assert store.add("m2#accrual#o2", "2026-11", ("programme", "tier#gold", "segment#new"), {"orders": 1})
    assert store.add("m1#redemption#r1", "2026-12", groups, {"points_redeemed": 50})
    assert store.month("2026-11") == {
        "programme": {"orders": 2, "points_issued": 120},
        "tier#silver": {"orders": 1, "points_issued": 120},
        "tier#gold": {"orders": 1},
        "segment#new": {"orders": 2, "points_issued": 120},
    }
    assert store.month("2026-12") == {group: {"points_redeemed": 50} for group in groups}
    assert store.month("2027-01") == {}


def test_entries_counted_at_once_lose_nothing_and_count_nothing_twice(store: KpiStore) -> None:
    keys = [f"m{n % 7}#bonus#{n}" for n in range(40)] * 2  # every entry delivered twice
    with ThreadPoolExecutor(max_workers=8) as pool:
        added = list(pool.map(lambda key: store.add(key, "2026-11", ("programme",), {"points_issued": 10}), keys))
    assert sum(added) == 40
    assert store.month("2026-11") == {"programme": {"points_issued": 400}}


def test_money_adds_up_exactly_per_currency(store: KpiStore) -> None:
    for n, value in enumerate(["0.10", "0.20", "1999.99", "-0.30"]):
        store.add(f"e{n}", "2026-11", ("programme",), {"order_value#SEK": Decimal(value), "orders#SEK": 1})
    store.add("e9", "2026-11", ("programme",), {"order_value#EUR": Decimal("12.5")})
    figures = store.month("2026-11")["programme"]
    assert figures == {"order_value#SEK": Decimal("1999.99"), "orders#SEK": 4, "order_value#EUR": Decimal("12.5")}
    assert isinstance(figures["orders#SEK"], int)


def test_a_members_note_moves_only_from_the_note_read_with_its_counts(store: KpiStore) -> None:
    # Given a member with nothing noted, whose first order in January 2026 is counted
    empty = MemberMonths()
    assert store.member_months(["m1", "m2"]) == {"m1": empty, "m2": empty}
    january = MemberMonths("2026-01", "2026-01", "2026-01", "tier#bronze", "segment#none", 120, "2026-01")
    groups = ("programme", "tier#bronze")
    order = {("2026-01", g): {"purchasers": 1, "points_held": 120, "active_change": 1} for g in groups}
    lapse = {("2027-01", g): {"active_change": -1} for g in groups}
    assert store.note_member("m1", empty, january, order | lapse, ("2026-01", "m1#accrual#o1")) is Noted.WRITTEN
    assert store.member_months(["m1"]) == {"m1": january}
    # Then the same counted again changes nothing, nor does a note from what is no longer there
    again = store.note_member("m1", january, january, order, ("2026-01", "m1#accrual#o1"))
    assert again is Noted.COUNTED_BEFORE
    assert store.note_member("m1", empty, january, order, ("2026-01", "m1#accrual#o2")) is Noted.CHANGED
    stale = replace(january, held=100)
    assert store.note_member("m1", stale, january, order, None) is Noted.CHANGED
    # And counts that leave the note as it is are written while it stays as read, and with no marker too
    assert store.note_member("m1", january, january, {("2026-02", "programme"): {"orders": 1}}, None) is Noted.WRITTEN
    # And a move from what was read does: the points and the active spell carried to another group
    june = replace(january, tier="tier#silver", latest="2026-06")
    carried = {
        ("2026-06", "tier#bronze"): {"points_held": -120, "active_change": -1, "members_change": -1},
        ("2026-06", "tier#silver"): {"points_held": 120, "active_change": 1, "members_change": 1},
        ("2027-01", "tier#bronze"): {"active_change": 1},
        ("2027-01", "tier#silver"): {"active_change": -1},
    }
    assert store.note_member("m1", january, june, carried, ("2026-06", "move#m1#t1")) is Noted.WRITTEN
    assert store.member_months(["m1", "m2"]) == {"m1": june, "m2": empty}
    assert store.month("2026-01") == {g: {"purchasers": 1, "points_held": 120, "active_change": 1} for g in groups}
    assert store.month("2026-02") == {"programme": {"orders": 1}}
    june_counts = {group: dict(counts) for (month, group), counts in carried.items() if month == "2026-06"}
    assert store.month("2026-06") == june_counts
    assert store.month("2027-01") == {
        "programme": {"active_change": -1},
        "tier#bronze": {"active_change": 0},
        "tier#silver": {"active_change": -1},
    }


def test_a_months_close_is_kept_beside_its_counters_and_replaced_when_closed_again(store: KpiStore) -> None:
    store.add("e1", "2026-11", ("programme",), {"points_held": 10})
    store.close("2026-11", {"members": 3, "active_members": 2, "points_outstanding": 10})
    store.close("2026-11", {"members": 3, "active_members": 2, "points_outstanding": 12})
    assert store.month("2026-11") == {
        "programme": {"points_held": 10},
        "close": {"members": 3, "active_members": 2, "points_outstanding": 12},
    }


def test_a_counter_taken_back_to_nothing_reads_as_zero(store: KpiStore) -> None:
    assert store.add("nps#m1#s#t1", "2026-03", ("programme",), {"nps_answers": 1, "nps_promoters": 1})
    assert store.add("nps-replaced#m1#s#t1", "2026-03", ("programme",), {"nps_answers": -1, "nps_promoters": -1})
    assert store.month("2026-03") == {"programme": {"nps_answers": 0, "nps_promoters": 0}}


def test_an_exposure_is_kept_once_and_its_orders_counted_from_what_was_read(store: KpiStore) -> None:
    at = datetime(2026, 3, 2, 9, tzinfo=UTC)
    exposure = Exposure("win_back#2026-03-02", "win_back", "offered", at, at + timedelta(days=14), "2026-03")
    assert store.expose("m1", exposure)
    assert not store.expose("m1", exposure)  # the stream brings the decision again
    assert store.exposures("m1") == [exposure] and store.exposures("m2") == []
    # An order in its window: counted from the exposure as read, once
    assert store.convert("m1", exposure, "shop#o1", Decimal("120.50"))
    assert not store.convert("m1", exposure, "shop#o2", Decimal("10"))  # no longer as read
    (read,) = store.exposures("m1")
    assert (read.orders, read.revenue, read.counted) == (1, Decimal("120.50"), frozenset({"shop#o1"}))
    assert not store.convert("m1", read, "shop#o1", Decimal("120.50"))  # that order again
    assert store.convert("m1", read, "shop#o2", Decimal("9.50"))
    assert store.month("2026-03")["programme"] == {
        "offer_members#win_back#offered": 1,
        "offer_converted#win_back#offered": 1,
        "offer_revenue#win_back#offered": Decimal("130.00"),
        "offer_revenue_sq#win_back#offered": Decimal("16900.0000"),  # 130.00 squared
    }
