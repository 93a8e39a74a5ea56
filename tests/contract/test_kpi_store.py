"""The monthly figures' store: counters per month and group, each entry's contribution added once, atomically."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from loyalty.fakes.kpis import InMemoryKpiStore
from loyalty.kpis.flows import COUNTERS
from loyalty.ports.kpis import KpiStore


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


def test_the_table_keeps_a_counter_for_each_figure() -> None:
    from loyalty.adapters.dynamodb.kpis import KPI_ATTRIBUTES

    assert set(COUNTERS) == KPI_ATTRIBUTES


def test_a_counter_taken_back_to_nothing_reads_as_zero(store: KpiStore) -> None:
    assert store.add("nps#m1#s#t1", "2026-03", ("programme",), {"nps_answers": 1, "nps_promoters": 1})
    assert store.add("nps-replaced#m1#s#t1", "2026-03", ("programme",), {"nps_answers": -1, "nps_promoters": -1})
    assert store.month("2026-03") == {"programme": {"nps_answers": 0, "nps_promoters": 0}}


def test_a_members_first_purchase_is_noted_once_for_good(store: KpiStore) -> None:
    assert store.first_purchase("m1", "2026-03") == "2026-03"
    assert store.first_purchase("m1", "2026-05") == "2026-03"
    assert store.first_purchase("m1", "2026-02") == "2026-03"  # noted is noted (the stream brings them in order)
    assert store.first_purchase("m2", "2026-05") == "2026-05"
