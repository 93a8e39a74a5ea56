"""Offers through the embedded stack, driven as Salesforce drives it: a Flow asks for an offer, the member gets
one e-mail in their language (in moto), the Contact gets a completed Task (in the org emulator), a repeat
sends nothing, and the member's unsubscribe and a bounce reach the programme and the Contact."""

from __future__ import annotations

import contextlib
import io
import json
import urllib.request
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from infra.local.outbox import main as outbox
from infra.local.outbox import sent
from infra.local.stack import Stack
from loyalty.adapters.dynamodb.kpis import DynamoDBKpiStore
from loyalty.adapters.dynamodb.models import bind_table
from loyalty.programme.earning import GrantedOffer
from loyalty.programme.rules import load_program
from tests.e2e.conftest import EVENTS, Shop
from tests.e2e.test_salesforce import CALLOUT_SECRET, contact_for, unique_email
from tests.e2e.test_webshop_pipeline import expected_points, shopify_order


def offer_callout(stack: Stack, member_id: str, email: str, **offer: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EVENTS / "salesforce" / "flow_offer_requested.json").read_text())
    body.update(orgId=stack.salesforce.organization_id, requestId=str(uuid.uuid4()))
    body["contact"].update(id=None, loyaltyMemberId=member_id, email=email, mobilePhone=None)
    today = date.today()
    defaults = {
        "code": f"E2E{uuid.uuid4().hex[:6].upper()}",
        "validFrom": today.isoformat(),
        "validUntil": (today + timedelta(days=30)).isoformat(),
        "channels": ["email"],
        "templateKey": "offer_points_multiplier",
    }
    body["offer"].update({**defaults, **offer})
    body["consent"] = {"email": True, "sms": False}
    return body


def emails_to(stack: Stack, address: str) -> list[dict[str, Any]]:
    emails, _ = sent(stack.moto_url)
    return [e for e in emails if address in e.get("destinations", {}).get("ToAddresses", [])]


