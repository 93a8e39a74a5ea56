"""Salesforce both ways through the embedded stack: the org emulator plays the org, over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from infra.local.stack import Stack
from tests.e2e.conftest import EVENTS, Shop
from tests.e2e.test_webshop_pipeline import shopify_order

CALLOUT_SECRET = "dev-salesforce-callout-secret"


def unique_email() -> str:
    return f"crm-{uuid.uuid4().hex[:10]}@example.se"


def contact_for(stack: Stack, shop: Shop, email: str) -> tuple[str, str]:
    """A Contact a CRM user created, and the shopper's first order: returns (contact id, member id)."""
    contact_id = stack.salesforce.create_contact_as_user({"LastName": "Shopper", "Email": email})
    shop.shopify("orders/paid", shopify_order(email, customer_id=int(time.time() * 1000)))
    stack.wait_idle()
    status, member = shop.get(f"/members?email={email}")
    assert status == 200
    return contact_id, member["memberId"]


def unlinked_shopper(stack: Stack, shop: Shop) -> tuple[str, str]:
    """A shopper whose first order came before any Contact had their e-mail: returns (e-mail, member id)."""
    email = unique_email()
    shop.shopify("orders/paid", shopify_order(email, customer_id=int(time.time() * 1000)))
    stack.wait_idle()
    status, member = shop.get(f"/members?email={email}")
    assert status == 200 and member["profile"]["crmContactId"] is None
    return email, member["memberId"]


