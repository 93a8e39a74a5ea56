"""What the offer sender keeps: one record per member, offer and channel (the decision, its evidence, and for a
sent message what the CRM Task needs), frequency caps, and SMS held through quiet hours (due index HELD#)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from loyalty.adapters.dynamodb.ledger_items import member_state
from loyalty.adapters.dynamodb.models import (
    MEMBER_SK,
    ContactCapItem,
    LoyaltyItem,
    MemberItem,
    OfferSendItem,
    condition_failed,
    member_pk,
    table_connection,
)
from loyalty.errors import UnknownRecordError
from loyalty.offers.records import CapState, OfferReading, OfferState, RecordWrite, SendRecord, Status

HELD_SHARDS = 4


def _send_sk(dedup: str, channel: str) -> str:
    return f"SEND#{dedup}#{channel}"


def _cap_sk(kind: str, channel: str) -> str:
    return f"CAP#{kind}#{channel}"


def _held_due(member_id: str, until: datetime, dedup: str, channel: str) -> tuple[str, str]:
    shard = int(hashlib.sha256(member_id.encode()).hexdigest()[:8], 16) % HELD_SHARDS
    return f"HELD#{shard}", f"{until.astimezone(UTC).isoformat()}#{member_id}#{dedup}#{channel}"


def send_record(item: OfferSendItem) -> SendRecord:
    """The record an offer's item holds."""
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
        evidence=item.evidence.as_dict() if item.evidence is not None else None,
        task_state=item.task_state,
        task_reason=item.task_reason,
    )


