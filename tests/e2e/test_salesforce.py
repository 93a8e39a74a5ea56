"""Salesforce both ways through the embedded stack: the org emulator plays the org, over HTTP."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from typing import Any

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
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
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
