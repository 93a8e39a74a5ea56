"""The offer records' contract: one decision per member, offer and channel, claims, holds, Tasks and caps; on the
fake and on DynamoDB Local."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from loyalty.errors import UnknownRecordError
from loyalty.offers.records import SendRecord, Status
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


def test_a_claim_is_taken_once_and_decided(stores: Stores) -> None:
    records = stores.offer_records
    assert records.find("m1", RECORD.dedup, "email") is None
    # When two deliveries claim the same offer and channel
    assert records.claim(RECORD, "r1", held=False, before=T0 - timedelta(minutes=2))
    assert not records.claim(RECORD, "r1", held=False, before=T0 - timedelta(minutes=2))
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
    assert records.claim(RECORD, "r1", held=False, before=T0 - timedelta(minutes=2))
    records.release(RECORD)
    assert records.find("m1", RECORD.dedup, "email") is None
    # A claim left by a sender that died is taken over once older than the limit, not before
    assert records.claim(RECORD, "r1", held=False, before=T0 - timedelta(minutes=2))
    later = replace(RECORD, decided_at=T0 + timedelta(minutes=5))
    assert not records.claim(later, "r1", held=True, before=T0 - timedelta(minutes=1))
    assert records.claim(later, "r1", held=True, before=T0 + timedelta(minutes=3))
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
    assert records.claim(again, "r1", held=True, before=T0)
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
    assert not stores.offer_records.claim(RECORD, "r1", held=True, before=T0 + timedelta(hours=1))
    assert stores.offer_records.find("m1", RECORD.dedup, "email") is None


def test_a_task_or_an_erasure_for_a_record_that_is_not_there_is_an_error(stores: Stores) -> None:
    with pytest.raises(UnknownRecordError):
        stores.offer_records.mark_task("m1", "nothing#2026", "email", "pushed")
    with pytest.raises(UnknownRecordError):
        stores.offer_records.forget_person("m1", "nothing#2026", "email", "{}")
    assert stores.offer_records.sent("m1") == []