class DynamoDBOfferRecords:
    def load(self, member_id: str, dedup: str, kind: str, channels: Sequence[str]) -> OfferReading:
        """The member and the records and caps of every channel in one BatchGetItem (strongly consistent, as the
        ledger store's ``member``, ``find`` and ``cap`` read): all are items of the member's partition."""
        pk = member_pk(member_id)
        keys = [(pk, MEMBER_SK)]
        keys += [(pk, sk) for channel in channels for sk in (_send_sk(dedup, channel), _cap_sk(kind, channel))]
        found = {item.sk: item for item in LoyaltyItem.batch_get(keys, consistent_read=True)}
        states = {}
        for channel in channels:
            send, cap = found.get(_send_sk(dedup, channel)), found.get(_cap_sk(kind, channel))
            record = send_record(send) if isinstance(send, OfferSendItem) else None
            caps = (
                CapState(int(cap.version), tuple(str(e) for e in cap.sent))
                if isinstance(cap, ContactCapItem)
                else CapState()
            )
            states[channel] = OfferState(record, caps)
        member = found.get(MEMBER_SK)
        return OfferReading(member_state(member) if isinstance(member, MemberItem) else None, states)

    def commit(self, writes: Sequence[RecordWrite], request_id: str) -> bool:
        """One conditional PutItem for a lone record, else one TransactWriteItems of the records and their caps."""
        items: list[tuple[LoyaltyItem, Condition]] = []
        for write in writes:
            record = write.record
            item = (
                self._item(record, request_id)
                if record.status is Status.SENDING
                else self._decided(record, request_id, write.evidence)
            )
            items.append((item, _claimable(write.held, write.before)))
            if write.cap is not None:
                cap = write.cap
                items.append(
                    (
                        ContactCapItem(
                            member_pk(record.member_id),
                            _cap_sk(cap.kind, record.channel),
                            sent=list(cap.entries),
                            version=cap.version + 1,
                        ),
                        _cap_at(cap.version),
                    )
                )
        if len(items) == 1:
            return _saved(*items[0])
        try:
            with TransactWrite(connection=table_connection()) as transaction:
                for saved, condition in items:
                    transaction.save(saved, condition=condition)
        except TransactWriteError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def find(self, member_id: str, dedup: str, channel: str) -> SendRecord | None:
        try:
            return send_record(OfferSendItem.get(member_pk(member_id), _send_sk(dedup, channel), consistent_read=True))
        except OfferSendItem.DoesNotExist:
            return None

    def decide(self, record: SendRecord, request_id: str, evidence: Mapping[str, Any] | None = None) -> None:
        """Store the decision (sent, refused, capped, held, failed) with its reason and consent evidence."""
        self._decided(record, request_id, evidence).save()

    def _decided(self, record: SendRecord, request_id: str, evidence: Mapping[str, Any] | None) -> OfferSendItem:
        item = self._item(record, request_id)
        item.evidence = dict(evidence) if evidence is not None else None
        if record.status is Status.SENT:
            item.task_state = "pending"  # crm_sync makes it a completed Task on the Contact
        if record.status is Status.HELD and record.hold_until is not None:
            item.due_pk, item.due_sk = _held_due(record.member_id, record.hold_until, record.dedup, record.channel)
        return item

    def release(self, record: SendRecord) -> None:
        try:
            OfferSendItem(member_pk(record.member_id), _send_sk(record.dedup, record.channel)).delete(
                condition=OfferSendItem.status == Status.SENDING.value
            )
        except DeleteError as error:
            if not condition_failed(error):
                raise  # else it is no longer a claim (decided, or taken over): nothing to give back

    def held_due(self, now: datetime) -> Iterator[SendRecord]:
        up_to = f"{now.astimezone(UTC).isoformat()}#\uffff"
        for shard in range(HELD_SHARDS):
            for item in LoyaltyItem.due.query(f"HELD#{shard}", LoyaltyItem.due_sk <= up_to):
                if isinstance(item, OfferSendItem) and item.status == Status.HELD.value:
                    yield send_record(item)

    def mark_task(self, member_id: str, dedup: str, channel: str, state: str, reason: str | None = None) -> None:
        actions = [
            OfferSendItem.task_state.set(state),
            OfferSendItem.task_reason.set(reason) if reason else OfferSendItem.task_reason.remove(),
        ]
        self._update(member_id, dedup, channel, actions)

    def sent(self, member_id: str) -> list[SendRecord]:
        """Every decision about the member's offers (for the member API and the local outbox)."""
        return [
            send_record(item)
            for item in LoyaltyItem.query(member_pk(member_id), LoyaltyItem.sk.startswith("SEND#"))
            if isinstance(item, OfferSendItem)
        ]

    def forget_person(self, member_id: str, dedup: str, channel: str, request: str) -> None:
        self._update(member_id, dedup, channel, [OfferSendItem.request.set(request), OfferSendItem.subject.remove()])

    @staticmethod
    def _update(member_id: str, dedup: str, channel: str, actions: Sequence[Action]) -> None:
        try:
            OfferSendItem(member_pk(member_id), _send_sk(dedup, channel)).update(
                actions=list(actions), condition=OfferSendItem.pk.exists()
            )
        except UpdateError as error:
            if condition_failed(error):
                raise UnknownRecordError(f"no record of {dedup} on {channel} for member {member_id}") from None
            raise

    def cap(self, member_id: str, kind: str, channel: str) -> tuple[int, list[str]]:
        try:
            item = ContactCapItem.get(member_pk(member_id), _cap_sk(kind, channel), consistent_read=True)
        except ContactCapItem.DoesNotExist:
            return 0, []
        return int(item.version), [str(entry) for entry in item.sent]

    def save_cap(self, member_id: str, kind: str, channel: str, version: int, entries: list[str]) -> bool:
        item = ContactCapItem(member_pk(member_id), _cap_sk(kind, channel), sent=entries, version=version + 1)
        return _saved(item, _cap_at(version))

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


def _claimable(held: bool, before: datetime | None) -> Condition:
    """Nothing is stored for the offer and channel; or (``held``) what is stored is held, or a claim decided before
    ``before`` by a sender that died."""
    if not held:
        return OfferSendItem.pk.does_not_exist()
    condition: Condition = OfferSendItem.status == Status.HELD.value
    if before is not None:
        condition |= (OfferSendItem.status == Status.SENDING.value) & (OfferSendItem.decided_at < before)
    return condition


def _cap_at(version: int) -> Condition:
    """The cap is still at the version read (0: none was stored)."""
    return ContactCapItem.pk.does_not_exist() if version == 0 else ContactCapItem.version == version


def _saved(item: LoyaltyItem, condition: Condition) -> bool:
    """Save ``item`` if ``condition`` holds; False if it did not (someone else got there first)."""
    try:
        item.save(condition=condition)
    except PutError as error:
        if condition_failed(error):
            return False
        raise
    return True
