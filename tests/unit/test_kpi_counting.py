"""The monthly figures as the ledger is written, on the ports' fakes: what each kind of entry adds, for the
programme and for the member's tier and segment, in the programme's local month, each entry once."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from loyalty.fakes import Fakes
from loyalty.kpis.counting import KpiCounting
from loyalty.kpis.flows import contribution, is_counter, net_promoter_score, recount
from loyalty.ledger.model import EntryKind
from loyalty.ledger.service import Ledger
from loyalty.ports.surveys import NpsAnswer
from tests.conftest import FakeClock
from tests.orders import simple_order


def test_each_kind_of_entry_adds_its_points_to_its_counter(ledger: Ledger, clock: FakeClock) -> None:
    clock.now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    ledger.enrol("m1")
    ledger.bonus("m1", "signup", "m1")
    ledger.accrue("m1", simple_order("o1", clock.now))
    ledger.adjust("m1", -3, actor="salesforce-user:005", reason="typo", adjustment_id="a1")
    flows = {entry.kind: contribution(entry) for entry in ledger.entries("m1")}
    accrual = next(e for e in ledger.entries("m1") if e.kind is EntryKind.ACCRUAL)
    assert flows[EntryKind.ACCRUAL] == {
        "orders": 1, "order_base_points": accrual.base_points, "points_issued": accrual.pending,
        "points_held": accrual.pending, "orders#EUR": 1, "order_value#EUR": Decimal("100.00"),
    }  # fmt: skip
    assert flows[EntryKind.BONUS] == {"points_issued": 100, "points_held": 100}
    assert flows[EntryKind.ADJUSTMENT] == {"points_adjusted": -3, "points_held": -3}
    assert all(is_counter(name) for counts in flows.values() for name in counts)


def test_a_redemption_counts_as_redeemed_and_points_given_back_as_returned(ledger: Ledger, clock: FakeClock) -> None:
    clock.now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    ledger.enrol("m1")
    ledger.bonus("m1", "signup", "m1")
    spent = ledger.redeem("m1", 40, "r1", "voucher").entry
    back = spent.model_copy(update={"points": 40, "source_key": "redemption-return#r1"})
    assert contribution(spent) == {"points_redeemed": 40, "points_held": -40}
    assert contribution(back) == {"points_returned": 40, "points_held": 40}


def test_a_members_month_counts_for_the_programme_their_tier_and_segment_once(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    counting = KpiCounting(ledger, fakes.kpis)
    # Given two members' months: enrolment bonuses, orders, a redemption, written in March (Stockholm time)
    clock.now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    for member in ("m1", "m2"):
        ledger.enrol(member)
        ledger.bonus(member, "signup", member)
    ledger.accrue("m1", simple_order("o1", clock.now))
    ledger.accrue("m1", simple_order("o3", clock.now))  # a second order of the month: one more order, not buyer
    ledger.accrue("m2", simple_order("o2", clock.now))
    ledger.redeem("m1", 40, "r1", "voucher")
    clock.now = datetime(2026, 3, 31, 22, 30, tzinfo=UTC)  # already 1 April in Stockholm
    ledger.bonus("m2", "birthday", "2026")
    # When the stream brings every entry, and brings them again
    written = ledger.entries("m1") + ledger.entries("m2")
    assert counting.count(written) == [e for e in written if contribution(e)]
    assert counting.count(written) == []
    # Then March has both members' orders and points, for the programme and for their tier and segment
    march, april = fakes.kpis.month("2026-03"), fakes.kpis.month("2026-04")
    orders = [e for e in written if e.kind is EntryKind.ACCRUAL]
    issued = sum(e.pending + e.points for e in orders) + 200
    assert march["programme"] == {
        "orders": 3,
        "purchasers": 2,  # their first: neither returning
        "order_base_points": sum(e.base_points or 0 for e in orders),
        "points_issued": issued,
        "points_redeemed": 40,
        "points_held": issued - 40,
        "orders#EUR": 3,
        "order_value#EUR": Decimal("300.00"),
        "active_change": 2,  # both members active from March (their orders)
    }
    tier = ledger.summary("m1").earned_tier
    groups = (f"tier#{tier}", "segment#none")
    assert all(march[group] == march["programme"] for group in groups)
    # And the bonus written after midnight in Stockholm counts in April
    assert april == {group: {"points_issued": 200, "points_held": 200} for group in ("programme", *groups)}
    # And a recount from the ledger gives the programme's figures of each month
    assert recount(ledger.rules, written) == {
        "2026-03": march["programme"],
        "2026-04": april["programme"],
        "2027-03": {"active_change": -2},  # they lapse 12 months on, unless active again
    }
    assert fakes.kpis.month("2027-03") == {group: {"active_change": -2} for group in ("programme", *groups)}


def test_a_refund_of_a_released_and_spent_order_takes_back_all_it_earned(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    # Given an order released and its points mostly spent, then refunded in full
    clock.now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    ledger.enrol("m1")
    earned = ledger.accrue("m1", simple_order("o1", clock.now)).entry.pending
    clock.now = datetime(2026, 4, 10, 9, tzinfo=UTC)
    ledger.release("shopify:demo", "o1", "m1")
    ledger.redeem("m1", earned - 10, "r1", "voucher")
    ledger.reverse("shopify:demo", "o1", "rf1", {"1": 1})
    # When every entry is counted
    KpiCounting(ledger, fakes.kpis).count(ledger.entries("m1"))
    # Then what the refund took back is all the order earned (the spent part too): issued less reversed is what
    # the member has earned for good
    march, april = fakes.kpis.month("2026-03")["programme"], fakes.kpis.month("2026-04")["programme"]
    assert march["points_issued"] == earned and april["points_reversed"] == earned
    assert march["points_issued"] - april["points_reversed"] == ledger.summary("m1").lifetime == 0


def answer(member: str, score: int, at: datetime, tier: str = "silver") -> NpsAnswer:
    return NpsAnswer(member, "survey-1", score, at, at.strftime("%Y-%m"), "satisfaction_driven", tier)


def test_nps_answers_count_in_their_month_and_a_later_answer_replaces_the_earlier(fakes: Fakes, ledger: Ledger) -> None:
    counting = KpiCounting(ledger, fakes.kpis)
    march, april = datetime(2026, 3, 20, 9, tzinfo=UTC), datetime(2026, 4, 2, 9, tzinfo=UTC)
    first = answer("m1", 10, march)
    # When two members answer in March (one answer delivered twice), and one of them answers again in April
    assert counting.count_answers([(first, None), (answer("m2", 3, march, tier="gold"), None), (first, None)]) == 2
    again = answer("m1", 8, april)
    assert counting.count_answers([(again, first), (again, first)]) == 1
    # Then March keeps the detractor only (the promoter taken off), April has the passive; each by tier and
    # segment as kept with them
    assert fakes.kpis.month("2026-03")["programme"] == {"nps_answers": 1, "nps_promoters": 0, "nps_detractors": 1}
    assert fakes.kpis.month("2026-03")["tier#silver"] == {"nps_answers": 0, "nps_promoters": 0}
    assert fakes.kpis.month("2026-04")["tier#silver"] == {"nps_answers": 1, "nps_passives": 1}
    assert fakes.kpis.month("2026-04")["segment#satisfaction_driven"] == {"nps_answers": 1, "nps_passives": 1}
    assert net_promoter_score(fakes.kpis.month("2026-03")["programme"]) == -100.0
    assert net_promoter_score({"nps_answers": 4, "nps_promoters": 2, "nps_detractors": 1}) == 25.0
    assert net_promoter_score({}) is None


def test_a_buyer_who_bought_in_an_earlier_month_is_returning(fakes: Fakes, ledger: Ledger, clock: FakeClock) -> None:
    counting = KpiCounting(ledger, fakes.kpis)
    # Given a member who buys in March and twice in May, and one who first buys in May
    clock.now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    for member in ("m1", "m2"):
        ledger.enrol(member)
    ledger.accrue("m1", simple_order("o1", clock.now))
    clock.now = datetime(2026, 5, 4, 9, tzinfo=UTC)
    ledger.accrue("m1", simple_order("o2", clock.now))
    ledger.accrue("m1", simple_order("o3", clock.now))
    ledger.accrue("m2", simple_order("o4", clock.now))
    # When the entries are counted (the May ones delivered twice)
    written = ledger.entries("m1") + ledger.entries("m2")
    counting.count(written)
    counting.count([e for e in written if e.created_at.month == 5])
    # Then May has two buyers, one of them returning; March's one buyer was new
    may, march = fakes.kpis.month("2026-05")["programme"], fakes.kpis.month("2026-03")["programme"]
    assert (may["purchasers"], may["returning_purchasers"], may["orders"]) == (2, 1, 3)
    assert march["purchasers"] == 1 and march.get("returning_purchasers", 0) == 0
    assert recount(ledger.rules, written)["2026-05"] == may


def test_members_who_joined_count_once_in_their_local_month(fakes: Fakes, ledger: Ledger) -> None:
    counting = KpiCounting(ledger, fakes.kpis)
    joined = [("m1", datetime(2026, 3, 31, 22, 30, tzinfo=UTC)), ("m2", datetime(2026, 3, 2, 9, tzinfo=UTC))]
    assert counting.count_enrolments(joined + joined) == 2
    assert fakes.kpis.month("2026-03") == {"programme": {"members_enrolled": 1}}  # m1: 1 April in Stockholm
    assert fakes.kpis.month("2026-04") == {"programme": {"members_enrolled": 1}}
    assert recount(ledger.rules, [], [at for _, at in joined]) == {
        "2026-03": {"members_enrolled": 1},
        "2026-04": {"members_enrolled": 1},
    }
