"""Consent rules on the ports' fakes: each channel on its own time, and the CRM's "yes" counting only once the
Contact has shown the member's "no"."""

from __future__ import annotations

from datetime import timedelta

import pytest

from loyalty.consent import apply_profile_changes
from loyalty.crm.fields import SMS_OPT_IN
from loyalty.crm.inbound import CrmInbound
from loyalty.crm.outbound_messages import ContactNotification
from loyalty.fakes import Fakes
from loyalty.ledger.service import Ledger
from loyalty.ports.crm import CrmState
from tests.conftest import FakeClock

ORG = "00D5g000004SzXzEAK"


def test_profile_changes_apply_in_time_order(fakes: Fakes, ledger: Ledger, clock: FakeClock) -> None:
    member = ledger.enrol("m1", email="m1@example.com")
    # When a newer change arrives before an older one
    assert apply_profile_changes(
        fakes.directory, member, {"sms_consent": True, "locale": "sv-SE"}, clock.now + timedelta(hours=2)
    )
    assert not apply_profile_changes(fakes.directory, member, {"sms_consent": False}, clock.now + timedelta(hours=1))
    # Then the newer one stands
    profile = ledger.summary(member).profile
    assert (profile.sms_consent, profile.locale) == (True, "sv-SE")


def test_consent_is_judged_per_channel_on_its_own_time(fakes: Fakes, ledger: Ledger, clock: FakeClock) -> None:
    member = ledger.enrol("m1", email="m1@example.com", email_consent=True, sms_consent=True)
    t0 = clock.now
    # Given a newer change of the phone number alone
    assert apply_profile_changes(fakes.directory, member, {"phone": "+46701234567"}, t0 + timedelta(hours=2))
    # When an older SMS opt-out arrives after it
    assert apply_profile_changes(fakes.directory, member, {"sms_consent": False}, t0 + timedelta(hours=1))
    # Then the opt-out is not lost to the unrelated newer change, and e-mail consent is untouched
    profile = ledger.summary(member).profile
    assert (profile.sms_consent, profile.email_consent, profile.phone) == (False, True, "+46701234567")
    assert profile.sms_consent_at == t0 + timedelta(hours=1)
    # And an even older "yes" does not undo the opt-out
    assert not apply_profile_changes(fakes.directory, member, {"sms_consent": True}, t0 + timedelta(minutes=30))
    assert ledger.summary(member).profile.sms_consent is False


@pytest.fixture
def inbound(fakes: Fakes, ledger: Ledger) -> CrmInbound:
    return CrmInbound(
        ledger, fakes.directory, fakes.crm_states, fakes.offer_queue, ORG, lambda: "secret", lambda: "token"
    )


def test_a_crm_yes_counts_only_once_the_contact_has_shown_the_members_no(
    fakes: Fakes, ledger: Ledger, inbound: CrmInbound, clock: FakeClock
) -> None:
    member = ledger.enrol("m1", email="m1@example.com", sms_consent=True)
    fakes.crm_states.save({member: CrmState(pushed={SMS_OPT_IN: True})}, clock.now)
    # Given the member opted out of SMS (the unsubscribe link), not yet pushed to the Contact
    assert apply_profile_changes(fakes.directory, member, {"sms_consent": False}, clock.now + timedelta(minutes=1))

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
    fakes.crm_states.save({member: CrmState(pushed={SMS_OPT_IN: False})}, clock.now + timedelta(minutes=3))
    inbound.apply_contact_change(contact_edit(2, 4))
    assert ledger.summary(member).profile.sms_consent is True
