"""A member's e-mail changes where the person changes it, on the ports' fakes: a shop customer's or their Contact's
new address becomes the member's, with the e-mail's guard, so each address stays one member's; one another member
holds is parked on the member with the reason, never merged; an older change changes nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from loyalty.crm.inbound import CrmInbound
from loyalty.crm.outbound_messages import ContactNotification
from loyalty.fakes import Fakes
from loyalty.ledger.member_view import member_view
from loyalty.ledger.service import Ledger
from loyalty.offers.rules import load_offer_rules
from loyalty.shop.applier import ShopEventApplier
from loyalty.shop.webhooks import QueuedWebhook
from tests.conftest import FakeClock

EVENTS = Path(__file__).resolve().parents[1] / "events"
SHOP_DOMAIN = "fjallvind-outdoor.myshopify.com"
SHOP = f"shopify:{SHOP_DOMAIN}"


@pytest.fixture
def applier(fakes: Fakes, ledger: Ledger) -> ShopEventApplier:
    return ShopEventApplier(ledger, fakes.directory, 30, load_offer_rules(), fakes.offer_queue)


def customer_update(email: str, at: str, webhook_id: str) -> QueuedWebhook:
    body: dict[str, Any] = json.loads((EVENTS / "shopify" / "customers_create.json").read_text())
    body.update(email=email, updated_at=at)
    return QueuedWebhook(
        platform="shopify", topic="customers/update", shop=SHOP_DOMAIN, webhook_id=webhook_id, body=json.dumps(body)
    )


def test_a_shop_customers_new_email_becomes_the_members_and_one_another_member_holds_is_parked(
    applier: ShopEventApplier, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    # Given the shop's customer, a member, and another member with an address the customer will try
    customer = json.loads((EVENTS / "shopify" / "customers_create.json").read_text())
    erik = ledger.enrol("m-erik", email=customer["email"])
    fakes.directory.link_customer(SHOP, str(customer["id"]), erik)
    other = ledger.enrol("m-other", email="taken@example.se")
    # When the customer changes their e-mail in the shop
    assert applier.deliver(customer_update("erik.new@example.se", "2026-03-11T10:00:00+01:00", "w1")).endswith(
        "e-mail changed"
    )
    # Then the member has it, found by it, and the old address finds no one
    assert ledger.summary(erik).profile.email == "erik.new@example.se"
    assert ledger.member_for_email("erik.new@example.se") == erik and ledger.member_for_email(customer["email"]) is None
    # When they change it to an address another member holds
    outcome = applier.deliver(customer_update("Taken@example.se", "2026-03-12T10:00:00+01:00", "w2"))
    # Then it is parked on the member with the reason; neither member changes, nothing is merged
    assert outcome.endswith("new e-mail parked: another member has it")
    shown = member_view(ledger, erik)["profile"]
    assert shown["email"] == "erik.new@example.se"
    assert shown["emailParked"] == {"email": "Taken@example.se", "reason": f"the address is member {other}'s"}
    assert ledger.member_for_email("taken@example.se") == other
    # And an update older than the last one applied changes nothing
    applier.deliver(customer_update("erik.old@example.se", "2026-03-10T09:00:00+01:00", "w3"))
    assert ledger.summary(erik).profile.email == "erik.new@example.se"


def test_a_contacts_new_email_becomes_its_members(fakes: Fakes, ledger: Ledger, clock: FakeClock) -> None:
    inbound = CrmInbound(
        ledger, fakes.directory, fakes.crm_states, fakes.offer_queue, "00D5g000004abcdEAA", lambda: "s",
        lambda: "t", clock=clock,
    )  # fmt: skip
    member_id = ledger.enrol("m1", email="anna@example.se")
    fakes.directory.link_contact(member_id, "0035g00000LbW9eAAF")
    change = ContactNotification(
        notification_id="n1", contact_id="0035g00000LbW9eAAF", loyalty_member_id=member_id,
        email="anna.lind@example.se", last_modified=clock.now + timedelta(minutes=1),
    )  # fmt: skip
    assert inbound.apply_contact_change(change).endswith("; e-mail changed")
    assert ledger.member_for_email("anna.lind@example.se") == member_id
    assert ledger.member_for_email("anna@example.se") is None
