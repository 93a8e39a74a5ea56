"""Offers in the monthly figures, on the ports' fakes: messages sent by trigger, the members each measured offer
was for in its offered and holdout arms, their orders within the conversion window, and the lift with its 95 %
confidence interval (hand-computed here)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from loyalty.fakes import Fakes
from loyalty.kpis.counting import KpiCounting
from loyalty.kpis.figures import KpiFigures
from loyalty.kpis.flows import is_counter, revenue_rates
from loyalty.ledger.service import Ledger
from loyalty.offers.records import SendRecord, Status
from loyalty.programme.rewards import load_rewards
from tests.conftest import FakeClock
from tests.orders import simple_order

DECIDED = datetime(2026, 3, 2, 9, tzinfo=UTC)


def decision(member: str, status: Status, channel: str = "email", trigger: str = "win_back") -> SendRecord:
    dedup = f"{trigger}#2026-03-02"
    return SendRecord(member, dedup, channel, status, "{}", DECIDED, trigger, trigger)


@pytest.fixture
def counting(fakes: Fakes, ledger: Ledger) -> KpiCounting:
    rates = revenue_rates(ledger.rules, "SEK")
    return KpiCounting(ledger, fakes.kpis, ("win_back", "tier_nudge"), conversion_days=14, rates=rates)


def test_each_decision_counts_once_and_each_member_once_per_offer_in_their_arm(
    counting: KpiCounting, fakes: Fakes
) -> None:
    records = [
        decision("m1", Status.HOLDOUT),
        decision("m1", Status.HOLDOUT, "sms"),
        decision("m2", Status.SENT),
        decision("m2", Status.REFUSED, "sms"),  # no SMS consent: still in the offered arm
        decision("m3", Status.SENDING),  # not decided yet
        decision("m4", Status.SENT, trigger="crm"),  # a CRM offer: sent, not measured
    ]
    assert counting.count_offers(records) == 2
    assert counting.count_offers(records) == 0  # the stream delivers them again
    march = fakes.kpis.month("2026-03")["programme"]
    assert march == {
        "offers_sent#win_back": 1,
        "offers_sent#crm": 1,
        "offer_members#win_back#holdout": 1,
        "offer_members#win_back#offered": 1,
    }
    assert all(is_counter(name) for name in march)


def test_orders_within_the_window_convert_once_with_their_revenue(
    counting: KpiCounting, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    # Given m1 held out of a win-back offer and m2 offered it, on 2 March
    for member in ("m1", "m2"):
        ledger.enrol(member)
    counting.count_offers([decision("m1", Status.HOLDOUT), decision("m2", Status.SENT)])
    # When m2 orders twice within 14 days (SEK and EUR), and m1 only after 20 days
    clock.now = DECIDED + timedelta(days=3)
    ledger.accrue("m2", simple_order("o1", clock.now, [("1", 1, "200.00")], currency="SEK"))
    clock.now = DECIDED + timedelta(days=10)
    ledger.accrue("m2", simple_order("o2", clock.now, [("1", 1, "10.00")], currency="EUR"))
    clock.now = DECIDED + timedelta(days=20)
    ledger.accrue("m1", simple_order("o3", clock.now, [("1", 1, "500.00")], currency="SEK"))
    written = ledger.entries("m1") + ledger.entries("m2")
    counting.count(written)
    counting.count(written)  # and again
    # Then m2 converted once, with both orders' revenue in SEK (EUR at the earning rates: 1 EUR = 10 SEK)
    march = fakes.kpis.month("2026-03")["programme"]
    assert march["offer_converted#win_back#offered"] == 1
    assert march["offer_revenue#win_back#offered"] == Decimal("300.00")
    assert march["offer_revenue_sq#win_back#offered"] == Decimal("90000.0000")
    assert "offer_converted#win_back#holdout" not in march  # m1's order came after the window
    assert fakes.kpis.month("2026-04").get("programme", {}).get("offer_converted#win_back#holdout") is None


def test_the_lift_and_its_interval_are_worked_out_as_the_definitions_say(fakes: Fakes, ledger: Ledger) -> None:
    # Given a month with a measured offer: 100 offered of whom 30 bought, 50 held out of whom 10 bought; and the
    # revenue of four offered members (10, 20, 30, 40) and four held out (0, 0, 10, 10) for tier nudges
    counts: dict[str, int | Decimal] = {
        "offer_members#win_back#offered": 100,
        "offer_converted#win_back#offered": 30,
        "offer_members#win_back#holdout": 50,
        "offer_converted#win_back#holdout": 10,
        "offer_members#tier_nudge#offered": 4,
        "offer_converted#tier_nudge#offered": 4,
        "offer_revenue#tier_nudge#offered": Decimal(100),
        "offer_revenue_sq#tier_nudge#offered": Decimal(3000),
        "offer_members#tier_nudge#holdout": 4,
        "offer_converted#tier_nudge#holdout": 2,
        "offer_revenue#tier_nudge#holdout": Decimal(20),
        "offer_revenue_sq#tier_nudge#holdout": Decimal(200),
        "points_redeemed": 1000,
    }
    fakes.kpis.add("given", "2026-03", ("programme",), counts)
    answer = KpiFigures(fakes.kpis, load_rewards(ledger.rules)).months("2026-03", "2026-03")
    offers = {offer["trigger"]: offer for offer in answer["offers"]}
    # Then the purchase rate lift: 0.3 - 0.2 = 0.1 +/- 1.96 * sqrt(.3 * .7 / 100 + .2 * .8 / 50) = 0.1427
    assert offers["win_back"]["lift"]["purchaseRate"] == {"difference": 0.1, "low": -0.0427, "high": 0.2427}
    assert offers["win_back"]["offered"]["purchaseRate"] == 0.3 and offers["win_back"]["lift"]["revenuePerMember"]
    # And the revenue per member lift: 25 - 5 = 20 +/- 1.96 * sqrt(500 / 3 / 4 + 100 / 3 / 4) = 13.86
    nudge = offers["tier_nudge"]
    assert nudge["lift"]["revenuePerMember"] == {"difference": "20.00", "low": "6.14", "high": "33.86"}
    assert (nudge["offered"]["revenuePerMember"], nudge["holdout"]["revenuePerMember"]) == ("25.00", "5.00")
    assert nudge["incrementalRevenue"] == "80.00"  # 20 a member, 4 offered
    # And the ROI: the incremental revenue over the points redeemed at a point's value (1,000 x 0.10 SEK)
    assert answer["roi"] == {"incrementalRevenue": "80.00", "pointsCost": "100.00", "ratio": -0.2}


def test_an_arm_too_small_has_no_interval(fakes: Fakes, ledger: Ledger) -> None:
    fakes.kpis.add("given", "2026-03", ("programme",), {"offer_members#win_back#offered": 3})
    offer = KpiFigures(fakes.kpis, load_rewards(ledger.rules)).months("2026-03", "2026-03")["offers"][0]
    assert offer["lift"] == {"purchaseRate": None, "revenuePerMember": None}
    assert offer["holdout"] == {
        "members": 0,
        "converted": 0,
        "purchaseRate": None,
        "revenue": "0.00",
        "revenuePerMember": None,
    }


def test_an_order_in_the_same_stream_batch_as_its_offer_converts(
    counting: KpiCounting, fakes: Fakes, ledger: Ledger, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from functions.kpis import app
    from loyalty.adapters.dynamodb.stream import KpiChanges
    from loyalty.wiring import services

    # Given a member offered a win-back and ordering three minutes later, both in one batch of the stream
    ledger.enrol("m2")
    clock.now = DECIDED + timedelta(minutes=3)
    order = ledger.accrue("m2", simple_order("o1", clock.now, [("1", 1, "80.00")], currency="SEK")).entry
    batch = KpiChanges([], [order], [], [decision("m2", Status.SENT)], [], [])
    monkeypatch.setattr(services, "kpi_counting", lambda: counting)
    monkeypatch.setattr(services, "kpi_changes", lambda event: batch)
    # When the KPI function handles the batch
    context = SimpleNamespace(function_name="KpiFunction", memory_limit_in_mb=256, aws_request_id="r1",
                              invoked_function_arn="arn:aws:lambda:eu-north-1:1:function:KpiFunction")  # fmt: skip
    assert app.lambda_handler({"Records": []}, context) == {"batchItemFailures": []}  # type: ignore[arg-type]
    # Then the order converted the offer it followed
    march = fakes.kpis.month("2026-03")["programme"]
    assert march["offer_converted#win_back#offered"] == 1 and march["offer_revenue#win_back#offered"] == Decimal(
        "80.00"
    )
