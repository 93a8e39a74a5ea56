"""The offer records' contract: one decision per member, offer and channel, claims, holds, Tasks and caps; on the
fake and on DynamoDB Local."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from loyalty.errors import UnknownRecordError
from loyalty.ledger.state import Commit, MemberState
from loyalty.offers.records import CapChange, CapState, OfferReading, OfferState, RecordWrite, SendRecord, Status
from tests.contract.conftest import Stores

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)
RECORD = SendRecord(
    member_id="m1",
    dedup="DOUBLE1#2026-11-20#2026-12-20",
    channel="email",
    status=Status.SENDING,
    request='{"request_id": "r1"}',
    decided_at=T0,
    trigger="crm",
    template_key="offer_points_multiplier",
    offer_code="DOUBLE1",
)


def enrolled(stores: Stores) -> MemberState:
    member = MemberState(
        member_id="m1",
        enrolled_at=T0,
        email="anna@example.se",
        first_name="Anna",
        email_consent=True,
        last_activity=T0,
        profile_updated_at=T0,
    )
    assert stores.ledger.enrol(member, T0.date()) is Commit.APPLIED
    return member


def test_a_claim_is_taken_once_and_decided(stores: Stores) -> None:
    records = stores.offer_records
    assert records.find("m1", RECORD.dedup, "email") is None
    # When two deliveries claim the same offer and channel
    assert records.commit([RecordWrite(RECORD, held=False, before=T0 - timedelta(minutes=2))], "r1")
    assert not records.commit([RecordWrite(RECORD, held=False, before=T0 - timedelta(minutes=2))], "r1")
    assert records.find("m1", RECORD.dedup, "email") == RECORD
    # When it is decided as sent, with its evidence
    sent = replace(RECORD, status=Status.SENT, message_id="msg-1", subject="Dubbla poäng", language="sv")
    evidence = {"checked_at": T0.isoformat(), "programme": {"flag": "email_consent", "value": True}}
    records.decide(sent, "r1", evidence)
    # Then it reads back with its evidence and a Task waiting for the CRM
    assert records.find("m1", RECORD.dedup, "email") == replace(sent, evidence=evidence, task_state="pending")
    records.mark_task("m1", RECORD.dedup, "email", "refused", "FIELD_CUSTOM_VALIDATION_EXCEPTION: no")
    found = records.find("m1", RECORD.dedup, "email")
    assert found is not None and (found.task_state, found.task_reason) == (
        "refused",
        "FIELD_CUSTOM_VALIDATION_EXCEPTION: no",
    )
    assert records.sent("m1") == [found]
    assert records.sent("m2") == []


def test_a_claim_is_released_for_the_next_delivery_and_a_dead_one_taken_over(stores: Stores) -> None:
    records = stores.offer_records
    assert records.commit([RecordWrite(RECORD, held=False, before=T0 - timedelta(minutes=2))], "r1")
    records.release(RECORD)
    assert records.find("m1", RECORD.dedup, "email") is None
    # A claim left by a sender that died is taken over once older than the limit, not before
    assert records.commit([RecordWrite(RECORD, held=False, before=T0 - timedelta(minutes=2))], "r1")
    later = replace(RECORD, decided_at=T0 + timedelta(minutes=5))
    assert not records.commit([RecordWrite(later, held=True, before=T0 - timedelta(minutes=1))], "r1")
    assert records.commit([RecordWrite(later, held=True, before=T0 + timedelta(minutes=3))], "r1")
    assert (records.find("m1", RECORD.dedup, "email") or RECORD).decided_at == later.decided_at
    # And releasing a claim that is no longer a claim changes nothing
    decided = replace(later, status=Status.REFUSED, reason="no consent")
    records.decide(decided, "r1")
    records.release(later)
    assert (records.find("m1", RECORD.dedup, "email") or RECORD).status is Status.REFUSED


def test_held_sms_are_found_once_their_hold_ends(stores: Stores) -> None:
    records = stores.offer_records
    held = replace(RECORD, channel="sms", status=Status.HELD, hold_until=T0 + timedelta(hours=8), reason="quiet hours")
    records.decide(held, "r1")
    assert list(records.held_due(T0 + timedelta(hours=7))) == []
    assert [r.dedup for r in records.held_due(T0 + timedelta(hours=8))] == [RECORD.dedup]
    # A held record can be claimed again when it comes back
    again = replace(held, status=Status.SENDING, hold_until=None, decided_at=T0 + timedelta(hours=8))
    assert records.commit([RecordWrite(again, held=True, before=T0)], "r1")
    assert list(records.held_due(T0 + timedelta(hours=9))) == []


def test_erasure_keeps_the_decision_without_the_person(stores: Stores) -> None:
    records = stores.offer_records
    records.decide(replace(RECORD, status=Status.SENT, subject="Hej Anna"), "r1")
    records.forget_person("m1", RECORD.dedup, "email", '{"request_id": "r1", "contact": null}')
    found = records.find("m1", RECORD.dedup, "email")
    assert found is not None
    assert (found.status, found.subject, found.request) == (Status.SENT, None, '{"request_id": "r1", "contact": null}')


def test_a_cap_is_saved_only_over_the_version_read(stores: Stores) -> None:
    records = stores.offer_records
    assert records.cap("m1", "marketing", "email") == (0, [])
    assert records.save_cap("m1", "marketing", "email", 0, ["2026-11-20T12:00:00+00:00|a"])
    assert not records.save_cap("m1", "marketing", "email", 0, ["2026-11-20T12:00:00+00:00|b"])
    assert records.cap("m1", "marketing", "email") == (1, ["2026-11-20T12:00:00+00:00|a"])
    assert records.save_cap("m1", "marketing", "email", 1, [])
    assert records.cap("m1", "marketing", "email") == (2, [])
    assert records.cap("m1", "service", "email") == (0, [])


def test_a_held_claim_on_a_record_that_is_gone_is_refused(stores: Stores) -> None:
    # A delivery that comes back for a held or claimed record finds nothing to take over (another gave it up)
    assert not stores.offer_records.commit([RecordWrite(RECORD, held=True, before=T0 + timedelta(hours=1))], "r1")
    assert stores.offer_records.find("m1", RECORD.dedup, "email") is None


def test_a_task_or_an_erasure_for_a_record_that_is_not_there_is_an_error(stores: Stores) -> None:
    with pytest.raises(UnknownRecordError):
        stores.offer_records.mark_task("m1", "nothing#2026", "email", "pushed")
    with pytest.raises(UnknownRecordError):
        stores.offer_records.forget_person("m1", "nothing#2026", "email", "{}")
    assert stores.offer_records.sent("m1") == []


def test_an_offers_member_records_and_caps_are_read_together_for_its_channels(stores: Stores) -> None:
    records = stores.offer_records
    # Given nothing stored, the member reads as unknown and each channel as undecided with an empty cap
    empty = OfferState(None, CapState())
    assert records.load("m1", RECORD.dedup, "marketing", ["email", "sms"]) == OfferReading(
        None, {"email": empty, "sms": empty}
    )
    # Given the member, a decision on e-mail and a marketing cap on SMS
    member = enrolled(stores)
    records.decide(replace(RECORD, status=Status.REFUSED, reason="no consent"), "r1", {"checked_at": T0.isoformat()})
    assert records.save_cap("m1", "marketing", "sms", 0, ["2026-11-20T12:00:00+00:00|a"])
    assert records.save_cap("m1", "service", "email", 0, ["2026-11-20T12:00:00+00:00|b"])
    # Then all are read, the member as the ledger store reads them, each channel with the cap of the kind asked for
    reading = records.load("m1", RECORD.dedup, "marketing", ["email", "sms"])
    assert reading.member == stores.ledger.member("m1") == member
    assert reading.channels == {
        "email": OfferState(records.find("m1", RECORD.dedup, "email"), CapState()),
        "sms": OfferState(None, CapState(1, ("2026-11-20T12:00:00+00:00|a",))),
    }
    assert records.load("m1", RECORD.dedup, "service", ["email"]).channels["email"].cap == CapState(
        1, ("2026-11-20T12:00:00+00:00|b",)
    )


def test_claims_decisions_and_caps_are_committed_all_or_nothing(stores: Stores) -> None:
    records = stores.offer_records
    sms = replace(RECORD, channel="sms")
    refused = replace(RECORD, status=Status.REFUSED, reason="no consent")
    entry = ("2026-11-20T12:00:00+00:00|DOUBLE1#sms",)
    # When a refusal on e-mail and a claim on SMS that counts against the cap are committed together
    evidence = {"checked_at": T0.isoformat(), "programme": {"flag": "email_consent", "value": False}}
    writes = [RecordWrite(refused, evidence), RecordWrite(sms, cap=CapChange("marketing", 0, entry))]
    assert records.commit(writes, "r1")
    # Then both are stored, the decision with its evidence, and the cap at its next version
    assert records.find("m1", RECORD.dedup, "email") == replace(refused, evidence=evidence)
    assert records.find("m1", RECORD.dedup, "sms") == sms
    assert records.cap("m1", "marketing", "sms") == (1, list(entry))
    # When the same writes come again (a redelivery, a concurrent sender), nothing is written
    assert not records.commit(writes, "r1")
    # And a stale cap version fails the whole commit, the claim with it
    other = replace(RECORD, dedup="DOUBLE2#2026-11-20#2026-12-20", channel="sms")
    stale = RecordWrite(other, cap=CapChange("marketing", 0, ("2026-11-20T12:01:00+00:00|DOUBLE2#sms",)))
    assert not records.commit([stale], "r2")
    assert not records.commit([RecordWrite(replace(other, channel="email")), stale], "r2")
    assert records.find("m1", other.dedup, "sms") is None and records.find("m1", other.dedup, "email") is None
    assert records.cap("m1", "marketing", "sms") == (1, list(entry))
    # And with the version read, the claim and the cap are stored
    current = RecordWrite(other, cap=CapChange("marketing", 1, (*entry, "2026-11-20T12:01:00+00:00|DOUBLE2#sms")))
    assert records.commit([current], "r2")
    assert records.cap("m1", "marketing", "sms")[0] == 2


def test_a_commit_takes_over_what_is_held_or_a_dead_claim_only(stores: Stores) -> None:
    records = stores.offer_records
    later = T0 + timedelta(minutes=5)
    # A claim decided now is not taken over by a write that expects one from before T0 - 1 minute
    assert records.commit([RecordWrite(RECORD)], "r1")
    capped = replace(RECORD, status=Status.CAPPED, reason="cap reached", decided_at=later)
    assert not records.commit([RecordWrite(capped, held=True, before=T0 - timedelta(minutes=1))], "r1")
    assert not records.commit([RecordWrite(capped, held=False)], "r1")
    # Once it is older than the limit, a decision takes it over
    assert records.commit(
        [RecordWrite(capped, {"checked_at": later.isoformat()}, True, T0 + timedelta(minutes=3))], "r1"
    )
    assert (records.find("m1", RECORD.dedup, "email") or RECORD).status is Status.CAPPED
    # A held SMS decided again as held (quiet hours not over) is found by the release job at its new time
    held = replace(RECORD, channel="sms", status=Status.HELD, hold_until=T0 + timedelta(hours=8), reason="quiet")
    assert records.commit([RecordWrite(held)], "r1")
    again = replace(held, hold_until=T0 + timedelta(hours=9), decided_at=later)
    assert records.commit([RecordWrite(again, held=True, before=T0)], "r1")
    assert [r.hold_until for r in records.held_due(T0 + timedelta(hours=10))] == [T0 + timedelta(hours=9)]
    # A write for a held or claimed record that is gone stores nothing
    gone = replace(RECORD, dedup="gone#2026")
    assert not records.commit([RecordWrite(gone, held=True, before=later)], "r1")
    assert records.find("m1", "gone#2026", "email") is None
