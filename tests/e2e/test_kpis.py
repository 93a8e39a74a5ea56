"""The monthly figures through the embedded stack: an order's entries reach the KpiFunction from the table's
stream and are counted once, for the programme and the member's tier and segment, however often they come."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime, timedelta

import boto3

from infra.local.stack import Stack
from loyalty.adapters.dynamodb.kpis import DynamoDBKpiStore
from loyalty.adapters.dynamodb.models import bind_table
from loyalty.programme.earning import earning_base
from loyalty.programme.rules import load_program
from loyalty.shop.events import OrderPaidEvent
from loyalty.shop.shopify import parse_shopify_webhook
from tests.e2e.conftest import Shop
from tests.e2e.test_salesforce import contact_for
from tests.e2e.test_webshop_pipeline import expected_points, shopify_order, unique_email


def test_an_order_is_counted_once_in_its_months_figures(stack: Stack, shop: Shop) -> None:
    bind_table(stack.names["LoyaltyTable"])
    store = DynamoDBKpiStore()
    month = load_program().local_date(datetime.now(UTC)).strftime("%Y-%m")
    before = store.month(month)
    # Given a new shopper's paid order, delivered twice by the shop
    body = shopify_order(unique_email(), customer_id=int(time.time() * 1000))
    assert shop.shopify("orders/paid", body)[0] == 200
    assert shop.shopify("orders/paid", body)[0] == 200
    # When the pipeline has applied it and the stream has been read
    stack.wait_idle()
    after = store.month(month)

    def added(group: str, counter: str) -> int:
        return after.get(group, {}).get(counter, 0) - before.get(group, {}).get(counter, 0)

    # Then the month has one more order, with its points and the enrolment bonus, in the programme's figures
    signup = load_program().bonuses.signup
    assert added("programme", "orders") == 1 and added("programme", "purchasers") == 1
    assert added("programme", "returning_purchasers") == 0  # their first purchase
    assert added("programme", "members_enrolled") == 1  # the order enrolled them
    assert added("programme", "points_issued") == expected_points(body) + signup
    # And the same in the new member's tier's and segment's
    assert added("tier#bronze", "orders") == 1 and added("segment#none", "orders") == 1
    # And its value, ex-VAT after discounts, in its currency; and the member counts as active from this month
    event = parse_shopify_webhook("orders/paid", "nordic-outdoor.myshopify.com", "x", body)
    assert isinstance(event, OrderPaidEvent)
    order = event.order
    value = sum(earning_base(line, order.prices_include_tax, False) for line in order.lines)
    assert added("programme", f"order_value#{order.currency}") == value > 0
    assert added("programme", "active_change") == 1


def test_get_kpis_answers_the_months_figures_and_a_closed_month_keeps_its_closing(stack: Stack, shop: Shop) -> None:
    rules = load_program()
    today = rules.local_date(datetime.now(UTC))
    month = today.strftime("%Y-%m")
    # Given a new shopper's paid order this month
    assert shop.shopify("orders/paid", shopify_order(unique_email(), int(time.time() * 1000) + 1))[0] == 200
    stack.wait_idle()
    # When the member API is asked for this month's figures by tier
    status, answer = shop.get(f"/kpis?from={month}&to={month}&by=tier")
    # Then the programme's row and each tier's are there, with the order in them
    assert status == 200, answer
    programme = [row for row in answer["months"] if row["group"] == "programme"]
    assert len(programme) == 1 and programme[0]["orders"] >= 1 and programme[0]["members"] >= 1
    assert programme[0]["averageOrderValue"] and not programme[0]["closed"]
    assert any(row["group"] == "tier#bronze" and row["orders"] >= 1 for row in answer["months"])
    assert answer["reportingCurrency"] == "SEK" and "breakage" in answer["definitions"]
    # When the month is closed (its schedule run on demand, as on the first day of the next month)
    first_of_next = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    status, closed = shop.post(f"/_local/jobs/kpi_close?day={first_of_next.isoformat()}", b"", {})
    assert status == 200 and closed["month"] == month
    # Then the month reads as closed, with the closing figures the job kept
    _, again = shop.get(f"/kpis?from={month}&to={month}")
    row = again["months"][0]
    assert row["closed"] and (row["members"], row["activeMembers"]) == (closed["members"], closed["active_members"])
    assert row["pointsOutstanding"] == closed["points_outstanding"]
    # And a request it cannot answer is refused, saying why
    status, refused = shop.get(f"/kpis?from={month}&to=2000-01")
    assert status == 400 and "before" in refused["message"]
    assert shop.get("/kpis?from=2026-01&to=2026-02&by=colour")[0] == 400


def test_the_journal_and_the_months_figures_reach_the_org(stack: Stack, shop: Shop) -> None:
    # Given a Contact a CRM user created and the shopper's first order (enrolled, linked by e-mail)
    contact_id, member_id = contact_for(stack, shop, unique_email())
    # Then the Contact's transaction journal has the order and the signup bonus, as the ledger wrote them
    _, member = shop.get(f"/members/{member_id}")
    journal = [r for r in stack.salesforce.records("Loyalty_Transaction__c") if r["Member_Id__c"] == member_id]
    assert {r["Contact__c"] for r in journal} == {contact_id}
    assert sorted(r["Kind__c"] for r in journal) == sorted(e["kind"] for e in member["entries"])
    (order,) = [r for r in journal if r["Kind__c"] == "accrual"]
    assert order["Pending_Points__c"] == member["points"]["pending"] and order["Order__c"].startswith("shopify:")
    # And the nightly trim (its schedule run on demand) keeps what is inside the window
    status, trimmed = shop.post("/_local/jobs/journal_trim", b"", {})
    assert (status, trimmed["changed"]) == (200, 0)
    assert len(
        [r for r in stack.salesforce.records("Loyalty_Transaction__c") if r["Member_Id__c"] == member_id]
    ) == len(journal)
    # When the month is closed (its schedule run on demand, as on the first day of the next month)
    today = load_program().local_date(datetime.now(UTC))
    first_of_next = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    status, closed = shop.post(f"/_local/jobs/kpi_close?day={first_of_next.isoformat()}", b"", {})
    assert status == 200 and closed["crmRecords"] >= 2
    # Then the org has the month's KPI records, the programme's and the tiers', as GET /kpis states them
    month = today.strftime("%Y-%m")
    kpis = {r["Key__c"]: r for r in stack.salesforce.records("Loyalty_Programme_KPI__c") if r["Month__c"] == month}
    _, answer = shop.get(f"/kpis?from={month}&to={month}")
    (row,) = answer["months"]
    programme = kpis[f"{month}#programme"]
    assert (programme["Orders__c"], programme["Members__c"]) == (row["orders"], row["members"])
    assert programme["Closed__c"] is True and programme["Currency__c"] == "SEK"
    assert f"{month}#tier#bronze" in kpis


def test_the_monthly_report_is_written_to_s3_and_attached_to_the_months_kpi_record(stack: Stack, shop: Shop) -> None:
    # Given an order this month
    assert shop.shopify("orders/paid", shopify_order(unique_email(), int(time.time() * 1000) + 3))[0] == 200
    stack.wait_idle()
    # When the monthly report's schedule runs on the first days of next month (on demand here)
    today = load_program().local_date(datetime.now(UTC))
    month = today.strftime("%Y-%m")
    next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=2)
    status, written = shop.post(f"/_local/jobs/kpi_report?day={next_month.isoformat()}", b"", {})
    # Then the report and its CSV files are in the report bucket, under the month
    assert status == 200 and written["month"] == month, written
    bucket = stack.names["ReportBucket"]
    assert written["files"] == [
        f"s3://{bucket}/reports/{month}/{name}"
        for name in ("loyalty-report.html", "loyalty-figures.csv", "loyalty-points-roll-forward.csv")
    ]
    s3 = boto3.client("s3", endpoint_url=stack.moto_url)
    html = s3.get_object(Bucket=bucket, Key=f"reports/{month}/loyalty-report.html")["Body"].read().decode()
    assert f"<td>{month}</td>" in html and "<svg" in html
    # And the CRM has it as a File on the month's programme KPI record
    (kpi,) = [r for r in stack.salesforce.records("Loyalty_Programme_KPI__c") if r["Key__c"] == f"{month}#programme"]
    (file,) = [f for f in stack.salesforce.records("ContentVersion") if f["Id"] == written["crmFile"]]
    assert file["FirstPublishLocationId"] == kpi["Id"] and file["PathOnClient"] == f"loyalty-report-{month}.html"
    assert base64.b64decode(file["VersionData"]).decode() == html
