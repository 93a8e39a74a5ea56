"""The member directory and product catalogue on moto: CSV seeding, out-of-order updates, guest holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from infra.seed_catalogue import main as seed_catalogue
from loyalty.adapters.dynamodb_crm_state import CrmStateStore
from loyalty.adapters.dynamodb_directory import Directory
from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.adapters.salesforce_outbound import ContactNotification
from loyalty.crm_inbound import CrmInbound
from loyalty.crm_sync import CrmState
from loyalty.program import ProgramRules
from tests.conftest import FakeClock
from tests.orders import simple_order

T0 = datetime(2026, 5, 1, 12, tzinfo=UTC)
WOO_EXPORT = (
    "\ufeffID,Type,SKU,Name,Published,Categories,Tags\n"
    '101,simple,TR-1,Trail shoe,1,"Shoes > Running, Outdoor","trail, new-arrivals"\n'
    '102,simple,SO-3,"Wool socks, 3-pack",1,Accessories,\n'
    ",simple,NOID,No id,1,Shoes,\n"
)


@pytest.fixture
def directory(moto_table: str) -> Directory:
    return Directory()


def test_catalogue_seeds_from_a_woocommerce_csv_export(directory: Directory, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # Given a WooCommerce product export (with its byte-order mark and hierarchical categories)
    export = tmp_path / "products.csv"
    export.write_text(WOO_EXPORT, encoding="utf-8")
    monkeypatch.setenv("LOYALTY_TABLE", "ignored-the-test-binds-the-table")
    monkeypatch.setattr("infra.seed_catalogue.bind_table", lambda name: None)
    # When it is seeded through the command
    assert seed_catalogue(["--shop", "woocommerce:shop.example", str(export)]) == 0
    # Then each product with an id has its categories, case-folded, paths split, tags included
    found = directory.categories_for("woocommerce:shop.example", ["101", "102", "999"])
    assert found == {
        "101": ("shoes", "running", "outdoor", "trail", "new-arrivals"),
        "102": ("accessories",),
    }


def test_an_older_product_update_does_not_overwrite_a_newer_one(directory: Directory) -> None:
    assert directory.save_product("shopify:s", "1", "Shoe", ("shoes",), T0)
    assert not directory.save_product("shopify:s", "1", "Shoe", ("sale",), T0 - timedelta(hours=1))
    assert directory.categories_for("shopify:s", ["1"]) == {"1": ("shoes",)}


def test_profile_changes_apply_in_time_order(directory: Directory, rules: ProgramRules, clock: FakeClock) -> None:
    ledger = Ledger(rules, clock=clock)
    member = ledger.enrol("m1", email="m1@example.com")
    # When a newer change arrives before an older one
    assert directory.update_profile(member, {"sms_consent": True, "locale": "sv-SE"}, clock.now + timedelta(hours=2))
    assert not directory.update_profile(member, {"sms_consent": False}, clock.now + timedelta(hours=1))
    # Then the newer one stands
    profile = ledger.summary(member).profile
    assert (profile.sms_consent, profile.locale) == (True, "sv-SE")


def test_consent_is_judged_per_channel_on_its_own_time(
    directory: Directory, rules: ProgramRules, clock: FakeClock
) -> None:
    ledger = Ledger(rules, clock=clock)
    member = ledger.enrol("m1", email="m1@example.com", email_consent=True, sms_consent=True)
    t0 = clock.now
    # Given a newer change of the phone number alone
    assert directory.update_profile(member, {"phone": "+46701234567"}, t0 + timedelta(hours=2))
    # When an older SMS opt-out arrives after it
    assert directory.update_profile(member, {"sms_consent": False}, t0 + timedelta(hours=1))
    # Then the opt-out is not lost to the unrelated newer change, and e-mail consent is untouched
    profile = ledger.summary(member).profile
    assert (profile.sms_consent, profile.email_consent, profile.phone) == (False, True, "+46701234567")
    assert profile.sms_consent_at == t0 + timedelta(hours=1)
    # And an even older "yes" does not undo the opt-out
    assert not directory.update_profile(member, {"sms_consent": True}, t0 + timedelta(minutes=30))
    assert ledger.summary(member).profile.sms_consent is False


def test_a_crm_yes_counts_only_once_the_contact_has_shown_the_members_no(
    directory: Directory, rules: ProgramRules, clock: FakeClock
) -> None:
    ledger = Ledger(rules, clock=clock)
    member = ledger.enrol("m1", email="m1@example.com", sms_consent=True)
    crm_states = CrmStateStore()
    crm_states.save(member, CrmState(pushed={"Loyalty_SMS_Opt_In__c": True}), clock.now)
    inbound = CrmInbound(ledger, directory, crm_states, send_offers=lambda requests: None)
    # Given the member opted out of SMS (the unsubscribe link), not yet pushed to the Contact
    assert directory.update_profile(member, {"sms_consent": False}, clock.now + timedelta(minutes=1))

    def contact_edit(number: int, minutes: int) -> ContactNotification:  # a CRM user edits the phone
        return ContactNotification(
            notification_id=f"n{number}",
            contact_id="003000000000001AAA",
            last_modified=clock.now + timedelta(minutes=minutes),
            loyalty_member_id=member,
            mobile_phone=f"+4670123456{number}",
            sms_opt_in=True,  # an Outbound Message carries every field: the Contact's old "yes"
        )

    # When the Contact's old "yes" comes with a newer edit
    inbound.apply_contact_change(contact_edit(1, 2))
    # Then the phone changes but the opt-out stands
    profile = ledger.summary(member).profile
    assert (profile.phone, profile.sms_consent) == ("+46701234561", False)
    # When the Contact has shown the opt-out and a CRM user ticks the box again, that counts
    crm_states.save(member, CrmState(pushed={"Loyalty_SMS_Opt_In__c": False}), clock.now + timedelta(minutes=3))
    inbound.apply_contact_change(contact_edit(2, 4))
    assert ledger.summary(member).profile.sms_consent is True


def test_guest_orders_are_held_until_their_hold_ends(directory: Directory, clock: FakeClock) -> None:
    order = simple_order("g1", clock.now)
    directory.hold_guest_order("Guest@Example.com", order, until=clock.now + timedelta(days=30))
    assert directory.held_orders("guest@example.com", clock.now + timedelta(days=29)) == [order]
    assert directory.held_orders("guest@example.com", clock.now + timedelta(days=31)) == []
    directory.drop_held_order("guest@example.com", order)
    assert directory.held_orders("guest@example.com", clock.now) == []
