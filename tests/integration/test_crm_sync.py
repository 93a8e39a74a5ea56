"""Pushing loyalty fields to Contacts, and sent offers as Tasks, through the Salesforce client against the local org
emulator (its schema is read from infra/salesforce, so a wrong field name fails here as in a real org); the
programme's own stores are the in-memory fakes."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.local.dynamodb_local import free_port
from infra.local.salesforce_emulator import SalesforceEmulator
from infra.local.salesforce_schema import contact_fields as schema_fields
from loyalty.adapters.salesforce import JwtCredentials, SalesforceClient
from loyalty.crm.fields import TASK_SEND_ID, contact_fields
from loyalty.crm.sync import CrmSync
from loyalty.errors import CrmRequestError, CrmRetryableError
from loyalty.fakes import Fakes
from loyalty.ledger.service import Ledger
from loyalty.offers.records import SendRecord, Status
from loyalty.programme.rules import ProgramRules
from tests.conftest import FakeClock


@pytest.fixture
def org() -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator(port=free_port()) as emulator:
        yield emulator


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def sync(
    fakes: Fakes, rules: ProgramRules, clock: FakeClock, org: SalesforceEmulator, private_key: str, sleeps: Sleeps
) -> CrmSync:
    client = salesforce_client(org, private_key, sleeps)
    ledger = Ledger(fakes.ledger_store, rules, clock=clock)
    return CrmSync(ledger, client, fakes.crm_states, fakes.directory, fakes.offer_records, sleep=sleeps)


@pytest.fixture
def client(org: SalesforceEmulator, private_key: str, sleeps: Sleeps) -> SalesforceClient:
    return salesforce_client(org, private_key, sleeps)


def salesforce_client(org: SalesforceEmulator, private_key: str, sleeps: Sleeps) -> SalesforceClient:
    credentials = JwtCredentials("local-app", private_key, "integration@loyalty.local", org.url)
    return SalesforceClient(credentials=lambda: credentials, timeout_seconds=1.0, backoff_seconds=0.01, sleep=sleeps)


def members_with_contacts(sync: CrmSync, org: SalesforceEmulator, count: int, linked: bool = True) -> list[str]:
    ids = []
    for number in range(count):
        email = f"member{number}@example.com"
        member_id = sync.ledger.enrol(f"m{number:04d}", email=email)
        contact = org.create_contact_as_user({"LastName": f"Member {number}", "Email": email})
        if linked:
            sync.directory.link_contact(member_id, contact)
        ids.append(member_id)
    return ids


def test_every_field_the_code_writes_exists_in_the_org_metadata(sync: CrmSync) -> None:
    member = sync.ledger.enrol("m1", email="m1@example.com")
    sync.ledger.bonus(member, "signup", member, points=50)
    written = set(contact_fields(sync.ledger.summary(member), sync.ledger.rules))
    assert written <= set(schema_fields())


def test_a_thousand_changed_members_in_at_most_five_calls(sync: CrmSync, org: SalesforceEmulator) -> None:
    # Given 1,000 linked members with new points, and 50 of them changed ten times (the batch holds ten
    # stream records for every member, as ten changes would send)
    members = members_with_contacts(sync, org, 1000)
    for number, member in enumerate(members):
        changes = 10 if number % 20 == 0 else 1
        for change in range(changes):
            sync.ledger.bonus(member, "review", f"{member}-{change}", points=10 - changes + change + 1)
    org.reset_counts()
    # When one batch holding all those changes is pushed
    report = sync.push([member for member in members for _ in range(10)])
    # Then 5 calls of 200 records carry the latest values
    assert org.api_calls <= 5
    assert report.pushed == 1000
    contacts = {c["Loyalty_Member_Id__c"]: c for c in org.contacts()}
    assert {contacts[m]["Loyalty_Points__c"] for m in members[::20]} == {55}
    assert {contacts[m]["Loyalty_Points__c"] for n, m in enumerate(members) if n % 20} == {10}
    assert contacts[members[0]]["Loyalty_Tier__c"] == "Bronze"


def test_only_fields_changed_since_the_last_push_are_sent(sync: CrmSync, org: SalesforceEmulator) -> None:
    (member,) = members_with_contacts(sync, org, 1)
    sync.ledger.bonus(member, "signup", member, points=10)
    sync.push([member])
    contact_id = sync.ledger.summary(member).profile.crm_contact_id
    assert contact_id is not None
    # A CRM user overwrites the tier; nothing about the member changes: no call at all
    org.update_contact_as_user(contact_id, {"Loyalty_Tier__c": "Gold"})
    org.reset_counts()
    assert sync.push([member]).unchanged == 1 and org.api_calls == 0
    # The points change: only the changed fields go, so the user's tier stays as it is
    sync.ledger.bonus(member, "review", "r1", points=5)
    sync.push([member])
    assert org.contact(contact_id)["Loyalty_Points__c"] == 15
    assert org.contact(contact_id)["Loyalty_Tier__c"] == "Gold"


def test_linking_by_email_writes_the_member_id_and_unlinked_members_are_parked(
    sync: CrmSync, org: SalesforceEmulator
) -> None:
    # Given a member whose Contact exists (e-mail in another case) and one with no Contact
    found = sync.ledger.enrol("m-found", email="Found.Person@example.com")
    contact = org.create_contact_as_user({"LastName": "Person", "Email": "found.person@EXAMPLE.com"})
    missing = sync.ledger.enrol("m-missing", email="missing@example.com")
    org.reset_counts()
    # When both are pushed
    report = sync.push([found, missing])
    # Then the first is linked (one query for the batch) and the Contact carries the member id
    assert (report.linked, report.unlinked) == (1, 1)
    assert org.contact(contact)["Loyalty_Member_Id__c"] == found
    assert sync.ledger.summary(found).profile.crm_contact_id == contact
    # And the second is parked as unlinked, visible, with no Contact created
    assert sync.store.not_in_sync("unlinked") == [(missing, "no Contact with the member's e-mail yet")]
    assert len(org.contacts()) == 1
    # When its Contact appears, the next push links it
    org.create_contact_as_user({"LastName": "Missing", "Email": "missing@example.com"})
    assert sync.push([missing]).linked == 1
    assert sync.store.not_in_sync("unlinked") == []


def test_two_contacts_with_one_email_are_not_guessed_between(sync: CrmSync, org: SalesforceEmulator) -> None:
    member = sync.ledger.enrol("m1", email="twin@example.com")
    for name in ("A", "B"):
        org.create_contact_as_user({"LastName": name, "Email": "twin@example.com"})
    sync.push([member])
    assert sync.store.not_in_sync("parked") == [(member, "2 Contacts share the member's e-mail")]
    assert all("Loyalty_Member_Id__c" not in c or not c["Loyalty_Member_Id__c"] for c in org.contacts())


@pytest.mark.parametrize(
    ("kind", "times"),
    [
        ("UNABLE_TO_LOCK_ROW", 2),
        ("REQUEST_LIMIT_EXCEEDED", 2),
        ("SERVER_ERROR", 2),
        ("INVALID_SESSION_ID", 1),
        ("TIMEOUT", 1),
    ],
)
def test_every_transient_error_ends_with_all_updates_landed(
    sync: CrmSync, org: SalesforceEmulator, sleeps: Sleeps, kind: str, times: int
) -> None:
    members = members_with_contacts(sync, org, 3)
    for member in members:
        sync.ledger.bonus(member, "signup", member, points=20)
    org.reset_counts()
    org.inject(kind, times=times, seconds=1.5 if kind == "TIMEOUT" else 0)
    report = sync.push(members)
    assert report.pushed == 3
    assert {c["Loyalty_Points__c"] for c in org.contacts()} == {20}
    assert org.api_calls <= 1 + times  # bounded: the failed tries and one that succeeds
    if kind != "INVALID_SESSION_ID":
        assert sleeps  # it backed off before retrying


def test_validation_errors_are_parked_with_their_reason(sync: CrmSync, org: SalesforceEmulator) -> None:
    members = members_with_contacts(sync, org, 3)
    org.inject("VALIDATION", record_positions=(1,))
    report = sync.push(members)
    assert (report.pushed, report.parked) == (2, 1)
    ((parked, reason),) = sync.store.not_in_sync("parked")
    assert parked == members[1] and reason is not None and "FIELD_CUSTOM_VALIDATION_EXCEPTION" in reason
    # Once the org accepts it, the next push sends it (parked members are retried, not forgotten)
    org.clear_faults()
    assert sync.push([members[1]]).pushed == 1
    assert sync.store.not_in_sync("parked") == []


def test_a_failure_that_does_not_pass_stops_after_bounded_retries(sync: CrmSync, org: SalesforceEmulator) -> None:
    members = members_with_contacts(sync, org, 1)
    org.inject("SERVER_ERROR", times=100)
    with pytest.raises(CrmRetryableError):
        sync.push(members)
    assert org.api_calls <= sync.client.max_attempts + 2


def test_pushes_slow_down_near_the_daily_limit(sync: CrmSync, org: SalesforceEmulator, sleeps: Sleeps) -> None:
    members = members_with_contacts(sync, org, 1)
    org.set_api_usage(14_700)  # 98 % of 15,000
    sync.push(members)
    assert sync.client.api_usage is not None and sync.client.api_usage[0] >= 14_700
    assert any(seconds >= 4 for seconds in sleeps)


def test_creating_contacts_is_an_option_and_never_duplicates(sync: CrmSync, org: SalesforceEmulator) -> None:
    # Given the option switched on, a member with no Contact and one whose Contact exists
    sync.create_contacts = True
    new = sync.ledger.enrol("m-new", email="new@example.com", first_name="Nora")
    known = sync.ledger.enrol("m-known", email="known@example.com")
    org.create_contact_as_user({"LastName": "Known", "Email": "known@example.com"})
    # When both are pushed twice
    first = sync.push([new, known])
    sync.push([new, known])
    # Then one Contact is created for the new member, none for the known one, and nothing twice
    assert (first.contacts_created, first.linked) == (1, 2)
    emails = sorted(c["Email"] for c in org.contacts())
    assert emails == ["known@example.com", "new@example.com"]
    created = next(c for c in org.contacts() if c["Email"] == "new@example.com")
    assert created["Loyalty_Member_Id__c"] == new


# --- Sent offers as Tasks, upserted by their send id ---------------------------------------------------------------


def offer_task(contact_id: str, send_id: str, channel: str = "Email") -> dict[str, Any]:
    """A sent offer as the programme records it: a completed Task on the member's Contact."""
    return {
        TASK_SEND_ID: send_id,
        "WhoId": contact_id,
        "Subject": "Double points weekend",
        "Status": "Completed",
        "ActivityDate": "2026-03-14",
        "Description": f"Loyalty offer sent by {channel}.",
        "Type": channel,
    }


