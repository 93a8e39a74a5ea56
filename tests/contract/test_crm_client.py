"""The CRM client's contract, on the in-memory org and on the Salesforce client against the local org emulator
(whose schema comes from infra/salesforce): lookups, collection writes with results by position, and refusals."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest

from infra.local.dynamodb_local import free_port
from infra.local.salesforce_emulator import SalesforceEmulator, to_18_char_id
from loyalty.crm.fields import EMAIL, JOURNAL, JOURNAL_DATE, JOURNAL_KEY, LAST_NAME, MEMBER_ID, POINTS, TASK_SEND_ID
from loyalty.errors import CrmRequestError
from loyalty.fakes.crm import InMemoryOrg
from loyalty.ports.crm import CrmClient


@dataclass
class Org:
    """The org under a client, with the CRM user's side of it (adding, deleting, faults) for the tests."""

    client: CrmClient
    add_contact: Any
    delete_contact: Any
    contacts: Any
    tasks: Any
    lock_next_record: Any


@pytest.fixture(params=["memory", "salesforce"])
def org(request: pytest.FixtureRequest) -> Iterator[Org]:
    if request.param == "memory":
        fake = InMemoryOrg()
        yield Org(fake, fake.add_contact, fake.delete, fake.contacts, fake.tasks,
                  lambda: fake.fail_records("UNABLE_TO_LOCK_ROW"))  # fmt: skip
        return
    from loyalty.adapters.salesforce import JwtCredentials, SalesforceClient

    with SalesforceEmulator(port=free_port()) as emulator:
        credentials = JwtCredentials("local-app", request.getfixturevalue("private_key"), "integration@x", emulator.url)
        client = SalesforceClient(credentials=lambda: credentials, timeout_seconds=2.0, backoff_seconds=0.01,
                                  sleep=lambda seconds: None)  # fmt: skip

        def delete(contact_id: str) -> None:
            url = f"{emulator.url}/services/data/v62.0/sobjects/Contact/{contact_id}"
            call = urllib.request.Request(url, method="DELETE", headers={"Authorization": "Bearer local"})
            urllib.request.urlopen(call, timeout=5).close()

        yield Org(
            client,
            lambda **fields: emulator.create_contact_as_user(fields),
            delete,
            emulator.contacts,
            emulator.tasks,
            lambda: emulator.inject("UNABLE_TO_LOCK_ROW", times=1, record_positions=(0,)),
        )


def test_contacts_are_found_by_member_id_and_by_email_in_any_case(org: Org) -> None:
    anna = org.add_contact(**{LAST_NAME: "Berg", EMAIL: "Anna.Berg@Example.com", MEMBER_ID: "mbr_1"})
    twin_a = org.add_contact(**{LAST_NAME: "A", EMAIL: "twin@example.com"})
    twin_b = org.add_contact(**{LAST_NAME: "B", EMAIL: "TWIN@example.com"})
    assert org.client.contacts_by_member_id(["mbr_1", "mbr_2"]) == {"mbr_1": anna}
    found = org.client.contacts_by_email(["anna.berg@example.com", "twin@example.com", "nobody@example.com"])
    assert {email: sorted(ids) for email, ids in found.items()} == {
        "anna.berg@example.com": [anna],
        "twin@example.com": sorted([twin_a, twin_b]),
    }


def test_updates_answer_per_record_in_order(org: Org) -> None:
    kept = org.add_contact(**{LAST_NAME: "Kept"})
    gone = org.add_contact(**{LAST_NAME: "Gone"})
    org.delete_contact(gone)
    never = to_18_char_id("0035g00000ZZZZZ")
    results = org.client.update_records(
        "Contact", [{"Id": kept, POINTS: 10}, {"Id": gone, POINTS: 5}, {"Id": never, POINTS: 1}]
    )
    assert [(r.success, r.errors[0][0] if r.errors else None) for r in results] == [
        (True, None),
        (False, "ENTITY_IS_DELETED"),
        (False, "INVALID_CROSS_REFERENCE_KEY"),
    ]
    assert next(c for c in org.contacts() if c["Id"] == kept)[POINTS] == 10


def test_a_locked_record_fails_alone_and_may_be_retried(org: Org) -> None:
    first = org.add_contact(**{LAST_NAME: "First"})
    second = org.add_contact(**{LAST_NAME: "Second"})
    org.lock_next_record()
    results = org.client.update_records("Contact", [{"Id": first, POINTS: 1}, {"Id": second, POINTS: 2}])
    assert [(r.success, r.retryable) for r in results] == [(False, True), (True, False)]
    (again,) = org.client.update_records("Contact", [{"Id": first, POINTS: 1}])
    assert again.success