def as_crm_user(stack: Stack, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """The org's REST API as a CRM user would call it (any bearer token the org's token endpoint did not issue)."""
    request = urllib.request.Request(
        f"{stack.salesforce_url}/services/data/v62.0/{path}",
        data=json.dumps(body).encode(),
        method=method,
        headers={"Authorization": "Bearer a-crm-user", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return dict(json.loads(response.read() or b"{}"))


def failure_reports(stack: Stack) -> int:
    """How many batches crm_sync gave up on: what CrmSyncFailureQueue holds (stream sequence numbers)."""
    queue = stack.queue_url("CrmSyncFailureQueue")
    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessages"]
    )
    return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def callout(stack: Stack, kind: str, **changes: Any) -> dict[str, Any]:
    name = "flow_points_adjustment.json" if kind == "points.adjustment" else "flow_member_enrol.json"
    body: dict[str, Any] = json.loads((EVENTS / "salesforce" / name).read_text())
    body.update(orgId=stack.salesforce.organization_id, requestId=str(uuid.uuid4()), **changes)
    return body


def test_an_order_shows_on_the_shoppers_contact(stack: Stack, shop: Shop) -> None:
    # Given a Contact created in the CRM with a shopper's e-mail, when the shopper's order arrives
    email = unique_email()
    contact_id, member_id = contact_for(stack, shop, email)
    stack.wait_idle()
    # Then the Contact is linked and shows the member's points and tier
    contact = stack.salesforce.contact(contact_id)
    _, member = shop.get(f"/members/{member_id}")
    assert contact["Loyalty_Member_Id__c"] == member_id
    assert contact["Loyalty_Points__c"] == member["points"]["available"]
    assert contact["Loyalty_Pending_Points__c"] == member["points"]["pending"] > 0
    assert contact["Loyalty_Tier__c"] == "Bronze" and contact["Loyalty_Next_Tier__c"] == "Silver"


def test_consent_and_birthday_changed_in_the_crm_show_on_the_member(stack: Stack, shop: Shop) -> None:
    email = unique_email()
    contact_id, member_id = contact_for(stack, shop, email)
    # When a CRM user opts the contact out of e-mail, into SMS, and enters a birthday
    stack.salesforce.update_contact_as_user(
        contact_id, {"HasOptedOutOfEmail": True, "Loyalty_SMS_Opt_In__c": True, "Birthdate": "1990-05-17"}
    )
    assert stack.salesforce.wait_for_outbound(timeout=30)
    stack.wait_idle()
    # Then the member API shows it (the Outbound Message was acknowledged)
    _, member = shop.get(f"/members/{member_id}")
    assert member["profile"]["consent"] == {"email": False, "sms": True}
    assert member["profile"]["birthdate"] == "1990-05-17"
    assert member["profile"]["crmContactId"] == contact_id
    assert stack.salesforce.outbound_deliveries[-1].acked


def test_a_contact_a_crm_user_creates_over_rest_links_the_waiting_shopper_at_once(stack: Stack, shop: Shop) -> None:
    # Given a shopper parked as unlinked
    email, member_id = unlinked_shopper(stack, shop)
    # When a CRM user creates their Contact through the org's REST API
    created = as_crm_user(stack, "POST", "sobjects/Contact", {"LastName": "Shopper", "Email": email.upper()})
    assert stack.salesforce.wait_for_outbound(timeout=30)
    stack.wait_idle()
    # Then the org's Outbound Message linked the member, and the push filled the Contact: no order needed
    _, member = shop.get(f"/members/{member_id}")
    contact = stack.salesforce.contact(created["id"])
    assert member["profile"]["crmContactId"] == created["id"]
    assert contact["Loyalty_Member_Id__c"] == member_id
    assert contact["Loyalty_Pending_Points__c"] == member["points"]["pending"] > 0


def test_the_daily_sweep_links_a_shopper_whose_contact_came_without_a_message(stack: Stack, shop: Shop) -> None:
    # Given a shopper parked as unlinked, and their Contact written by the integration user (an import: no
    # Outbound Message reaches the programme)
    email, member_id = unlinked_shopper(stack, shop)
    user = stack.salesforce.integration_user_id
    contact_id = stack.salesforce.create_contact_as_user({"LastName": "Imported", "Email": email}, user_id=user)
    # When the daily job runs, as its schedule runs it
    report = stack.run_job("crm_link")
    stack.wait_idle()
    # Then the member is linked and the Contact filled
    assert report["complete"] and report["processed"] >= 1
    assert stack.salesforce.contact(contact_id)["Loyalty_Member_Id__c"] == member_id
    assert shop.get(f"/members/{member_id}")[1]["profile"]["crmContactId"] == contact_id


def test_a_contact_left_stale_by_an_outage_catches_up_once_salesforce_answers(
    stack: Stack, shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a shopper whose Contact shows their points
    email = unique_email()
    contact_id, member_id = contact_for(stack, shop, email)
    shown = stack.salesforce.contact(contact_id)["Loyalty_Pending_Points__c"]
    for source in stack.stream_sources:  # Lambda retries a failing batch 10 times; here the first failure is final
        monkeypatch.setattr(source, "max_retries", 0)
    failed_batches = failure_reports(stack)
    # When Salesforce is down while a second order arrives, for longer than the push's retries last
    stack.salesforce.inject("SERVER_ERROR", times=1000)
    try:
        shop.shopify("orders/paid", shopify_order(email, customer_id=int(time.time() * 1000)))
        stack.wait_idle()
    finally:
        stack.salesforce.clear_faults()
    # Then the batch was given up on (reported to the failure queue), and the Contact is behind
    _, member = shop.get(f"/members/{member_id}")
    assert failure_reports(stack) == failed_batches + 1
    assert stack.salesforce.contact(contact_id)["Loyalty_Pending_Points__c"] == shown < member["points"]["pending"]
    # When Salesforce answers again and the hourly job runs, with no new order
    stack.run_job("crm_retry")
    stack.wait_idle()
    # Then the Contact catches up
    assert stack.salesforce.contact(contact_id)["Loyalty_Pending_Points__c"] == member["points"]["pending"]


def test_an_outbound_message_from_another_org_changes_nothing(stack: Stack, shop: Shop) -> None:
    body = (EVENTS / "salesforce" / "outbound_contact.xml").read_bytes()  # org 00D5g000004abcdEAA: not ours
    token = stack.secrets["SALESFORCE_OUTBOUND_TOKEN"]
    status, _ = shop.post(
        f"/webhooks/salesforce/outbound?token={token}", body, {"Content-Type": "text/xml; charset=utf-8"}
    )
    assert status == 403


def forged_outbound_message(org_id: str, contact_id: str, member_id: str, email: str) -> bytes:
    """The captured message's first notification made about this Contact, now: a birthday, opted out of e-mail."""
    body = (EVENTS / "salesforce" / "outbound_contact.xml").read_text()
    now = (datetime.now(UTC) + timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # after the Contact's own
    for old, new in (
        ("00D5g000004abcdEAA", org_id),
        ("0035g00000Kp3XyAAJ", contact_id),
        ("LM-000123", member_id),
        ("anna.lindqvist@example.se", email),
        ("<sf:HasOptedOutOfEmail>false", "<sf:HasOptedOutOfEmail>true"),
        ("2026-03-02T09:14:03.000Z", now),
    ):
        assert old in body
        body = body.replace(old, new, 1)
    return body.encode()


def test_an_outbound_message_without_the_token_changes_nothing(stack: Stack, shop: Shop) -> None:
    # Given a member with a Contact, and a forged message for it carrying our org's id (which is not a secret)
    email = unique_email()
    contact_id, member_id = contact_for(stack, shop, email)
    _, before = shop.get(f"/members/{member_id}")
    forged = forged_outbound_message(stack.salesforce.organization_id, contact_id, member_id, email)
    for path in ("/webhooks/salesforce/outbound", "/webhooks/salesforce/outbound?token=guess"):
        # When it is posted without the token, or with a wrong one
        status, answer = shop.post(path, forged, {"Content-Type": "text/xml; charset=utf-8"})
        # Then it is refused and the member is as before
        assert status == 401 and "token" in answer["message"]
    stack.wait_idle()
    _, after = shop.get(f"/members/{member_id}")
    assert after["profile"] == before["profile"]
    # And the same body with the token in the URL, as the Outbound Message sends it, is applied
    token = stack.secrets["SALESFORCE_OUTBOUND_TOKEN"]
    request = urllib.request.Request(
        f"{stack.gateway_url}/webhooks/salesforce/outbound?token={token}", data=forged, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200 and b"<Ack>true</Ack>" in response.read()
    _, applied = shop.get(f"/members/{member_id}")
    assert before["profile"]["birthdate"] is None and applied["profile"]["birthdate"] == "1988-04-17"


def test_a_repeated_flow_adjustment_adds_points_once(stack: Stack, shop: Shop) -> None:
    email = unique_email()
    _, member_id = contact_for(stack, shop, email)
    _, before = shop.get(f"/members/{member_id}")
    body = callout(stack, "points.adjustment", contact={"id": None, "loyaltyMemberId": member_id, "email": None})
    url = f"{stack.gateway_url}/webhooks/salesforce/flow"
    first = stack.salesforce.send_flow_callout(url, body, CALLOUT_SECRET)
    again = stack.salesforce.send_flow_callout(url, body, CALLOUT_SECRET)
    assert first == (202, {"status": "accepted", "requestId": body["requestId"], "duplicate": False})
    assert again == (202, {"status": "accepted", "requestId": body["requestId"], "duplicate": True})
    _, after = shop.get(f"/members/{member_id}")
    assert after["points"]["available"] == before["points"]["available"] + 250
    adjustments = [e for e in after["entries"] if e["kind"] == "adjustment"]
    assert len(adjustments) == 1 and "0055g00000B2rQsAAJ" in adjustments[0]["reason"]  # audited


def test_a_signed_flow_callout_enrols_a_contact_and_a_wrong_secret_is_refused(stack: Stack, shop: Shop) -> None:
    # Given a Contact in the org (crm_sync may push to it at any moment: it must exist, as it would in an org)
    email = unique_email()
    contact_id = stack.salesforce.create_contact_as_user({"LastName": "Enrolled", "Email": email})
    body = callout(stack, "member.enrol", contact={"id": contact_id, "loyaltyMemberId": None, "email": email})
    raw = json.dumps(body).encode()
    timestamp = str(int(time.time()))
    signature = hmac.new(CALLOUT_SECRET.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Loyalty-Signature": f"t={timestamp},v1={signature}"}
    status, answer = shop.post("/webhooks/salesforce/flow", raw, headers)
    assert (status, answer["duplicate"]) == (202, False)
    status, member = shop.get(f"/members?email={email}")
    assert status == 200 and member["profile"]["crmContactId"] == contact_id
    wrong = {"Content-Type": "application/json", "X-Loyalty-Secret": "not-the-secret"}
    assert shop.post("/webhooks/salesforce/flow", raw, wrong)[0] == 401


def test_an_order_beyond_the_bounds_is_held_and_shown_as_a_task_on_the_contact(stack: Stack, shop: Shop) -> None:
    # Given a shopper who is a member with a Contact
    email = unique_email()
    contact_id, member_id = contact_for(stack, shop, email)
    _, before = shop.get(f"/members/{member_id}")
    # When their shop sends an order with a line of 5,000 units
    body = json.loads(shopify_order(email, customer_id=int(time.time() * 1000)))
    body["line_items"][0]["quantity"] = 5000
    status, _ = shop.shopify("orders/paid", json.dumps(body).encode())
    stack.wait_idle()
    # Then it is not applied, and a CRM user sees an open Task on the Contact saying why
    _, after = shop.get(f"/members/{member_id}")
    assert status == 200 and after["points"] == before["points"]
    (task,) = [t for t in stack.salesforce.tasks() if t["WhoId"] == contact_id and "held for review" in t["Subject"]]
    assert str(body["id"]) in task["Subject"] and "5000 units" in task["Description"]
    assert task["Status"] == "Not Started"