def tasks_by_send_id(org: SalesforceEmulator) -> dict[str, dict[str, Any]]:
    return {task[TASK_SEND_ID]: task for task in org.tasks()}


def test_upserting_sent_offers_creates_tasks_and_a_repeat_updates_them(
    client: SalesforceClient, org: SalesforceEmulator
) -> None:
    # Given a member's Contact and two offers sent to it, one by e-mail and one by SMS
    contact = org.create_contact_as_user({"LastName": "Member", "Email": "member@example.com"})
    offers = [offer_task(contact, "send-1", "Email"), offer_task(contact, "send-2", "SMS")]

    # When they are upserted by their send id
    first = client.upsert_records("Task", TASK_SEND_ID, offers)

    # Then two completed Tasks are on the Contact, created, in the order sent
    assert [(r.success, r.created) for r in first] == [(True, True), (True, True)]
    tasks = tasks_by_send_id(org)
    assert [tasks[send_id]["Id"] for send_id in ("send-1", "send-2")] == [r.record_id for r in first]
    assert {(t["WhoId"], t["Status"], t["Type"]) for t in tasks.values()} == {
        (contact, "Completed", "Email"),
        (contact, "Completed", "SMS"),
    }

    # When the same send ids are pushed again (a retry), with a changed subject
    again = client.upsert_records("Task", TASK_SEND_ID, [{**offer, "Subject": "Updated"} for offer in offers])

    # Then the same Tasks are updated and nothing new is created
    assert [(r.success, r.created, r.record_id) for r in again] == [(True, False, r.record_id) for r in first]
    assert len(org.tasks()) == 2
    assert {t["Subject"] for t in org.tasks()} == {"Updated"}


