"""The monthly figures people read, on the ports' fakes: order value per currency net of refunds, members active
in the last 12 months, the months' closing figures (members, active, points outstanding) and what GET /kpis
derives from them (returning share, average order value, liability, customer value)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from loyalty.errors import MalformedPayloadError
from loyalty.fakes import Fakes
from loyalty.kpis.closing import KpiClosing, months
from loyalty.kpis.counting import KpiCounting
from loyalty.kpis.figures import KpiFigures
from loyalty.kpis.flows import active_moves, recount, shift_month
from loyalty.ledger.decisions import value_kept
from loyalty.ledger.service import Ledger
from loyalty.programme.rewards import load_rewards
from tests.conftest import FakeClock
from tests.orders import simple_order


def at(month: str, day: int = 10) -> datetime:
    return datetime(int(month[:4]), int(month[5:]), day, 9, tzinfo=UTC)


def test_a_lines_refunds_add_up_to_its_value_to_the_hundredth() -> None:
    value, kept = Decimal("100.00"), []
    for left in (2, 1, 0):  # three units refunded one at a time
        kept.append(value_kept(value, 3, left))
    assert kept == [Decimal("66.67"), Decimal("33.33"), Decimal("0")]
    refunds = [Decimal("100.00") - kept[0], kept[0] - kept[1], kept[1] - kept[2]]
    assert refunds == [Decimal("33.33"), Decimal("33.34"), Decimal("33.33")] and sum(refunds) == value


def test_order_value_is_counted_per_currency_ex_vat_and_net_of_refunds(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    # Given a SEK order of 3 x 99.90 and 1 x 250.00 in March, and a EUR order of 40.00
    clock.now = at("2026-03")
    ledger.enrol("m1")
    lines = [("1", 3, "99.90"), ("2", 1, "250.00")]
    ledger.accrue("m1", simple_order("o1", clock.now, lines, currency="SEK"))
    ledger.accrue("m1", simple_order("o2", clock.now, [("1", 1, "40.00")], currency="EUR"))
    # And in April one unit of the first line refunded, then the rest of the order
    clock.now = at("2026-04")
    ledger.reverse("shopify:demo", "o1", "rf1", {"1": 1})
    ledger.reverse("shopify:demo", "o1", "rf2", None)
    # When the stream counts every entry
    written = ledger.entries("m1")
    KpiCounting(ledger, fakes.kpis).count(written)
    march, april = fakes.kpis.month("2026-03")["programme"], fakes.kpis.month("2026-04")["programme"]
    # Then March has each currency's orders and value, exactly; April takes the refunds off, to the last cent
    assert (march["orders#SEK"], march["order_value#SEK"]) == (1, Decimal("549.70"))
    assert (march["orders#EUR"], march["order_value#EUR"]) == (1, Decimal("40.00"))
    assert april["order_value#SEK"] == Decimal("-549.70") and "orders#SEK" not in april
    assert recount(ledger.rules, written)["2026-04"] == april


def test_a_member_is_active_for_twelve_months_after_an_order_or_a_redemption(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    counting = KpiCounting(ledger, fakes.kpis)
    # Given a member who orders in January 2026 and June 2026, then not until August 2027 (lapsed in June 2027)
    clock.now = at("2026-01")
    ledger.enrol("m1")
    ledger.bonus("m1", "signup", "m1")  # a bonus alone is no activity
    for month, order in (("2026-01", "o1"), ("2026-06", "o2"), ("2027-08", "o3")):
        clock.now = at(month)
        ledger.accrue("m1", simple_order(order, clock.now))
    # And one who only redeems points, in March 2026
    ledger.enrol("m2")
    ledger.bonus("m2", "signup", "m2")
    clock.now = at("2026-03")
    ledger.redeem("m2", 40, "r1", "voucher")
    # When the stream counts them (each delivered twice)
    written = ledger.entries("m1") + ledger.entries("m2")
    counting.count(written)
    counting.count(written)
    # Then the active members at each month's end follow the last 12 months' activity
    active = {m.month: m.closing["active_members"] for m in months(fakes.kpis, "2025-12", "2028-09")}
    assert active["2025-12"] == 0 and active["2026-01"] == 1
    assert active["2026-03"] == active["2026-06"] == active["2027-02"] == 2  # m2 from March for 12 months
    assert active["2027-03"] == 1  # m2 lapsed
    assert active["2027-05"] == 1 and active["2027-06"] == 0  # m1: 12 months after June 2026
    assert active["2027-08"] == active["2028-07"] == 1 and active["2028-08"] == 0
    # And a recount from the ledger moves the same months
    recounted = recount(ledger.rules, written)
    stored = {month: fakes.kpis.month(month).get("programme", {}) for month in recounted}
    assert recounted == stored


@pytest.mark.parametrize(
    ("previous", "month", "moves"),
    [
        (None, "2026-01", {"2026-01": 1, "2027-01": -1}),
        ("2026-01", "2026-06", {"2027-01": 1, "2027-06": -1}),  # still active: the lapse moves on
        ("2026-01", "2027-01", {"2027-01": 1, "2028-01": -1}),  # lapsed that month: active again
        ("2026-01", "2027-05", {"2027-05": 1, "2028-05": -1}),
    ],
)
def test_active_moves(previous: str | None, month: str, moves: dict[str, int]) -> None:
    assert active_moves(previous, month) == moves
    assert shift_month("2026-11", 3) == "2027-02" and shift_month("2026-01", -1) == "2025-12"


def test_a_closed_month_keeps_its_closing_figures_and_the_next_opens_with_them(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    counting, closing = KpiCounting(ledger, fakes.kpis), KpiClosing(fakes.kpis)
    # Given two members who joined in March with a bonus each, one of whom ordered in April
    clock.now = at("2026-03")
    for member in ("m1", "m2"):
        ledger.enrol(member)
        counting.count_enrolments([(member, clock.now)])
        ledger.bonus(member, "signup", member)
    clock.now = at("2026-04")
    earned = ledger.accrue("m1", simple_order("o1", clock.now)).entry.pending
    counting.count(ledger.entries("m1") + ledger.entries("m2"))
    # When April is closed (March, never closed, computed on the way)
    lowest = f"tier#{ledger.rules.tiers[0].name}"
    stocks = {"active_members": 1, "points_outstanding": 200 + earned}
    expected = {
        "members": 2,
        **stocks,
        **{f"{name}#{g}": n for name, n in stocks.items() for g in (lowest, "segment#none")},
    }
    assert closing.close("2026-04") == expected  # the programme's, and the lowest tier's and no segment's
    # Then April's closing figures are kept, and May opens with them
    assert fakes.kpis.month("2026-04")["close"] == expected
    may = next(months(fakes.kpis, "2026-05", "2026-05"))
    assert may.opening == may.closing == fakes.kpis.month("2026-04")["close"] and not may.closed
    # And a closed month's figures stand as closed (the next day's close brings late entries in)
    ledger.adjust("m2", 5, actor="salesforce-user:005", reason="goodwill", adjustment_id="a1")  # in April
    counting.count(ledger.entries("m2"))
    assert next(months(fakes.kpis, "2026-05", "2026-05")).opening["points_outstanding"] == 200 + earned
    assert closing.close("2026-04")["points_outstanding"] == 205 + earned


def test_the_figures_answer_returning_share_order_value_liability_and_customer_value(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    counting = KpiCounting(ledger, fakes.kpis)
    catalogue = load_rewards(ledger.rules)
    # Given four members who joined in January; m1 and m2 buy then; in February m1 buys again and m3 first
    clock.now = at("2026-01")
    for member in ("m1", "m2", "m3", "m4"):
        ledger.enrol(member)
        counting.count_enrolments([(member, clock.now)])
    ledger.accrue("m1", simple_order("o1", clock.now, [("1", 1, "300.00")], currency="SEK"))
    ledger.accrue("m2", simple_order("o2", clock.now, [("1", 1, "100.00")], currency="SEK"))
    clock.now = at("2026-02")
    ledger.accrue("m1", simple_order("o3", clock.now, [("1", 2, "150.00")], currency="SEK"))
    ledger.accrue("m3", simple_order("o4", clock.now, [("1", 1, "101.00")], currency="SEK"))
    counting.count([entry for member in ("m1", "m2", "m3") for entry in ledger.entries(member)])
    # When GET /kpis asks for January to February by tier
    answer = KpiFigures(fakes.kpis, catalogue).months("2026-01", "2026-02", by="tier")
    programme = [row for row in answer["months"] if row["group"] == "programme"]
    january, february = programme
    # Then February: two buyers, one returning; average order value per currency; three of four members active
    assert (february["purchasers"], february["returningShare"], february["orders"]) == (2, 0.5, 2)
    assert february["averageOrderValue"] == {"SEK": "200.50"} and january["averageOrderValue"] == {"SEK": "200.00"}
    assert (february["members"], february["activeMembers"], february["activeShare"]) == (4, 3, 0.75)
    assert january["newMembers"] == 4 and february["newMembers"] == 0
    # And the liability is the points outstanding at a point's value in the reporting currency
    outstanding = sum(ledger.summary(m).pending + ledger.summary(m).available for m in ("m1", "m2", "m3"))
    assert february["pointsOutstanding"] == outstanding and february["pointsOpening"] == january["pointsOutstanding"]
    point_value = catalogue.point_value_in(catalogue.reporting)
    assert february["liability"] == {"amount": f"{outstanding * point_value:.2f}", "currency": catalogue.reporting}
    # And the 12-month customer value per member: the year's order value over the members
    assert february["customerValue12Months"] == {"SEK": "200.25"}  # 801.00 / 4
    assert february["customerValueProjected12Months"] == {"SEK": "801.00"}  # the quarter's 801.00 x 4 / 4
    # And each tier has its rows
    tiers = [row for row in answer["months"] if row["group"].startswith("tier#")]
    assert sum(row["orders"] for row in tiers) == january["orders"] + february["orders"]


@pytest.mark.parametrize(
    ("first", "last", "problem"),
    [("2026-13", "2027-01", "no month"), ("2026-5", "2026-06", "YYYY-MM"), ("2026-06", "2026-05", "before"),
     ("2020-01", "2026-01", "at most")],
)  # fmt: skip
def test_a_range_it_cannot_answer_is_refused_saying_why(
    fakes: Fakes, ledger: Ledger, first: str, last: str, problem: str
) -> None:
    figures = KpiFigures(fakes.kpis, load_rewards(ledger.rules))
    with pytest.raises(MalformedPayloadError, match=problem):
        figures.months(first, last)


def test_the_business_metrics_sum_a_batch_and_the_dashboard_shows_only_metrics_the_functions_emit(
    ledger: Ledger, clock: FakeClock
) -> None:
    import json
    import re

    from functions.kpis_close.app import month_metrics
    from infra.local.template import load_template
    from loyalty.kpis.flows import BUSINESS_METRICS, business_figures

    # Given a batch: two orders and a redemption
    clock.now = at("2026-03")
    ledger.enrol("m1")
    ledger.bonus("m1", "signup", "m1")
    first = ledger.accrue("m1", simple_order("o1", clock.now)).entry
    second = ledger.accrue("m1", simple_order("o2", clock.now)).entry
    spent = ledger.redeem("m1", 40, "r1", "voucher").entry
    # Then the batch's metrics are its orders and points
    assert business_figures([first, second, spent]) == {
        "Orders": 2, "PointsIssued": first.pending + second.pending, "PointsRedeemed": 40, "PointsExpired": 0,
        "PointsReversed": 0,
    }  # fmt: skip
    # And the dashboard's widgets name only metrics the KPI functions emit
    row = {"members": 4, "activeMembers": 3, "pointsOutstanding": 900, "liability": {"amount": "90.00"},
           "activeShare": 0.75, "returningShare": 0.5, "averageOrderValue": {"SEK": "200.50"}, "nps": 12.5}  # fmt: skip
    emitted = set(BUSINESS_METRICS.values()) | set(month_metrics(row, "SEK"))
    assert month_metrics(row, "SEK")["AverageOrderValue"] == 200.5
    assert "ReturningSharePercent" not in month_metrics({**row, "returningShare": None}, "SEK")  # nothing to share
    body = load_template()["Resources"]["BusinessDashboard"]["Properties"]["DashboardBody"]
    text = body if isinstance(body, str) else next(iter(body.values()))
    widgets = json.loads(re.sub(r"\$\{[^}]+\}", "x", text))["widgets"]
    shown = {metric[1] for widget in widgets for metric in widget["properties"]["metrics"] if metric[1] != "."}
    assert shown <= emitted and len(shown) >= 10


def test_members_move_between_tiers_and_segments_and_each_months_mix_follows(fakes: Fakes, ledger: Ledger) -> None:
    from loyalty.ports.kpis import MemberMove

    counting = KpiCounting(ledger, fakes.kpis)
    lowest = ledger.rules.tiers[0].name
    higher = ledger.rules.tiers[1].name
    # Given three members who joined in January (lowest tier, no segment yet)
    joined = [MemberMove(m, "joined", at("2026-01"), True, None, None, None, None) for m in ("m1", "m2", "m3")]
    # And in February all were reviewed as new, and m1 reached the next tier; in March m1 fell back, m2 at risk
    moves = [
        *(MemberMove(m, "segment#feb", at("2026-02"), False, None, None, None, "new") for m in ("m1", "m2", "m3")),
        MemberMove("m1", "tier#feb", at("2026-02", 20), False, None, higher, "new", "new"),
        MemberMove("m1", "tier#mar", at("2026-03"), False, higher, lowest, "new", "new"),
        MemberMove("m2", "segment#mar", at("2026-03"), False, None, None, "new", "at_risk"),
    ]
    # When the stream brings them (each twice)
    assert counting.count_moves(joined + moves) == 3 + 6
    assert counting.count_moves(joined + moves) == 0
    # Then each month's end has the members of each tier and segment, and the programme's moves
    answer = KpiFigures(fakes.kpis, load_rewards(ledger.rules)).months("2026-01", "2026-03", by="segment")
    members = {(r["month"], r["group"]): r["members"] for r in answer["months"] if r["group"] != "programme"}
    assert members[("2026-01", "segment#none")] == 3
    joined_rows = [r for r in answer["months"] if r["month"] == "2026-01" and r["group"] == "segment#none"]
    assert joined_rows[0]["membersEnrolled"] == 3  # the new members, in the group they joined
    assert (members[("2026-02", "segment#none")], members[("2026-02", "segment#new")]) == (0, 3)
    assert (members[("2026-03", "segment#new")], members[("2026-03", "segment#at_risk")]) == (2, 1)
    programme = {r["month"]: r for r in answer["months"] if r["group"] == "programme"}
    assert (programme["2026-02"]["tierUpgrades"], programme["2026-03"]["tierDowngrades"]) == (1, 1)
    assert (programme["2026-02"]["segmentMoves"], programme["2026-03"]["segmentMoves"]) == (3, 1)
    by_tier = KpiFigures(fakes.kpis, load_rewards(ledger.rules)).months("2026-02", "2026-03", by="tier")
    tiers = {(r["month"], r["group"]): r["members"] for r in by_tier["months"] if r["group"] != "programme"}
    assert (tiers[("2026-02", f"tier#{lowest}")], tiers[("2026-02", f"tier#{higher}")]) == (2, 1)
    assert (tiers[("2026-03", f"tier#{lowest}")], tiers[("2026-03", f"tier#{higher}")]) == (3, 0)
    # And a closed month keeps them
    KpiClosing(fakes.kpis).close("2026-02")
    assert fakes.kpis.month("2026-02")["close"][f"members#tier#{higher}"] == 1


def test_non_members_orders_count_with_their_value_and_each_shopper_once_a_month(fakes: Fakes, ledger: Ledger) -> None:
    counting = KpiCounting(ledger, fakes.kpis)
    # Given two guest shoppers: one orders twice in March (one order delivered twice), one once
    first = simple_order("g1", at("2026-03"), [("1", 2, "100.00")], currency="SEK")
    second = simple_order("g2", at("2026-03", 20), [("1", 1, "50.00")], currency="SEK")
    third = simple_order("g3", at("2026-03", 21), [("1", 1, "30.00")], currency="EUR")
    orders = [("hash-a", first), ("hash-a", second), ("hash-a", second), ("hash-b", third)]
    # When the stream brings them
    assert counting.count_guest_orders(orders) == 3
    # Then March has three guest orders from two shoppers, with their value per currency
    march = fakes.kpis.month("2026-03")["programme"]
    assert (march["guest_orders"], march["guest_purchasers"]) == (3, 2)
    assert (march["guest_order_value#SEK"], march["guest_order_value#EUR"]) == (Decimal("250.00"), Decimal("30.00"))
    row = KpiFigures(fakes.kpis, load_rewards(ledger.rules)).months("2026-03", "2026-03")["months"][0]
    assert row["guestAverageOrderValue"] == {"EUR": "30.00", "SEK": "125.00"}
    assert (row["guestOrders"], row["guestPurchasers"], row["guestPurchaseFrequency"]) == (3, 2, 1.5)


def test_a_member_who_moves_takes_their_points_and_active_spell_to_the_new_tier_and_segment(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    from loyalty.ports.kpis import MemberMove

    counting = KpiCounting(ledger, fakes.kpis)
    lowest, higher = (f"tier#{tier.name}" for tier in ledger.rules.tiers[:2])
    # Given two members who joined in January with a bonus and an order each (m1's entries counted before its
    # joining: its groups then come from the member as they stand)
    clock.now = at("2026-01")
    for member in ("m1", "m2"):
        ledger.enrol(member)
        counting.count_enrolments([(member, clock.now)])
        ledger.bonus(member, "signup", member)
        ledger.accrue(member, simple_order(f"o-{member}", clock.now))
    joined = [MemberMove(m, "joined", at("2026-01"), True, None, None, None, None) for m in ("m1", "m2")]
    counting.count(ledger.entries("m1"))
    counting.count_moves(joined)
    counting.count(ledger.entries("m2"))
    # When in March m1 reaches the next tier and is reviewed as loyal (the stream brings the moves twice)
    upper = higher.removeprefix("tier#")
    moved = [
        MemberMove("m1", "tier#mar", at("2026-03"), False, None, upper, None, None),
        MemberMove("m1", "segment#mar", at("2026-03", 11), False, upper, upper, None, "loyal"),
    ]
    assert counting.count_moves(moved) == 2 and counting.count_moves(moved) == 0
    # And in April m1 redeems 40 points and orders again, counted in their new groups
    clock.now = at("2026-04")
    ledger.redeem("m1", 40, "r1", "voucher")
    ledger.accrue("m1", simple_order("o-m1-april", clock.now))
    assert len(counting.count(ledger.entries("m1"))) == 2
    # Then each group's members, active members and points outstanding follow the member
    held = {m: ledger.summary(m).available + ledger.summary(m).pending for m in ("m1", "m2")}
    january_held = {m: sum(e.points + e.pending for e in ledger.entries(m) if e.created_at < at("2026-02", 1))
                    for m in ("m1", "m2")}  # fmt: skip
    figures = KpiFigures(fakes.kpis, load_rewards(ledger.rules))
    answers = figures.answers("2026-01", "2027-04", ("tier", "segment"))
    rows = {(r["month"], r["group"]): r for by in ("tier", "segment") for r in answers[by]["months"]}
    stocks = ("members", "activeMembers", "pointsOutstanding")

    def stock(month: str, group: str) -> tuple[int, ...]:
        return tuple(rows[month, group][name] for name in stocks)

    both = sum(january_held.values())
    assert stock("2026-01", lowest) == stock("2026-01", "segment#none") == (2, 2, both)
    assert stock("2026-03", lowest) == stock("2026-03", "segment#none") == (1, 1, january_held["m2"])
    assert stock("2026-03", higher) == stock("2026-03", "segment#loyal") == (1, 1, january_held["m1"])
    assert stock("2026-04", higher) == stock("2026-04", "segment#loyal") == (1, 1, held["m1"])
    assert rows["2026-04", higher]["activeShare"] == 1.0
    point_value = load_rewards(ledger.rules).point_value_in(figures.catalogue.reporting)
    assert rows["2026-04", higher]["liability"]["amount"] == f"{held['m1'] * point_value:.2f}"
    # And m2 lapses 12 months after January in the lowest tier, m1 12 months after April in the next
    assert stock("2027-01", lowest)[:2] == (1, 0) and stock("2027-01", higher)[:2] == (1, 1)
    assert stock("2027-04", higher)[:2] == (1, 0)
    # And the groups add up to the programme's every month
    for month in ("2026-01", "2026-03", "2026-04", "2026-12", "2027-04"):
        programme = rows[month, "programme"]
        for by in ("tier", "segment"):
            mine = [r for (at_, group), r in rows.items() if at_ == month and group.startswith(f"{by}#")]
            assert tuple(sum(r[name] for r in mine) for name in stocks) == tuple(programme[n] for n in stocks)
    # And a group's 12-month customer value: the orders placed while in it, over its members
    assert rows["2026-04", higher]["customerValue12Months"] == {"EUR": "100.00"}  # April's order
    assert rows["2026-04", lowest]["customerValue12Months"] == {"EUR": "200.00"}  # both January orders, one member
    assert rows["2026-04", "programme"]["customerValue12Months"] == {"EUR": "150.00"}
    # And a closed month keeps each group's closing figures
    KpiClosing(fakes.kpis).close("2026-04")
    closed = fakes.kpis.month("2026-04")["close"]
    assert (closed[f"active_members#{higher}"], closed[f"points_outstanding#{higher}"]) == (1, held["m1"])


def test_stocks_counted_before_the_members_groups_were_known_follow_them(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    from loyalty.ports.kpis import MemberMonths, MemberMove, Noted

    counting = KpiCounting(ledger, fakes.kpis)
    lowest = f"tier#{ledger.rules.tiers[0].name}"
    # Given m1's bonus counted before its joining, which puts it in another segment than it stands in now
    clock.now = at("2026-01")
    ledger.enrol("m1")
    ledger.bonus("m1", "signup", "m1")
    counting.count(ledger.entries("m1"))
    counting.count_moves([MemberMove("m1", "joined", at("2026-01"), True, None, None, None, "new")])
    # And m2, whose note was kept before notes named groups: active since December, counted in the programme only
    ledger.enrol("m2")
    kept = MemberMonths(active="2025-12", bought="2025-12", first_bought="2025-12")
    assert fakes.kpis.note_member("m2", MemberMonths(), kept, {("2025-12", "programme"): {"active_change": 1}})
    assert fakes.kpis.note_member("m2", kept, kept, {("2026-12", "programme"): {"active_change": -1}}) is Noted.WRITTEN
    # When m2 gets a bonus in February and reaches the next tier in March
    clock.now = at("2026-02")
    ledger.bonus("m2", "birthday", "2026")
    counting.count(ledger.entries("m2"))
    higher = ledger.rules.tiers[1].name
    counting.count_moves([MemberMove("m2", "tier#mar", at("2026-03"), False, None, higher, None, None)])
    # Then m1's points are in the segment it joined, none left in the one its entries first counted in
    rows = {
        (r["month"], r["group"]): r
        for by in ("segment", "tier")
        for r in KpiFigures(fakes.kpis, load_rewards(ledger.rules)).answers("2026-01", "2026-12", (by,))[by]["months"]
    }
    assert rows["2026-01", "segment#new"]["pointsOutstanding"] == 100
    assert rows["2026-01", "segment#none"]["pointsOutstanding"] == 0
    # And m2's active spell went from the lowest tier to the next with the move, and lapses there in December
    assert (rows["2026-03", lowest]["activeMembers"], rows["2026-03", f"tier#{higher}"]["activeMembers"]) == (0, 1)
    assert rows["2026-12", f"tier#{higher}"]["activeMembers"] == 0
    for month in ("2026-02", "2026-03", "2026-12"):  # from m2's first entry counted since notes named groups
        for by in ("segment#", "tier#"):
            mine = [r for (m, g), r in rows.items() if m == month and g.startswith(by)]
            for name in ("activeMembers", "pointsOutstanding"):
                assert sum(r[name] for r in mine) == rows[month, "programme"][name], (month, by, name)
            assert all(r["activeMembers"] >= 0 for r in mine)
