"""Tiers and segments through the embedded stack: a CRM user's tier override, and the daily review reaching
the Contact. The jobs run on demand here (POST /_local/jobs/<job>), as their schedules run them in AWS."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from infra.local.stack import Stack
from loyalty.adapters.dynamodb.kpis import DynamoDBKpiStore
from loyalty.adapters.dynamodb.models import bind_table
from loyalty.adapters.dynamodb.surveys import DynamoDBNpsAnswers
from loyalty.programme.rules import load_program
from tests.e2e.conftest import EVENTS, Shop
from tests.e2e.test_salesforce import CALLOUT_SECRET, contact_for, unique_email


def override_callout(stack: Stack, member_id: str, **override: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads((EVENTS / "salesforce" / "flow_tier_override.json").read_text())
    body.update(orgId=stack.salesforce.organization_id, requestId=str(uuid.uuid4()))
    body["contact"] = {"id": None, "loyaltyMemberId": member_id, "email": None}
    body["override"].update(override)
    return body


def test_a_tier_override_from_the_crm_shows_as_such_on_the_member_and_the_contact(stack: Stack, shop: Shop) -> None:
    # Given a shopper with a Contact
    contact_id, member_id = contact_for(stack, shop, unique_email())
    until = (date.today() + timedelta(days=60)).isoformat()
    body = override_callout(stack, member_id, validUntil=until)
    url = f"{stack.gateway_url}/webhooks/salesforce/flow"
    # When a CRM user's Flow sets the tier to Gold, and Flow sends it twice
    first = stack.salesforce.send_flow_callout(url, body, CALLOUT_SECRET)
    again = stack.salesforce.send_flow_callout(url, body, CALLOUT_SECRET)
    assert (first[0], first[1]["duplicate"], again[1]["duplicate"]) == (202, False, True)
    stack.wait_idle()
    # Then the member shows Gold as an override, with its end and reason, and earned Bronze underneath
    _, member = shop.get(f"/members/{member_id}")
    assert member["tier"]["name"] == "gold" and member["tier"]["earned"] == "bronze"
    assert member["tier"]["override"] == {"until": until, "reason": "Ambassador for the spring campaign"}
    overrides = [e for e in member["entries"] if e["kind"] == "tier_override"]
    assert len(overrides) == 1 and "0055g00000B2rQsAAJ" in overrides[0]["reason"]
    # And the Contact shows it too
    contact = stack.salesforce.contact(contact_id)
    assert contact["Loyalty_Tier__c"] == "Gold"
    assert contact["Loyalty_Tier_Override_Until__c"] == until
    assert contact["Loyalty_Tier_Expires_On__c"] == until


def test_an_unknown_tier_or_a_past_date_is_refused(stack: Stack, shop: Shop) -> None:
    _, member_id = contact_for(stack, shop, unique_email())
    url = f"{stack.gateway_url}/webhooks/salesforce/flow"
    status, answer = stack.salesforce.send_flow_callout(
        url, override_callout(stack, member_id, tier="Diamond"), CALLOUT_SECRET
    )
    assert status == 400 and "diamond" in answer["message"].lower()
    past = override_callout(stack, member_id, validUntil="2020-01-01")
    assert stack.salesforce.send_flow_callout(url, past, CALLOUT_SECRET)[0] == 400


def test_the_daily_review_gives_a_segment_that_reaches_the_contact(stack: Stack, shop: Shop) -> None:
    # Given a new shopper with one order and a Contact
    contact_id, member_id = contact_for(stack, shop, unique_email())
    tomorrow = load_program().local_date(datetime.now(UTC)) + timedelta(days=1)
    # When tomorrow's review job runs (its schedule, run on demand)
    status, report = shop.post(f"/_local/jobs/review?day={tomorrow.isoformat()}", b"", {})
    assert status == 200 and report["complete"] and report["changed"] >= 1
    stack.wait_idle()
    # Then the member is in a segment, with the reason, and the Contact shows both
    _, member = shop.get(f"/members/{member_id}")
    assert member["segment"]["name"] == "new"
    assert member["segment"]["reason"] == "Joined 1 day ago, 1 order so far"
    contact = stack.salesforce.contact(contact_id)
    assert contact["Loyalty_Segment__c"] == "New"
    assert contact["Loyalty_Segment_Reason__c"] == "Joined 1 day ago, 1 order so far"
    # And running the same date again changes nothing
    status, again = shop.post(f"/_local/jobs/review?day={tomorrow.isoformat()}", b"", {})
    assert (status, again["datesDone"], again["processed"]) == (200, [], 0)


def test_an_nps_answer_from_a_flow_is_kept_once_with_the_members_tier_in_its_month(stack: Stack, shop: Shop) -> None:
    # Given a shopper with a Contact, and their answer to a survey as the org's Flow sends it
    _, member_id = contact_for(stack, shop, unique_email())
    answered = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    survey = f"survey-{uuid.uuid4().hex[:8]}"
    body: dict[str, Any] = json.loads((EVENTS / "salesforce" / "flow_nps_response.json").read_text())
    body.update(
        orgId=stack.salesforce.organization_id,
        requestId=str(uuid.uuid4()),
        contact={"loyaltyMemberId": member_id},
        surveyId=survey,
        respondedAt=answered.isoformat(),
        score="8",
    )
    url = f"{stack.gateway_url}/webhooks/salesforce/flow"
    bind_table(stack.names["LoyaltyTable"])
    month = load_program().local_date(answered).strftime("%Y-%m")
    before = DynamoDBKpiStore().month(month).get("tier#bronze", {})
    # When Flow sends it twice
    first = stack.salesforce.send_flow_callout(url, body, CALLOUT_SECRET)
    again = stack.salesforce.send_flow_callout(url, body, CALLOUT_SECRET)
    assert (first[0], first[1]["duplicate"], again[0], again[1]["duplicate"]) == (202, False, 202, True)
    # Then the table holds it once, under its month, with the member's tier at the time
    kept = [a for a in DynamoDBNpsAnswers().answered_in(month) if a.survey_id == survey]
    assert [(a.member_id, a.score, a.tier, a.comment) for a in kept] == [
        (member_id, 8, "bronze", "Quick delivery, and the points came at once.")
    ]
    # And the month's figures count it once, as a passive, under the member's tier
    stack.wait_idle()
    after = DynamoDBKpiStore().month(month)["tier#bronze"]
    assert {name: after.get(name, 0) - before.get(name, 0) for name in ("nps_answers", "nps_passives")} == {
        "nps_answers": 1,
        "nps_passives": 1,
    }
    # And a score out of range is refused, naming the field
    status, answer = stack.salesforce.send_flow_callout(url, body | {"requestId": "x", "score": 11}, CALLOUT_SECRET)
    assert status == 400 and "score" in answer["message"]