def test_a_task_with_an_unknown_field_is_refused_as_invalid_field(
    client: SalesforceClient, org: SalesforceEmulator
) -> None:
    # Given a Task naming a field the org does not have (the send id under another name)
    contact = org.create_contact_as_user({"LastName": "Member"})
    record = {**offer_task(contact, "send-1"), "Loyalty_Offer_Send_Ref__c": "send-1"}

    # When it is upserted / Then the whole request is refused, not retried, and nothing is written
    with pytest.raises(CrmRequestError, match="INVALID_FIELD"):
        client.upsert_records("Task", TASK_SEND_ID, [record])
    assert org.api_calls == 1
    assert org.tasks() == []


def test_250_tasks_are_upserted_in_two_requests_with_results_by_position(
    client: SalesforceClient, org: SalesforceEmulator
) -> None:
    # Given 250 sent offers
    contact = org.create_contact_as_user({"LastName": "Member"})
    offers = [offer_task(contact, f"send-{number:03d}") for number in range(250)]
    org.reset_counts()

    # When they are upserted
    results = client.upsert_records("Task", TASK_SEND_ID, offers)

    # Then two requests (200 + 50) carry them, and each result belongs to the record in its position
    assert org.api_calls == 2
    assert len(results) == 250 and all(r.success and r.created for r in results)
    tasks = tasks_by_send_id(org)
    assert [tasks[offer[TASK_SEND_ID]]["Id"] for offer in offers] == [r.record_id for r in results]


