"""What the offer sender keeps: one record per member, offer and channel (the decision, its evidence, and for a
sent message what the CRM Task needs), frequency caps, and SMS held through quiet hours (due index HELD#)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.condition import Condition

from loyalty.adapters.dynamodb_models import ContactCapItem, LoyaltyItem, OfferSendItem, member_pk
from loyalty.offer_requests import OfferRequest
from loyalty.offer_rules import Cap
from loyalty.offer_sending import SendRecord, Status

HELD_SHARDS = 4


def _send_sk(dedup: str, channel: str) -> str:
    return f"SEND#{dedup}#{channel}"


def _held_due(member_id: str, until: datetime, dedup: str, channel: str) -> tuple[str, str]:
    shard = int(hashlib.sha256(member_id.encode()).hexdigest()[:8], 16) % HELD_SHARDS
    return f"HELD#{shard}", f"{until.astimezone(UTC).isoformat()}#{member_id}#{dedup}#{channel}"


def _record(item: OfferSendItem) -> SendRecord:
    return SendRecord(
        member_id=item.member_id,
        dedup=item.sk.removeprefix("SEND#").rsplit("#", 1)[0],
        channel=item.channel,
        status=Status(item.status),
        reason=item.reason,
        request=item.request,
        hold_until=item.hold_until,
        message_id=item.message_id,
        template_key=item.template_key,
        offer_code=item.offer_code,
        subject=item.subject,
        language=item.language,
        decided_at=item.decided_at,
        trigger=item.trigger,
    )


class OfferStore:
    def find(self, member_id: str, dedup: str, channel: str) -> SendRecord | None:
        try:
            return _record(OfferSendItem.get(member_pk(member_id), _send_sk(dedup, channel), consistent_read=True))
        except OfferSendItem.DoesNotExist:
            return None

    def claim(self, record: SendRecord, request_id: str, held: bool, before: datetime) -> bool:
        """Take the offer on this channel for sending: only if nothing was decided yet, it was held and now comes
        back, or a claim from ``before`` was left by a sender that died. False: another delivery decides it."""
        item = self._item(record, request_id)
        condition: Condition = OfferSendItem.pk.does_not_exist()
        if held:
            abandoned = (OfferSendItem.status == Status.SENDING.value) & (OfferSendItem.decided_at < before)
            condition = (OfferSendItem.status == Status.HELD.value) | abandoned
        return _saved(item, condition)

    def decide(self, record: SendRecord, request_id: str, evidence: dict[str, Any] | None = None) -> None:
        """Store the decision (sent, refused, capped, held, failed) with its reason and consent evidence."""
        item = self._item(record, request_id)
        item.evidence = evidence
        if record.status is Status.SENT:
            item.task_state = "pending"  # crm_sync makes it a completed Task on the Contact
        if record.status is Status.HELD and record.hold_until is not None:
            item.due_pk, item.due_sk = _held_due(record.member_id, record.hold_until, record.dedup, record.channel)
        item.save()

    def release(self, record: SendRecord) -> None:
        """Give up a claim after a failure worth retrying: the next delivery of the request tries again."""
        OfferSendItem(member_pk(record.member_id), _send_sk(record.dedup, record.channel)).delete(
            condition=OfferSendItem.status == Status.SENDING.value
        )

    def held_due(self, now: datetime) -> Iterator[OfferRequest]:
        """The requests of SMS held through quiet hours whose hold has ended."""
        for shard in range(HELD_SHARDS):
            up_to = f"{now.astimezone(UTC).isoformat()}#\uffff"
            for item in LoyaltyItem.due.query(f"HELD#{shard}", LoyaltyItem.due_sk <= up_to):
                if isinstance(item, OfferSendItem) and item.status == Status.HELD.value:
                    yield OfferRequest.model_validate_json(item.request).model_copy(update={"channels": ("sms",)})

    def mark_task(self, member_id: str, dedup: str, channel: str, state: str, reason: str | None = None) -> None:
        OfferSendItem(member_pk(member_id), _send_sk(dedup, channel)).update(
            actions=[
                OfferSendItem.task_state.set(state),
                OfferSendItem.task_reason.set(reason) if reason else OfferSendItem.task_reason.remove(),
            ],
            condition=OfferSendItem.pk.exists(),
        )

    def sent(self, member_id: str) -> list[SendRecord]:
        """Every decision about the member's offers (for the member API and the local outbox)."""
        return [
            _record(item)
            for item in LoyaltyItem.query(member_pk(member_id), LoyaltyItem.sk.startswith("SEND#"))
            if isinstance(item, OfferSendItem)
        ]

    def erase_personal_data(self, member_id: str) -> int:
        """GDPR erasure: the offer records keep what was decided and why, without the person's data (the contact
        details the CRM sent, and the subject, which may greet them by name). Returns the records changed."""
        changed = 0
        for item in LoyaltyItem.query(member_pk(member_id), LoyaltyItem.sk.startswith("SEND#")):
            if not isinstance(item, OfferSendItem):
                continue
            request = OfferRequest.model_validate_json(item.request)
            kept = request.model_copy(update={"contact": None, "details": {}})
            item.update(actions=[OfferSendItem.request.set(kept.model_dump_json()), OfferSendItem.subject.remove()])
            changed += 1
        return changed

    def take_cap(self, member_id: str, kind: str, channel: str, now: datetime, cap: Cap, key: str) -> bool:
        """Count the message ``key`` against the cap, unless the cap is reached (atomic under concurrent senders;
        a message counted already counts once)."""
        sk = f"CAP#{kind}#{channel}"
        for _ in range(10):
            version, entries = self._cap(member_id, sk)
            since = (now - timedelta(days=cap.days)).isoformat()
            recent = [entry for entry in entries if entry.split("|", 1)[0] > since]
            if any(entry.split("|", 1)[1] == key for entry in recent):
                return True
            if len(recent) >= cap.messages:
                return False
            if self._save_cap(member_id, sk, version, [*recent, f"{now.astimezone(UTC).isoformat()}|{key}"]):
                return True
        raise UpdateError("the frequency cap kept changing under concurrent senders")

    def release_cap(self, member_id: str, kind: str, channel: str, key: str) -> None:
        """Give back the cap slot of a message that did not reach the member."""
        sk = f"CAP#{kind}#{channel}"
        for _ in range(10):
            version, entries = self._cap(member_id, sk)
            kept = [entry for entry in entries if entry.split("|", 1)[1] != key]
            if len(kept) == len(entries) or self._save_cap(member_id, sk, version, kept):
                return

    @staticmethod
    def _cap(member_id: str, sk: str) -> tuple[int, list[str]]:
        try:
            item = ContactCapItem.get(member_pk(member_id), sk, consistent_read=True)
        except ContactCapItem.DoesNotExist:
            return 0, []
        return int(item.version), [str(entry) for entry in item.sent if "|" in str(entry)]

    @staticmethod
    def _save_cap(member_id: str, sk: str, version: int, entries: list[str]) -> bool:
        item = ContactCapItem(member_pk(member_id), sk, sent=entries, version=version + 1)
        return _saved(item, ContactCapItem.pk.does_not_exist() if version == 0 else ContactCapItem.version == version)

    @staticmethod
    def _item(record: SendRecord, request_id: str) -> OfferSendItem:
        return OfferSendItem(
            member_pk(record.member_id),
            _send_sk(record.dedup, record.channel),
            member_id=record.member_id,
            channel=record.channel,
            status=record.status.value,
            reason=record.reason,
            request=record.request,
            request_id=request_id,
            trigger=record.trigger,
            template_key=record.template_key,
            offer_code=record.offer_code,
            language=record.language,
            subject=record.subject,
            message_id=record.message_id,
            hold_until=record.hold_until,
            decided_at=record.decided_at,
        )


def _saved(item: LoyaltyItem, condition: Condition) -> bool:
    """Save ``item`` if ``condition`` holds; False if it did not (someone else got there first)."""
    try:
        item.save(condition=condition)
    except PutError as error:
        if error.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True