def test_created_contacts_need_a_last_name_and_a_member_id_of_their_own(org: Org) -> None:
    org.add_contact(**{LAST_NAME: "Taken", MEMBER_ID: "mbr_1"})
    results = org.client.create_records(
        "Contact",
        [
            {LAST_NAME: "Nora", EMAIL: "nora@example.com", MEMBER_ID: "mbr_2"},
            {EMAIL: "noname@example.com", MEMBER_ID: "mbr_3"},
            {LAST_NAME: "Twin", MEMBER_ID: "mbr_1"},
        ],
    )
    assert [(r.success, r.errors[0][0] if r.errors else None) for r in results] == [
        (True, None),
        (False, "REQUIRED_FIELD_MISSING"),
        (False, "DUPLICATE_VALUE"),
    ]
    created = next(c for c in org.contacts() if c.get(MEMBER_ID) == "mbr_2")
    assert created["Id"] == results[0].record_id and created[EMAIL] == "nora@example.com"


def task(contact_id: str, send_id: str, subject: str = "Double points weekend") -> dict[str, Any]:
    return {
        TASK_SEND_ID: send_id,
        "WhoId": contact_id,
        "Subject": subject,
        "Status": "Completed",
        "ActivityDate": "2026-03-14",
        "Description": "Loyalty offer sent by Email.",
        "Type": "Email",
    }


def test_an_upsert_creates_once_and_a_repeat_updates(org: Org) -> None:
    contact = org.add_contact(**{LAST_NAME: "Member"})
    first = org.client.upsert_records("Task", TASK_SEND_ID, [task(contact, "send-1"), task(contact, "send-2")])
    assert [(r.success, r.created) for r in first] == [(True, True), (True, True)]
    again = org.client.upsert_records("Task", TASK_SEND_ID, [task(contact, "send-1", "Updated")])
    assert [(r.success, r.created, r.record_id) for r in again] == [(True, False, first[0].record_id)]
    assert sorted(t["Subject"] for t in org.tasks()) == ["Double points weekend", "Updated"]


def test_an_unknown_field_refuses_the_whole_request_and_writes_nothing(org: Org) -> None:
    contact = org.add_contact(**{LAST_NAME: "Member"})
    with pytest.raises(CrmRequestError, match="INVALID_FIELD"):
        org.client.upsert_records("Task", TASK_SEND_ID, [{**task(contact, "send-1"), "Loyalty_Nope__c": "x"}])
    with pytest.raises(CrmRequestError, match="INVALID_FIELD"):
        org.client.update_records("Contact", [{"Id": contact, "Loyalty_Points_Typo__c": 1}])
    assert org.tasks() == []


def test_journal_records_are_upserted_once_and_those_older_than_a_moment_found_and_deleted(org: Org) -> None:
    contact = org.add_contact(**{LAST_NAME: "Member"})
    dates = ["2024-01-05T09:00:00.000Z", "2024-06-01T09:00:00.000Z", "2026-11-20T10:00:00.000Z"]
    records = [
        {"Entry_Key__c": f"m1#bonus#{n}", "Contact__c": contact, "Member_Id__c": "m1", "Points__c": 10,
         "Pending_Points__c": 0, "Kind__c": "bonus", "Reason__c": "Signup", "Entry_Date__c": at}
        for n, at in enumerate(dates)
    ]  # fmt: skip
    assert all(r.success and r.created for r in org.client.upsert_records(JOURNAL, JOURNAL_KEY, records))
    assert [r.created for r in org.client.upsert_records(JOURNAL, JOURNAL_KEY, records[:1])] == [False]
    # The oldest first, up to the limit; only those before the moment
    cutoff = datetime(2024, 12, 1, tzinfo=UTC)
    oldest = org.client.ids_before(JOURNAL, JOURNAL_DATE, cutoff, limit=1)
    both = org.client.ids_before(JOURNAL, JOURNAL_DATE, cutoff, limit=100)
    assert len(oldest) == 1 and len(both) == 2 and oldest[0] == both[0]
    # Deleted, each answered; a record already gone says so
    assert [r.success for r in org.client.delete_records(JOURNAL, both)] == [True, True]
    assert org.client.ids_before(JOURNAL, JOURNAL_DATE, cutoff, limit=100) == []
    (again,) = org.client.delete_records(JOURNAL, both[:1])
    assert not again.success and again.errors[0][0] == "ENTITY_IS_DELETED"
    assert org.client.ids_before(JOURNAL, JOURNAL_DATE, datetime(2027, 1, 1, tzinfo=UTC), limit=100) != []
