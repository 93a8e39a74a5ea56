"""`make report` through the embedded stack and a real browser: the report asks GET /kpis over HTTP, is written
as one HTML file, and opens in Debian's Chromium (driven by Playwright) offline with every chart drawn; the CSV
files sit beside it. Photographed under .artifacts/."""

from __future__ import annotations

import csv
import time
from datetime import UTC, datetime
from pathlib import Path

from playwright.sync_api import Browser

from infra.local.stack import Stack
from infra.report import main as make_report
from loyalty.kpis.flows import shift_month
from loyalty.programme.rules import load_program
from tests.e2e.conftest import Shop
from tests.e2e.test_member_page_browser import ARTIFACTS
from tests.e2e.test_webshop_pipeline import shopify_order, unique_email

CHARTS = ("chart-shares", "chart-order-value", "chart-liability", "chart-segments", "chart-tiers", "chart-lift")


def test_the_report_opens_in_a_browser_with_every_chart(
    stack: Stack, shop: Shop, browser: Browser, tmp_path: Path
) -> None:
    # Given an order this month through the shop's webhook
    assert shop.shopify("orders/paid", shopify_order(unique_email(), int(time.time() * 1000) + 7))[0] == 200
    stack.wait_idle()
    # When `make report` runs against the stack's member API for the last three months
    month = load_program().local_date(datetime.now(UTC)).strftime("%Y-%m")
    first = shift_month(month, -2)
    argv = ["--api", stack.gateway_url, "--from", first, "--to", month, "--out", str(tmp_path)]
    assert make_report(argv) == 0
    # Then the report opens offline, asking for nothing, with every chart drawn and the 12-month table filled
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.goto((tmp_path / "loyalty-report.html").as_uri())
    assert all(url.startswith("file://") for url in asked)
    for chart in CHARTS:
        box = page.locator(f"#{chart} svg").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 50, chart
    assert page.locator("#chart-shares svg circle").count() >= 1  # at least this month's points
    rows = page.locator("#twelve-months tbody tr")
    assert rows.count() == 3 and month in rows.last.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "kpi-report.png"), full_page=True)
    page.close()
    # And the CSV files hold the same months
    figures = list(csv.DictReader((tmp_path / "loyalty-figures.csv").open()))
    programme = [row["month"] for row in figures if row["group"] == "programme"]
    assert programme == [first, shift_month(first, 1), month]
    roll = list(csv.DictReader((tmp_path / "loyalty-points-roll-forward.csv").open()))
    assert [row["month"] for row in roll] == programme and int(roll[-1]["closing"]) > 0
