"""Joining records where the member joined and the programme terms in force then (program.yaml
enrolment.terms_version), from each door: a shop's customer, the CRM."""

from __future__ import annotations

import json
from pathlib import Path

from loyalty.crm.flow_callouts import MemberEnrolCallout, parse_callout
from loyalty.crm.inbound import CrmInbound
from loyalty.fakes import Fakes
from loyalty.ledger.member_view import member_view
from loyalty.ledger.service import Ledger
from loyalty.offers.rules import load_offer_rules
from loyalty.shop.applier import ShopEventApplier
from loyalty.shop.webhooks import QueuedWebhook
from tests.conftest import FakeClock

EVENTS = Path(__file__).resolve().parents[1] / "events"


def test_a_member_keeps_where_they_joined_and_the_terms_they_accepted(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    terms = ledger.rules.enrolment.terms_version
    assert terms == "2026-01"  # infra/program.yaml
    # A shop's new customer
    applier = ShopEventApplier(ledger, fakes.directory, 30, load_offer_rules(), fakes.offer_queue)
    body = (EVENTS / "shopify" / "customers_create.json").read_text()
    webhook = QueuedWebhook(platform="shopify", topic="customers/create", shop="nordic.myshopify.com",
                            webhook_id="w1", body=body)  # fmt: skip
    assert applier.deliver(webhook) == "member enrolled"
    shopper = ledger.member_for_email(json.loads(body)["email"])
    assert shopper is not None
    shown = member_view(ledger, shopper)
    assert (shown["joinedVia"], shown["termsVersion"]) == ("shopify:nordic.myshopify.com", terms)
    # A Contact a CRM user enrols
    inbound = CrmInbound(
        ledger, fakes.directory, fakes.crm_states, fakes.offer_queue, "00D5g000004abcdEAA", lambda: "s",
        lambda: "t", clock=clock,
    )  # fmt: skip
    callout = parse_callout((EVENTS / "salesforce" / "flow_member_enrol.json").read_bytes())
    assert isinstance(callout, MemberEnrolCallout)
    inbound.apply_callout(callout)
    crm_member = ledger.member_for_email("mikko.virtanen@example.fi")
    assert crm_member is not None
    assert (member_view(ledger, crm_member)["joinedVia"], ledger.member(crm_member).terms_version) == ("crm", terms)
