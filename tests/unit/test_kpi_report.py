"""The monthly report from GET /kpis answers: the HTML file with its charts inside (no script, nothing fetched),
the figures as CSV, and finance's roll-forward of points, whose every line adds up."""

from __future__ import annotations

import base64
import csv
import io
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from loyalty.fakes import Fakes
from loyalty.kpis.counting import KpiCounting
from loyalty.kpis.figures import KpiFigures
from loyalty.kpis.report import render_csv, render_html, render_roll_forward_csv, roll_forward, twelve_month_table
from loyalty.ledger.service import Ledger
from loyalty.programme.rewards import load_rewards
from tests.conftest import FakeClock
from tests.orders import simple_order


@pytest.fixture
def answers(fakes: Fakes, ledger: Ledger, clock: FakeClock) -> tuple[dict[str, Any], dict[str, Any]]:
    """Three months of two members: orders in SEK, a partial refund of a released and spent order, a
    redemption, an adjustment, and expired points."""
    counting = KpiCounting(ledger, fakes.kpis)
    clock.now = datetime(2026, 1, 10, 9, tzinfo=UTC)
    for member in ("m1", "m2"):
        ledger.enrol(member)
        counting.count_enrolments([(member, clock.now)])
        ledger.bonus(member, "signup", member)
    ledger.accrue("m1", simple_order("o1", clock.now, [("1", 2, "500.00")], currency="SEK"))
    clock.now = datetime(2026, 2, 12, 9, tzinfo=UTC)
    ledger.release("shopify:demo", "o1", "m1")
    ledger.redeem("m1", 180, "r1", "voucher")
    ledger.reverse("shopify:demo", "o1", "rf1", {"1": 1})  # half of it: partly spent already
    ledger.accrue("m2", simple_order("o2", clock.now, [("1", 1, "250.00")], currency="SEK"))
    clock.now = datetime(2026, 3, 3, 9, tzinfo=UTC)
    ledger.adjust("m2", -20, actor="salesforce-user:005", reason="correction", adjustment_id="a1")
    counting.count(ledger.entries("m1") + ledger.entries("m2"))
    offer = {"members#win_back#offered": 40, "converted#win_back#offered": 12, "members#win_back#holdout": 10}
    fakes.kpis.add("win-back", "2026-02", ("programme",), {f"offer_{name}": n for name, n in offer.items()})
    figures = KpiFigures(fakes.kpis, load_rewards(ledger.rules))
    return figures.months("2026-01", "2026-03", by="segment"), figures.months("2026-01", "2026-03", by="tier")


def test_the_roll_forward_adds_up_each_month_and_matches_what_members_hold(
    answers: tuple[dict[str, Any], dict[str, Any]], ledger: Ledger
) -> None:
    lines = roll_forward(answers[0])
    assert [line["month"] for line in lines] == ["2026-01", "2026-02", "2026-03"]
    for line in lines:
        moved = line["issued"] - line["reversed"] + line["unrecovered"] - line["redeemed"] + line["returned"]
        assert line["opening"] + moved - line["expired"] + line["adjusted"] == line["closing"]
    assert lines[1]["unrecovered"] > 0 and lines[2]["adjusted"] == -20
    held = sum(ledger.summary(m).available + ledger.summary(m).pending for m in ("m1", "m2"))
    assert lines[-1]["closing"] == held and lines[0]["opening"] == 0
    assert Decimal(lines[-1]["liability"]) == held * load_rewards(ledger.rules).point_value_in("SEK")


def test_the_csv_has_every_groups_row_and_each_currencys_money(answers: tuple[dict[str, Any], dict[str, Any]]) -> None:
    rows = list(csv.DictReader(io.StringIO(render_csv(answers[0]))))
    programme = [row for row in rows if row["group"] == "programme"]
    assert [row["month"] for row in programme] == ["2026-01", "2026-02", "2026-03"]
    assert programme[0]["order_value_SEK"] == "1000.00" and programme[0]["average_order_value_SEK"] == "1000.00"
    assert programme[1]["order_value_SEK"] == "-250.00"  # February: its 250.00 order less the refund of 500.00
    assert any(row["group"].startswith("segment#") for row in rows)
    roll = list(csv.DictReader(io.StringIO(render_roll_forward_csv(answers[0]))))
    assert roll[-1]["closing"] == str(roll_forward(answers[0])[-1]["closing"])


def test_the_html_report_holds_the_table_and_every_chart_as_svg(answers: tuple[dict[str, Any], dict[str, Any]]) -> None:
    html = render_html(*answers, tier_order=["bronze", "silver", "gold"])
    for chart in (
        "chart-shares",
        "chart-order-value",
        "chart-liability",
        "chart-segments",
        "chart-tiers",
        "chart-lift",
    ):
        figure = re.search(rf'<figure id="{chart}">(.*?)</figure>', html, re.DOTALL)
        assert figure is not None and "<svg" in figure.group(1) and ("<polyline" in html or "<rect" in html)
    assert "<script" not in html and "http" not in html.replace("http://www.w3.org/2000/svg", "")
    table = twelve_month_table(answers[0])
    assert [row["month"] for row in table] == ["2026-01", "2026-02", "2026-03"]
    for row in table:
        assert f"<td>{row['month']}</td>" in html
    assert "How the figures are worked out" in html and "breakage" in html.lower()
    lift = re.search(r'<figure id="chart-lift">(.*?)</figure>', html, re.DOTALL)
    assert lift is not None and "<circle" in lift.group(1) and "win back" in lift.group(1)  # 30 % against 0 %
    assert re.search(r"<td>win back</td><td>40</td><td>30.0 %</td>\s*<td>10</td><td>0.0 %</td>", html)


def test_the_monthly_report_is_kept_under_its_month_and_attached_to_the_months_record(
    answers: tuple[dict[str, Any], dict[str, Any]], fakes: Fakes, ledger: Ledger
) -> None:
    from loyalty.crm.figures import CrmFigures
    from loyalty.kpis.report import MonthlyReport

    # When March's report is written (the fixture's three months of figures are in the fakes)
    report = MonthlyReport(KpiFigures(fakes.kpis, load_rewards(ledger.rules)), fakes.reports, ["bronze", "silver"])
    files = report.write("2026-03")
    # Then the HTML and both CSV files are kept under the month, the HTML the one returned
    assert sorted(fakes.reports.files) == [
        "reports/2026-03/loyalty-figures.csv",
        "reports/2026-03/loyalty-points-roll-forward.csv",
        "reports/2026-03/loyalty-report.html",
    ]
    assert fakes.reports.files["reports/2026-03/loyalty-report.html"] == (files.html, "text/html; charset=utf-8")
    assert b"<td>2026-01</td>" in files.html and {row["month"] for row in files.rows} == {"2026-03"}
    # And pushed to the CRM, it is a File on the month's programme record
    crm = CrmFigures(fakes.org)
    records = crm.push(files.rows, files.currency)
    file_id = crm.attach(records["2026-03#programme"], "Report", "loyalty-report-2026-03.html", files.html)
    (version,) = fakes.org.records["ContentVersion"].values()
    assert version["Id"] == file_id and version["FirstPublishLocationId"] == records["2026-03#programme"]
    assert base64.b64decode(version["VersionData"]) == files.html
