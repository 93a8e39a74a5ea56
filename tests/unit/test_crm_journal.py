"""The transaction journal on the Contact, on the ports' fakes: each new ledger entry recorded once on its member's
Contact as a Loyalty_Transaction__c (points, kind, reason, order, date), a member's earlier entries of the window
when they are first linked, nothing for a member without a Contact, and nothing older than the window."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from loyalty.crm.fields import JOURNAL, MEMBER_ID
from loyalty.crm.sync import CrmSync
from loyalty.errors import CrmRetryableError
from loyalty.fakes import Fakes
from loyalty.ledger.service import Ledger
from tests.conftest import FakeClock
from tests.orders import simple_order


@pytest.fixture
def sync(fakes: Fakes, ledger: Ledger, clock: FakeClock) -> CrmSync:
    return CrmSync(
        ledger, fakes.org, fakes.crm_states, fakes.directory, fakes.offer_records, sleep=lambda _: None, clock=clock,
        journal_months=24,
    )  # fmt: skip


def journal(fakes: Fakes) -> list[dict[str, object]]:
    return sorted(fakes.org.records[JOURNAL].values(), key=lambda record: str(record["Entry_Date__c"]))


def test_each_new_entry_is_recorded_once_on_the_members_contact(
    fakes: Fakes, ledger: Ledger, clock: FakeClock, sync: CrmSync
) -> None:
    # Given a member linked to their Contact
    ledger.enrol("m1", email="anna@example.se")
    contact_id = fakes.org.add_contact(LastName="Andersson", Email="anna@example.se", **{MEMBER_ID: "m1"})
    sync.sync({"m1"}, [])
    # When they order and the stream brings the entry (twice, as a retried batch does)
    order = ledger.accrue("m1", simple_order("1001", clock.now)).entry
    for _ in range(2):
        sync.sync({"m1"}, [], entries=[order])
    # Then the Contact's journal has the order once, with its points, kind, reason, order and date
    records = [r for r in journal(fakes) if r["Kind__c"] == "accrual"]
    assert len(records) == 1
    (record,) = records
    assert record["Contact__c"] == contact_id and record["Member_Id__c"] == "m1"
    assert (record["Points__c"], record["Pending_Points__c"]) == (0, order.pending)
    assert record["Reason__c"] == order.reason and record["Order__c"] == "shopify:demo#1001"
    assert record["Entry_Date__c"] == order.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def test_a_member_first_linked_gets_the_windows_earlier_entries_and_one_without_a_contact_waits(
    fakes: Fakes, ledger: Ledger, clock: FakeClock, sync: CrmSync
) -> None:
    # Given a member with an entry from three years ago and two this year, and no Contact yet
    clock.now = datetime(2023, 3, 2, 9, tzinfo=UTC)
    ledger.enrol("m1", email="bo@example.se")
    ledger.bonus("m1", "signup", "m1")
    clock.now = datetime(2026, 3, 2, 9, tzinfo=UTC)
    recent = ledger.accrue("m1", simple_order("2001", clock.now)).entry
    adjusted = ledger.adjust("m1", 5, actor="salesforce-user:005", reason="goodwill", adjustment_id="a1").entry
    # When the stream brings the recent entries before the member has a Contact
    report = sync.sync({"m1"}, [], entries=[recent, adjusted])
    # Then nothing is recorded yet
    assert report.journal == 0 and journal(fakes) == []
    # When a CRM user creates the Contact and the member's next change links it
    fakes.org.add_contact(LastName="Berg", Email="bo@example.se")
    clock.advance(minutes=1)
    report = sync.sync({"m1"}, [])
    # Then the entries of the last 24 months are recorded, the signup bonus of three years ago is not
    assert sorted(r["Kind__c"] for r in journal(fakes)) == ["accrual", "adjustment"]
    assert report.journal == 2 and report.newly_linked == ("m1",)


def test_a_journal_record_the_org_cannot_take_now_retries_the_batch(
    fakes: Fakes, ledger: Ledger, clock: FakeClock, sync: CrmSync
) -> None:
    ledger.enrol("m1", email="cai@example.se")
    fakes.org.add_contact(LastName="Cai", Email="cai@example.se", **{MEMBER_ID: "m1"})
    sync.sync({"m1"}, [])
    entry = ledger.bonus("m1", "birthday", "2026").entry
    fakes.org.fail_records("UNABLE_TO_LOCK_ROW")
    with pytest.raises(CrmRetryableError):
        sync.sync(set(), [], entries=[entry])
    assert sync.sync(set(), [], entries=[entry]).journal == 1  # the retried batch records it
    assert len(journal(fakes)) == 1


def test_the_daily_trim_deletes_the_journal_older_than_its_window_and_keeps_the_rest(
    fakes: Fakes, ledger: Ledger, clock: FakeClock, sync: CrmSync
) -> None:
    # Given a member's journal of entries three years, a year and a day old
    clock.now = datetime(2023, 11, 1, 9, tzinfo=UTC)
    ledger.enrol("m1", email="dan@example.se")
    fakes.org.add_contact(LastName="Dahl", Email="dan@example.se", **{MEMBER_ID: "m1"})
    sync.sync({"m1"}, [])
    written = []
    for moment in (
        datetime(2023, 11, 2, tzinfo=UTC),
        datetime(2025, 12, 1, tzinfo=UTC),
        datetime(2026, 11, 30, tzinfo=UTC),
    ):
        clock.now = moment
        written.append(ledger.bonus("m1", "review", moment.isoformat(), points=5).entry)
        sync.sync(set(), [], entries=written[-1:])
    assert len(journal(fakes)) == 3
    # When the daily trim runs on 1 December 2026 (a window of 24 months), twice
    clock.now = datetime(2026, 12, 1, 2, tzinfo=UTC)
    assert sync.trim_journal(batch=1) == 1
    assert sync.trim_journal() == 0
    # Then the entry older than 24 months is gone, the others stay
    assert [r["Entry_Date__c"][:10] for r in journal(fakes)] == ["2025-12-01", "2026-11-30"]


def test_an_erased_member_is_forgotten_in_the_org_and_never_pushed_again(
    fakes: Fakes, ledger: Ledger, clock: FakeClock, sync: CrmSync
) -> None:
    from loyalty.crm.fields import TASK_SEND_ID

    # Given a linked member with a journal entry and a Task the programme wrote, and a Task a CRM user wrote
    ledger.enrol("m1", email="dag@example.se")
    contact_id = fakes.org.add_contact(LastName="Dag", Email="dag@example.se", **{MEMBER_ID: "m1"})
    sync.sync({"m1"}, [])
    order = ledger.accrue("m1", simple_order("3001", clock.now)).entry
    sync.sync({"m1"}, [], entries=[order])
    fakes.org.upsert_records("Task", TASK_SEND_ID, [{"WhoId": contact_id, TASK_SEND_ID: "m1#offer", "Subject": "x"}])
    fakes.org.create_records("Task", [{"WhoId": contact_id, "Subject": "a call the CRM user logged"}])
    assert journal(fakes) and ledger.summary("m1").profile.crm_contact_id == contact_id
    # When the person is erased and the stream brings the member's change
    ledger.erase_personal_data("m1")
    report = sync.sync({"m1"}, [])
    # Then the journal and the programme's Task are gone, the Contact's loyalty fields blank, the member unlinked
    assert report.forgotten == 1 and journal(fakes) == []
    assert [task["Subject"] for task in fakes.org.tasks()] == ["a call the CRM user logged"]
    contact = fakes.org.records["Contact"][contact_id]
    assert contact[MEMBER_ID] is None and contact["Loyalty_Points__c"] is None and contact["LastName"] == "Dag"
    assert ledger.summary("m1").profile.crm_contact_id is None
    # And their next change pushes nothing and links nothing again
    calls = fakes.org.calls
    assert sync.sync({"m1"}, []).forgotten == 0 and fakes.org.calls == calls
    assert fakes.org.records["Contact"][contact_id][MEMBER_ID] is None


def test_a_member_a_crm_user_linked_to_a_new_contact_gets_the_windows_entries_at_the_next_push(
    fakes: Fakes, ledger: Ledger, clock: FakeClock, sync: CrmSync
) -> None:
    # Given a member with an order and no Contact, pushed (unlinked)
    ledger.enrol("m1", email="eva@example.se")
    ledger.accrue("m1", simple_order("4001", clock.now))
    sync.sync({"m1"}, [])
    assert journal(fakes) == []
    # When a CRM user creates their Contact and its Outbound Message links the member (not the push)
    contact_id = fakes.org.add_contact(LastName="Eva", Email="eva@example.se")
    fakes.directory.link_contact("m1", contact_id)
    report = sync.sync({"m1"}, [])
    # Then the push fills the Contact and its journal with the window's entries
    assert report.newly_linked == ("m1",) and [r["Kind__c"] for r in journal(fakes)] == ["accrual"]
    assert sync.sync({"m1"}, []).newly_linked == ()
