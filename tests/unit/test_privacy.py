"""A person's data on request, on the ports' fakes: everything the programme keeps of them as one JSON file, and
an erasure that leaves none of it anywhere (profile, e-mail guard, shop links, held guest orders, offer records,
NPS comments, exports, dead letters) while every amount stays; and the CRM's Flow callouts that ask for both."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from loyalty.crm.inbound import CrmInbound
from loyalty.errors import UnknownMemberError
from loyalty.fakes import Fakes
from loyalty.ledger.service import Ledger
from loyalty.offers.rules import load_offer_rules
from loyalty.ports.surveys import NpsAnswer
from loyalty.privacy import Privacy
from loyalty.shop.applier import ShopEventApplier
from loyalty.shop.webhooks import QueuedWebhook
from tests.conftest import FakeClock
from tests.orders import simple_order

EVENTS = Path(__file__).resolve().parents[1] / "events" / "salesforce"
SHOPIFY = EVENTS.parent / "shopify"
SHOP_DOMAIN = "fjallvind-outdoor.myshopify.com"
ORG = "00D5g000004abcdEAA"
SECRET = "flow-secret"
EMAIL, PHONE = "anna.lindqvist@example.se", "+46701234567"


@pytest.fixture
def privacy(fakes: Fakes, ledger: Ledger) -> Privacy:
    return Privacy(
        ledger, fakes.directory, fakes.offer_records, fakes.nps_answers, fakes.exports, fakes.dead_letters,
        clock=ledger.clock,
    )  # fmt: skip


def anna(fakes: Fakes, ledger: Ledger, clock: FakeClock) -> str:
    """A member with a profile, a shop customer link, an order, a redemption, an NPS comment, a guest order held
    for her e-mail and a failed delivery of hers in a dead-letter queue."""
    clock.now = datetime(2026, 11, 2, 9, tzinfo=UTC)
    member_id = ledger.enrol("LM-000123", email=EMAIL, first_name="Anna", last_name="Lindqvist", phone=PHONE)
    fakes.directory.update_profile(member_id, {"birthdate": "1990-05-17"}, clock.now)
    fakes.directory.link_customer("shopify:demo", "7001", member_id)
    ledger.bonus(member_id, "signup", member_id)
    ledger.accrue(member_id, simple_order("o1", clock.now))
    ledger.redeem(member_id, 40, "r1", "voucher")
    answer = NpsAnswer(member_id, "s1", 9, clock.now, "2026-11", None, None, comment="Anna here: great shop")
    fakes.nps_answers.save(answer)
    fakes.directory.hold_guest_order(EMAIL, simple_order("g1", clock.now), datetime(2026, 12, 31, tzinfo=UTC))
    fakes.dead_letters.messages += [
        json.dumps({"email": EMAIL.upper(), "id": 1}),
        json.dumps({"email": "bo@x.se"}),
        json.dumps({"email": f"jo{EMAIL}", "phone": "112"}),  # another person's, alike: kept
    ]
    return member_id


def test_an_export_holds_every_personal_field_and_everything_recorded(
    privacy: Privacy, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    member_id = anna(fakes, ledger, clock)
    link = privacy.export(member_id, "req/1")
    assert link == "exports/LM-000123/req-1.json"  # no download link given: where the merchant finds it
    data = json.loads(fakes.exports.files[member_id, "req-1"])
    assert (data["member"]["email"], data["member"]["phone"], data["member"]["birthdate"]) == (
        EMAIL,
        PHONE,
        "1990-05-17",
    )
    assert (data["member"]["first_name"], data["member"]["last_name"]) == ("Anna", "Lindqvist")
    assert [entry["kind"] for entry in data["entries"]] == [e.kind.value for e in ledger.entries(member_id)]
    assert "redemption" in [entry["kind"] for entry in data["entries"]] and data["redemptions"] == []
    assert [a["comment"] for a in data["npsAnswers"]] == ["Anna here: great shop"]
    assert data["summary"]["available"] == ledger.summary(member_id).available


def test_an_erasure_leaves_none_of_the_persons_data_and_every_amount(
    privacy: Privacy, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    member_id = anna(fakes, ledger, clock)
    privacy.export(member_id, "req-1")
    before = ledger.summary(member_id)
    assert EMAIL in repr(fakes.memory.__dict__) and "Lindqvist" in repr(fakes.memory.__dict__)
    # When the person is erased
    erased = privacy.erase(member_id)
    # Then their profile, e-mail guard, shop link, held guest order, comment, export and dead letter are gone
    assert (erased.links, erased.comments, erased.exports, erased.dead_letters) == (2, 1, 1, 1)
    member = ledger.member(member_id)
    assert (member.email, member.first_name, member.last_name, member.phone, member.birthdate) == (None,) * 5
    assert member.erased_at == clock.now
    assert ledger.member_for_email(EMAIL) is None
    assert fakes.directory.member_for_customer("shopify:demo", "7001") is None
    assert fakes.directory.held_orders(EMAIL, clock.now) == []
    assert [a.comment for a in fakes.nps_answers.of_member(member_id)] == [None]
    assert fakes.exports.files == {}
    assert fakes.dead_letters.messages == [
        json.dumps({"email": "bo@x.se"}),
        json.dumps({"email": f"jo{EMAIL}", "phone": "112"}),
    ]
    # And nothing the fakes hold names her any more
    held = repr(fakes.memory.__dict__)
    for needle in (EMAIL, PHONE, "Anna", "Lindqvist", "1990, 5, 17", "1990-05-17"):
        assert needle.lower() not in held.lower(), needle
    # And every amount stays; an erasure again changes nothing
    after = ledger.summary(member_id)
    assert (after.available, after.pending, after.lifetime) == (before.available, before.pending, before.lifetime)
    again = privacy.erase(member_id)
    assert (again.links, again.comments, again.exports, again.dead_letters) == (0, 0, 0, 0)
    assert ledger.member(member_id).erased_at == member.erased_at
    # And a late change from the shop or the CRM brings none of it back
    fakes.directory.update_profile(member_id, {"first_name": "Anna", "phone": PHONE}, clock.now + timedelta(days=1))
    fakes.directory.set_consent(member_id, "email_consent", True, clock.now + timedelta(days=1))
    fakes.directory.link_customer("shopify:demo", "7001", member_id)
    late = ledger.member(member_id)
    assert (late.first_name, late.phone, late.email_consent) == (None, None, member.email_consent)
    assert fakes.directory.member_for_customer("shopify:demo", "7001") is None


@pytest.fixture
def inbound(fakes: Fakes, ledger: Ledger, clock: FakeClock, privacy: Privacy) -> CrmInbound:
    return CrmInbound(
        ledger, fakes.directory, fakes.crm_states, fakes.offer_queue, ORG, lambda: SECRET, lambda: "token",
        clock=clock, erase_member=privacy.erase, export_member=privacy.export,
    )  # fmt: skip


def send(inbound: CrmInbound, name: str, clock: FakeClock, **changes: Any) -> dict[str, Any]:
    sent = json.loads((EVENTS / name).read_text()) | changes
    raw = json.dumps(sent).encode()
    t = str(int(clock.now.timestamp()))
    signature = hmac.new(SECRET.encode(), t.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return inbound.flow_callout(raw, {"x-loyalty-signature": f"t={t},v1={signature}"})


def test_a_crm_user_gets_a_download_link_and_erases_the_member_through_flow_callouts(
    inbound: CrmInbound, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    member_id = anna(fakes, ledger, clock)
    # When a Flow asks for the member's data
    exported = send(inbound, "flow_member_export.json", clock)
    # Then the answer links to it
    assert exported["downloadUrl"] == "exports/LM-000123/salesforce-0Fo5g00000aZ9wT-export-9a07.json"
    assert exported["duplicate"] is False and exported["expiresInDays"] == 7
    # When a Flow asks to erase the member (found by e-mail alone), and Flow sends it again
    by_email = {"id": "0035g00000LbW9eAAF", "email": EMAIL}
    first = send(inbound, "flow_member_erase.json", clock, contact=by_email)
    again = send(inbound, "flow_member_erase.json", clock, contact=by_email)
    # Then the member is erased once, and the repeat is answered as one (her e-mail finds no one now)
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    assert ledger.member(member_id).email is None and fakes.exports.files == {}
    # And another request for an e-mail the programme does not know is refused
    with pytest.raises(UnknownMemberError):
        send(inbound, "flow_member_erase.json", clock, requestId="other", contact={"email": "nobody@example.se"})


def shopify_privacy(name: str) -> QueuedWebhook:
    """One of Shopify's mandatory privacy webhooks as the receiver queues it."""
    topic = {"customers_data_request": "customers/data_request", "customers_redact": "customers/redact"}.get(
        name, "shop/redact"
    )
    body = (SHOPIFY / f"{name}.json").read_text()
    return QueuedWebhook(platform="shopify", topic=topic, shop=SHOP_DOMAIN, webhook_id=f"wh-{name}", body=body)