def test_a_flow_offer_request_ends_as_one_email_and_a_task_on_the_contact(stack: Stack, shop: Shop) -> None:
    # Given a shopper with a Contact, Swedish, who agreed to e-mail in the CRM
    email = unique_email()
    contact_id, member_id = contact_for(stack, shop, email)
    bind_table(stack.names["LoyaltyTable"])
    month = load_program().local_date(datetime.now(UTC)).strftime("%Y-%m")
    sent_before = DynamoDBKpiStore().month(month).get("programme", {}).get("offers_sent#crm", 0)
    body = offer_callout(stack, member_id, email, bonusPoints=0)  # Flow has no nulls: an unused number is 0
    body["schemaVersion"] = "1"  # a Flow's text variable
    url = f"{stack.gateway_url}/webhooks/salesforce/flow"
    # When marketing automation's Flow asks for the offer, and Flow sends the same request again
    first = stack.salesforce.send_flow_callout(url, body, CALLOUT_SECRET)
    stack.wait_idle()
    again = stack.salesforce.send_flow_callout(url, body, CALLOUT_SECRET)
    stack.wait_idle()
    # Then both are accepted, the second as a duplicate
    assert first == (202, {"status": "accepted", "requestId": body["requestId"], "duplicate": False})
    assert again[1]["duplicate"] is True
    # And exactly one e-mail went out, in Swedish, with the code and an unsubscribe link
    (message,) = emails_to(stack, email)
    assert body["offer"]["code"] in message["body"] and "/unsubscribe?" in message["body"]
    assert DynamoDBKpiStore().month(month)["programme"]["offers_sent#crm"] == sent_before + 1  # in the figures
    assert "poäng" in message["subject"] or "poäng" in message["body"]
    # And the Contact shows it as a completed Task naming the offer, the channel and the template
    tasks = [t for t in stack.salesforce.tasks() if t["WhoId"] == contact_id]
    assert len(tasks) == 1
    task = tasks[0]
    assert task["Status"] == "Completed" and task["Type"] == "Email"
    assert body["offer"]["code"] in task["Subject"] and "offer_points_multiplier" in task["Subject"]
    # And make outbox lists it
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert outbox(["--moto-url", stack.moto_url, "--last", "1000"]) == 0
    assert f"to {email}" in printed.getvalue()
    # And the offer works: the next order earns double, and its entry says which offer did it
    placed = json.loads(shopify_order(email, customer_id=None))
    placed["created_at"] = placed["processed_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    order = json.dumps(placed).encode()
    shop.shopify("orders/paid", order)
    stack.wait_idle()
    _, member = shop.get(f"/members/{member_id}")
    (accrual,) = [e for e in member["entries"] if e["kind"] == "accrual" and body["offer"]["code"] in e["reason"]]
    offer = GrantedOffer(code=body["offer"]["code"], multiplier=Decimal(2))
    assert accrual["pending"] == expected_points(order, (offer,)) > expected_points(order)


def test_unsubscribing_from_the_link_turns_email_consent_off_in_the_programme_and_the_crm(
    stack: Stack, shop: Shop
) -> None:
    email = unique_email()
    contact_id, member_id = contact_for(stack, shop, email)
    stack.salesforce.send_flow_callout(
        f"{stack.gateway_url}/webhooks/salesforce/flow", offer_callout(stack, member_id, email), CALLOUT_SECRET
    )
    stack.wait_idle()
    (message,) = emails_to(stack, email)
    link = message["body"].split('href="', 2)[-1].split('"', 1)[0].replace("&amp;", "&")
    assert link.startswith(stack.gateway_url + "/unsubscribe?")
    # When the member opens the link (a page asks to confirm) and confirms
    with urllib.request.urlopen(link, timeout=10) as page:
        assert page.status == 200 and b"Unsubscribe" in page.read()
    with urllib.request.urlopen(urllib.request.Request(link, data=b"", method="POST"), timeout=10) as done:
        assert done.status == 200
    stack.wait_idle()
    # Then the programme has the opt-out and the Contact shows it
    _, member = shop.get(f"/members/{member_id}")
    assert member["profile"]["consent"]["email"] is False
    assert stack.salesforce.contact(contact_id)["HasOptedOutOfEmail"] is True
    # A forged link is refused
    forged = link.rsplit("t=", 1)[0] + "t=" + "0" * 32
    try:
        urllib.request.urlopen(urllib.request.Request(forged, data=b"", method="POST"), timeout=10)
        raise AssertionError("a forged link must be refused")
    except urllib.error.HTTPError as error:
        assert error.code == 400


def test_a_permanent_bounce_from_ses_turns_email_consent_off(stack: Stack, shop: Shop) -> None:
    email = unique_email()
    contact_id, member_id = contact_for(stack, shop, email)
    notice = json.loads((EVENTS / "ses" / "event_bounce_permanent.json").read_text())
    notice["bounce"]["bouncedRecipients"][0]["emailAddress"] = email
    notice["bounce"]["timestamp"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    # When SES publishes the bounce to the topic the feedback function listens on
    (result,) = stack.publish("EmailEventsTopic", json.dumps(notice))
    stack.wait_idle()
    # Then the member is opted out of e-mail, in the programme and on the Contact
    assert result == {"notices": 1, "optedOut": 1}
    _, member = shop.get(f"/members/{member_id}")
    assert member["profile"]["consent"]["email"] is False
    assert stack.salesforce.contact(contact_id)["HasOptedOutOfEmail"] is True


def test_an_offer_with_a_template_the_programme_lacks_is_refused(stack: Stack, shop: Shop) -> None:
    email = unique_email()
    _, member_id = contact_for(stack, shop, email)
    body = offer_callout(stack, member_id, email, templateKey="spring_sale_2027")
    status, answer = stack.salesforce.send_flow_callout(
        f"{stack.gateway_url}/webhooks/salesforce/flow", body, CALLOUT_SECRET
    )
    assert status == 400 and "offer.templateKey" in answer["message"] and "offer_voucher" in answer["message"]
