"""What the offer sender decides and keeps (one record per member, offer and channel, contact caps, SMS held
through quiet hours) and the queue offer requests travel on: the value types and the ports.

The ports are implemented by loyalty.adapters.dynamodb.offer_records, loyalty.adapters.sqs and their fakes in
loyalty.fakes.offers; tests/contract holds each pair to the same behaviour.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from loyalty.ledger.state import MemberState
    from loyalty.offers.requests import OfferRequest


class Status(StrEnum):
    SENDING = "sending"  # claimed by a delivery that is deciding it now
    SENT = "sent"
    REFUSED = "refused"  # no consent (or no address)
    CAPPED = "capped"  # over the frequency cap
    HELD = "held"  # SMS in quiet hours, sent when they end
    FAILED = "failed"  # the e-mail or SMS service refused it for good
    HOLDOUT = "holdout"  # the member is in the offer's holdout: nothing sent, nothing granted (to measure against)


@dataclass(frozen=True)
class SendRecord:
    """The decision about one offer on one channel for one member."""

    member_id: str
    dedup: str
    channel: str
    status: Status
    request: str  # the OfferRequest as JSON
    decided_at: datetime
    trigger: str
    template_key: str
    offer_code: str | None = None
    reason: str | None = None
    hold_until: datetime | None = None
    message_id: str | None = None
    subject: str | None = None
    language: str | None = None
    evidence: Mapping[str, Any] | None = None  # as stored: consent flags, values, times and sources
    task_state: str | None = None  # a sent offer's CRM Task: pending -> pushed | no_contact | refused
    task_reason: str | None = None


@dataclass(frozen=True)
class CapState:
    """The member's contact cap for a kind of message on a channel, as read: its version and its entries."""

    version: int = 0
    entries: tuple[str, ...] = ()


@dataclass(frozen=True)
class OfferState:
    """What is stored about one offer on one channel: its record (None if nothing was decided) and the cap."""

    record: SendRecord | None
    cap: CapState


@dataclass(frozen=True)
class OfferReading:
    """Everything the sender needs stored about one offer request, read together: the member as the ledger keeps
    them (None if unknown), and each channel's record and cap. They share the member's partition, so one read."""

    member: MemberState | None
    channels: Mapping[str, OfferState]


@dataclass(frozen=True)
class CapChange:
    """New entries for the member's cap of ``kind`` on the record's channel, if it is still at ``version``."""

    kind: str
    version: int
    entries: tuple[str, ...]


@dataclass(frozen=True)
class RecordWrite:
    """A claim (status sending, before the message goes) or a decision that sends nothing (refused, capped,
    held), stored only if nothing is stored for its offer and channel, or (``held``) if what is stored is held or a
    claim decided before ``before``; with the cap change that counts the message, if any."""

    record: SendRecord
    evidence: Mapping[str, Any] | None = None
    held: bool = False
    before: datetime | None = None
    cap: CapChange | None = None


class OfferRecords(Protocol):
    def load(self, member_id: str, dedup: str, kind: str, channels: Sequence[str]) -> OfferReading:
        """The member, and for each channel the offer's record and the member's cap for ``kind`` on it, read
        together (the member as the ledger store's ``member`` reads them)."""
        ...

    def commit(self, writes: Sequence[RecordWrite], request_id: str) -> bool:
        """Store every write or none: False if any record's or cap's condition did not hold (nothing written).
        At most one write per offer and channel (DynamoDB refuses two of one item in a transaction)."""
        ...

    def find(self, member_id: str, dedup: str, channel: str) -> SendRecord | None: ...

    def decide(self, record: SendRecord, request_id: str, evidence: dict[str, Any] | None = None) -> None:
        """Store the decision, with its consent evidence; a sent record waits for its CRM Task, a held one is
        found by `held_due` once its hold ends."""
        ...

    def release(self, record: SendRecord) -> None:
        """Drop a claim (status sending) so that the next delivery of the request decides again."""
        ...

    def held_due(self, now: datetime) -> Iterator[SendRecord]:
        """Held records whose hold ended by ``now``."""
        ...

    def mark_task(self, member_id: str, dedup: str, channel: str, state: str, reason: str | None = None) -> None:
        """Note what became of a sent record's CRM Task: pushed, no_contact or refused (with the reason)."""
        ...

    def sent(self, member_id: str) -> list[SendRecord]:
        """Every decision about the member's offers."""
        ...

    def forget_person(self, member_id: str, dedup: str, channel: str, request: str) -> None:
        """Replace the stored request by ``request`` and drop the subject (GDPR erasure)."""
        ...

    def cap(self, member_id: str, kind: str, channel: str) -> tuple[int, list[str]]:
        """The member's contact cap for a kind of message on a channel: its version and its entries."""
        ...

    def save_cap(self, member_id: str, kind: str, channel: str, version: int, entries: list[str]) -> bool:
        """Replace the cap's entries if it is still at ``version``; False otherwise (nothing written)."""
        ...


class OfferQueue(Protocol):
    def send(self, requests: Sequence[OfferRequest]) -> None:
        """Queue the requests for the offer sender (each is idempotent downstream)."""
        ...