def test_shopifys_privacy_webhooks_export_erase_and_forget_a_shop_that_left(
    privacy: Privacy, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    applier = ShopEventApplier(
        ledger, fakes.directory, 30, load_offer_rules(), fakes.offer_queue,
        erase_member=privacy.erase, export_member=privacy.export,
    )  # fmt: skip
    shop = f"shopify:{SHOP_DOMAIN}"
    # Given the customer the requests name, a member of this shop; and two more: one of this shop only, one of two
    linnea = ledger.enrol("m-linnea", email="linnea.berg@example.se", first_name="Linnea", phone="+46705551234")
    fakes.directory.link_customer(shop, "7390212210977", linnea)
    only_here = ledger.enrol("m-only", email="only@example.se")
    fakes.directory.link_customer(shop, "1", only_here)
    both = ledger.enrol("m-both", email="both@example.se")
    fakes.directory.link_customer(shop, "2", both)
    fakes.directory.link_customer("shopify:other.myshopify.com", "9", both)
    # When the shop asks for the customer's data
    assert applier.deliver(shopify_privacy("customers_data_request")) == "member's data exported for the merchant"
    # Then the merchant's file holds it, named after the request
    exported = json.loads(fakes.exports.files[linnea, f"shopify-{SHOP_DOMAIN}-data-request-40981"])
    assert exported["member"]["email"] == "linnea.berg@example.se"
    # When the shop asks to erase the customer
    assert applier.deliver(shopify_privacy("customers_redact")) == "member erased"
    assert ledger.member(linnea).email is None and fakes.exports.files == {}
    assert applier.deliver(shopify_privacy("customers_redact")) == "privacy request: the customer is not a member"
    # When the shop, 48 hours after leaving the app, asks to erase its customers
    assert applier.deliver(shopify_privacy("shop_redact")) == (
        "shop's customers erased: 1 members, 1 kept for their other shops"
    )
    # Then its only-here member is erased; the other keeps their data and their other shop, without this one
    assert ledger.member(only_here).email is None
    assert ledger.member(both).email == "both@example.se"
    assert fakes.directory.customer_links(both) == ["shopify:other.myshopify.com#9"]
    assert fakes.directory.shop_customers(shop) == []
