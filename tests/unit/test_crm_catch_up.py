"""Contacts that catch up by themselves, on the ports' fakes: an unlinked member linked as soon as an Outbound Message
shows their Contact. The table's stream is played by hand: a member whose item changed is handed to the push as
crm_sync would receive them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from loyalty.consent import apply_profile_changes
from loyalty.crm.fields import EMAIL, LAST_NAME, MEMBER_ID, POINTS
from loyalty.crm.inbound import CrmInbound
from loyalty.crm.outbound_messages import ContactNotification
from loyalty.crm.sync import CrmSync
from loyalty.fakes import Fakes
from loyalty.ledger.service import Ledger
from tests.conftest import FakeClock

ORG = "00D5g000004SzXzEAK"


@pytest.fixture
def sync(fakes: Fakes, ledger: Ledger, clock: FakeClock) -> CrmSync:
    return CrmSync(
        ledger, fakes.org, fakes.crm_states, fakes.directory, fakes.offer_records, sleep=lambda _: None, clock=clock
    )


@pytest.fixture
def inbound(fakes: Fakes, ledger: Ledger) -> CrmInbound:
    return CrmInbound(ledger, fakes.directory, fakes.crm_states, fakes.offer_queue, ORG, lambda: "secret")


def created_in_the_crm(contact_id: str, email: str, at: datetime, **fields: object) -> ContactNotification:
    """The Outbound Message a CRM user's new Contact sends (the member id field still empty)."""
    return ContactNotification(
        notification_id=f"04l{contact_id[-6:]}", contact_id=contact_id, last_modified=at, email=email, **fields
    )


def unlinked_member(sync: CrmSync, email: str) -> str:
    """A member with points whose push found no Contact with their e-mail."""
    member = sync.ledger.enrol(email.split("@")[0], email=email)
    sync.ledger.bonus(member, "signup", member, points=40)
    assert sync.push([member]).unlinked == 1
    return member


def test_an_outbound_message_links_an_unlinked_member_at_once_and_the_push_fills_the_contact(
    sync: CrmSync, inbound: CrmInbound, fakes: Fakes, clock: FakeClock
) -> None:
    # Given a member parked as unlinked
    member = unlinked_member(sync, "anna@example.com")
    assert fakes.crm_states.not_in_sync("unlinked") == [(member, "no Contact with the member's e-mail yet")]
    # When a CRM user creates a Contact with the member's e-mail (in another case) and its message arrives
    contact = fakes.org.add_contact(**{LAST_NAME: "Berg", EMAIL: "Anna@Example.com"})
    outcome = inbound.apply_contact_change(created_in_the_crm(contact, "Anna@Example.com", clock.now))
    # Then the member is linked at once
    assert outcome.startswith("member linked to the Contact")
    assert sync.ledger.summary(member).profile.crm_contact_id == contact
    # And the push the change brings (from the stream) writes the member id and the points, and unparks them
    report = sync.push([member])
    assert (report.pushed, report.linked) == (1, 0)
    assert fakes.org.records["Contact"][contact][MEMBER_ID] == member
    assert fakes.org.records["Contact"][contact][POINTS] == 40
    assert fakes.crm_states.not_in_sync("unlinked") == []


def test_a_late_outbound_message_links_even_when_the_member_changed_since(
    sync: CrmSync, inbound: CrmInbound, fakes: Fakes, clock: FakeClock
) -> None:
    # Given an unlinked member, and a Contact a CRM user created a while ago
    member = unlinked_member(sync, "berit@example.com")
    contact = fakes.org.add_contact(**{LAST_NAME: "Lund", EMAIL: "berit@example.com"})
    created_at = clock.now
    # And the member changed their phone in the shop after that
    clock.advance(minutes=30)
    assert apply_profile_changes(fakes.directory, member, {"phone": "+46701234567"}, clock.now)
    # When the Contact's message arrives late (Salesforce redelivers for up to a day)
    inbound.apply_contact_change(created_in_the_crm(contact, "berit@example.com", created_at, mobile_phone="+4670"))
    # Then the member is linked all the same, and the shop's newer phone stands
    profile = sync.ledger.summary(member).profile
    assert (profile.crm_contact_id, profile.phone) == (contact, "+46701234567")


def test_a_second_contact_with_a_linked_members_email_does_not_take_the_link(
    sync: CrmSync, inbound: CrmInbound, fakes: Fakes, clock: FakeClock
) -> None:
    # Given a member linked to their Contact
    member = sync.ledger.enrol("carl", email="carl@example.com")
    own = fakes.org.add_contact(**{LAST_NAME: "Carl", EMAIL: "carl@example.com"})
    sync.push([member])
    assert sync.ledger.summary(member).profile.crm_contact_id == own
    # When a CRM user creates a duplicate Contact with the same e-mail
    clock.advance(minutes=5)
    duplicate = fakes.org.add_contact(**{LAST_NAME: "Carl (dup)", EMAIL: "carl@example.com"})
    inbound.apply_contact_change(created_in_the_crm(duplicate, "carl@example.com", clock.now))
    # Then the member stays linked to their own Contact
    assert sync.ledger.summary(member).profile.crm_contact_id == own


def test_a_member_parked_for_two_contacts_with_their_email_is_not_linked_by_either_message(
    sync: CrmSync, inbound: CrmInbound, fakes: Fakes, clock: FakeClock
) -> None:
    # Given two Contacts sharing a member's e-mail: the push parks the member for a person to choose
    member = sync.ledger.enrol("dora", email="dora@example.com")
    first = fakes.org.add_contact(**{LAST_NAME: "Dora", EMAIL: "dora@example.com"})
    fakes.org.add_contact(**{LAST_NAME: "Dora B", EMAIL: "dora@example.com"})
    assert sync.push([member]).parked == 1
    # When one of them sends a message
    inbound.apply_contact_change(created_in_the_crm(first, "dora@example.com", clock.now + timedelta(minutes=1)))
    # Then no guess is made: the member stays parked and unlinked
    assert sync.ledger.summary(member).profile.crm_contact_id is None
    assert fakes.crm_states.not_in_sync("parked") == [(member, "2 Contacts share the member's e-mail")]