def test_an_upsert_retried_after_a_timeout_creates_no_second_task(
    client: SalesforceClient, org: SalesforceEmulator, sleeps: Sleeps
) -> None:
    # Given an org whose answer arrives after the client has given up (the write still happens)
    contact = org.create_contact_as_user({"LastName": "Member"})
    org.inject("TIMEOUT", seconds=1.5)

    # When a sent offer is upserted, and the timed-out request has had time to land its write
    (result,) = client.upsert_records("Task", TASK_SEND_ID, [offer_task(contact, "send-1")])
    time.sleep(1.0)

    # Then the client retried, and the two writes (in whichever order they landed) make one Task
    assert sleeps and org.api_calls == 2
    org_tasks = org.tasks()
    assert len(org_tasks) == 1
    assert result.success and result.record_id == org_tasks[0]["Id"]


def sent_offer(sync: CrmSync, member_id: str, code: str) -> SendRecord:
    sent = SendRecord(
        member_id=member_id,
        dedup=f"{code}#2026-03-02#2026-03-31",
        channel="email",
        status=Status.SENT,
        request="{}",
        decided_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
        trigger="crm",
        template_key="offer_voucher",
        offer_code=code,
        subject="Ett erbjudande för dig",
        language="sv",
    )
    sync.offers.decide(sent, f"req-{code}")
    return sent


def test_sent_offers_become_completed_tasks_once(sync: CrmSync, org: SalesforceEmulator) -> None:
    # Given a linked member and an unlinked one, each sent an offer
    (linked,) = members_with_contacts(sync, org, 1)
    unlinked = sync.ledger.enrol("nobody", email="nobody@example.com")
    sends = [sent_offer(sync, linked, "SPRING"), sent_offer(sync, unlinked, "SPRING")]
    # When the sends are recorded, twice (a retried stream batch)
    first = sync.record_tasks(sends)
    sync.record_tasks(sends[:1])
    # Then the linked member's Contact has one completed Task naming the offer, channel and template
    contact_id = sync.ledger.summary(linked).profile.crm_contact_id
    tasks = [t for t in org.tasks() if t["WhoId"] == contact_id]
    assert len(tasks) == 1 and (first.tasks, first.tasks_not_recorded) == (1, 1)
    assert tasks[0]["Status"] == "Completed" and tasks[0]["Type"] == "Email"
    assert tasks[0]["Subject"] == "Loyalty offer SPRING sent by E-mail (template offer_voucher)"
    # And the unlinked member's send says why it has no Task, visible, not dropped
    record = sync.offers.find(unlinked, "SPRING#2026-03-02#2026-03-31", "email")
    assert record is not None and (record.task_state, record.task_reason) == ("no_contact", "no Contact linked")
