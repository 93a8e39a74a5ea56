"""Contacts that catch up by themselves, on the ports' fakes: an unlinked member linked as soon as an Outbound Message
shows their Contact, or by the daily sweep; a member whose push ran out of retries pushed again once Salesforce
answers. The table's stream is played by hand: a member whose item changed, or whose push a job asked for again
(``crm_states.push_requests``), is handed to the push as crm_sync would receive them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from loyalty.consent import apply_profile_changes
from loyalty.crm.fields import EMAIL, LAST_NAME, MEMBER_ID, POINTS
from loyalty.crm.inbound import CrmInbound
from loyalty.crm.outbound_messages import ContactNotification
from loyalty.crm.sync import CrmSync
from loyalty.errors import CrmRetryableError
from loyalty.fakes import Fakes
from loyalty.jobs import ScheduledJobs
from loyalty.ledger.service import Ledger
from loyalty.offers.rules import load_offer_rules
from tests.conftest import FakeClock

ORG = "00D5g000004SzXzEAK"


@pytest.fixture
def sync(fakes: Fakes, ledger: Ledger, clock: FakeClock) -> CrmSync:
    return CrmSync(
        ledger, fakes.org, fakes.crm_states, fakes.directory, fakes.offer_records, sleep=lambda _: None, clock=clock
    )


@pytest.fixture
def inbound(fakes: Fakes, ledger: Ledger, clock: FakeClock) -> CrmInbound:
    crm = (fakes.directory, fakes.crm_states, fakes.offer_queue)
    return CrmInbound(ledger, *crm, ORG, lambda: "secret", lambda: "token", clock=clock)


@pytest.fixture
def jobs(fakes: Fakes, ledger: Ledger) -> ScheduledJobs:
    return ScheduledJobs(
        ledger, fakes.reviews, fakes.job_runs, fakes.offer_queue, load_offer_rules(), fakes.offer_records,
        page_size=2, workers=2, crm_states=fakes.crm_states,
    )  # fmt: skip


def asked_again(fakes: Fakes) -> list[str]:
    """The members whose push a job asked for again, as the stream hands them to crm_sync (each once)."""
    requested, fakes.crm_states.push_requests[:] = list(fakes.crm_states.push_requests), []
    return requested


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


def test_a_duplicate_contact_with_a_members_email_does_not_undo_their_opt_out_or_change_their_phone(
    sync: CrmSync, inbound: CrmInbound, fakes: Fakes, clock: FakeClock
) -> None:
    # Given a member linked to their Contact, opted out of e-mail, with a phone
    member = sync.ledger.enrol("erik", email="erik@example.com", email_consent=False)
    own = fakes.org.add_contact(**{LAST_NAME: "Erik", EMAIL: "erik@example.com"})
    assert apply_profile_changes(fakes.directory, member, {"phone": "+46701112233"}, clock.now)
    sync.push([member])
    # When a CRM user creates a duplicate Contact with the same e-mail (e-mail allowed by default, another phone)
    clock.advance(minutes=5)
    duplicate = fakes.org.add_contact(**{LAST_NAME: "Erik (dup)", EMAIL: "erik@example.com"})
    change = created_in_the_crm(
        duplicate, "erik@example.com", clock.now, has_opted_out_of_email=False, mobile_phone="+46709998877"
    )
    # Then its message changes nothing about the member
    assert inbound.apply_contact_change(change) == "another Contact with the member's e-mail: ignored"
    profile = sync.ledger.summary(member).profile
    assert (profile.crm_contact_id, profile.email_consent, profile.phone) == (own, False, "+46701112233")


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


def test_the_daily_sweep_links_a_member_whose_contact_appeared_without_a_message(
    sync: CrmSync, jobs: ScheduledJobs, fakes: Fakes
) -> None:
    # Given three unlinked members, one of whom now has a Contact (created where no message was sent)
    members = [unlinked_member(sync, f"{name}@example.com") for name in ("eva", "filip", "gun")]
    contact = fakes.org.add_contact(**{LAST_NAME: "Filip", EMAIL: "filip@example.com"})
    # When the sweep runs (two members a page), and the stream brings the members it asked for to the push
    report = jobs.run("crm_link", sync.ledger.rules.local_date(sync.ledger.clock()))
    assert (report.processed, report.complete) == (3, True)
    requested = asked_again(fakes)
    assert sorted(requested) == sorted(members)
    pushed = sync.push(requested)
    # Then the member with a Contact is linked and the Contact filled; the others stay listed for tomorrow
    assert pushed.linked == 1
    assert fakes.org.records["Contact"][contact][MEMBER_ID] == members[1]
    assert [m for m, _ in fakes.crm_states.not_in_sync("unlinked")] == [members[0], members[2]]


def test_a_contact_left_stale_by_a_long_outage_catches_up_without_a_new_order(
    sync: CrmSync, jobs: ScheduledJobs, fakes: Fakes
) -> None:
    # Given a member whose Contact shows their points
    member = sync.ledger.enrol("hanna", email="hanna@example.com")
    contact = fakes.org.add_contact(**{LAST_NAME: "Hanna", EMAIL: "hanna@example.com"})
    sync.push([member])
    # When points are earned while Salesforce is down, and every retry of the push fails
    sync.ledger.bonus(member, "review", "r1", points=75)
    fakes.org.unavailable = 1_000_000
    for _ in range(3):  # Lambda retries the batch, then gives up (the failure queue gets its sequence numbers)
        with pytest.raises(CrmRetryableError):
            sync.push([member])
    # Then the Contact is behind, and the member is listed as stale, saying why
    assert fakes.org.records["Contact"][contact].get(POINTS) == 0
    [(listed, reason)] = fakes.crm_states.not_in_sync("stale")
    assert listed == member and reason is not None and "CrmRetryableError" in reason
    # When the hourly job runs while Salesforce is still down, the push fails again and the member stays listed
    jobs.run("crm_retry", sync.ledger.rules.local_date(sync.ledger.clock()))
    with pytest.raises(CrmRetryableError):
        sync.push(asked_again(fakes))
    assert [m for m, _ in fakes.crm_states.not_in_sync("stale")] == [member]
    # When Salesforce answers again and the job runs, with no new order
    fakes.org.unavailable = 0
    jobs.run("crm_retry", sync.ledger.rules.local_date(sync.ledger.clock()))
    report = sync.push(asked_again(fakes))
    # Then the Contact catches up and nobody is listed
    assert report.pushed == 1
    assert fakes.org.records["Contact"][contact][POINTS] == 75
    assert fakes.crm_states.not_in_sync("stale") == []


def test_contacts_still_locked_after_the_retries_are_listed_as_stale_and_the_others_pushed(
    sync: CrmSync, fakes: Fakes
) -> None:
    # Given two linked members with new points
    members = []
    for name in ("ida", "jon"):
        member = sync.ledger.enrol(name, email=f"{name}@example.com")
        fakes.org.add_contact(**{LAST_NAME: name, EMAIL: f"{name}@example.com"})
        sync.push([member])
        sync.ledger.bonus(member, "review", "r1", points=10)
        members.append(member)
    # When the first one's Contact stays locked through all four tries (the second's through three)
    fakes.org.fail_records("UNABLE_TO_LOCK_ROW", times=7)  # records written fail in turn: ida, jon, ida ... ida
    with pytest.raises(CrmRetryableError):
        sync.push(members)
    # Then the other's push landed, and only the locked one is listed as stale
    assert [m for m, _ in fakes.crm_states.not_in_sync("stale")] == [members[0]]
    assert fakes.crm_states.states([members[1]])[members[1]].status == "synced"
