"""The CRM: what was last pushed to each member's Contact, and the client that reads and writes the org.

Implemented by loyalty.adapters.dynamodb.crm_states, loyalty.adapters.salesforce and their fakes in
loyalty.fakes.crm (tests/contract holds each pair to the same behaviour; the client's against the org emulator).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

RETRYABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED", "SERVER_UNAVAILABLE"})
# Members not in sync, each listed (the `due` index: CRM#<status>) until a push brings them back to "synced":
# parked (Salesforce refused their record, or several Contacts share their e-mail: a person decides), unlinked
# (no Contact with their e-mail yet) and stale (the push never reached Salesforce: it was down for longer than
# the retries lasted).
NOT_IN_SYNC = ("parked", "unlinked", "stale")


@dataclass(frozen=True)
class RewardToArrange:
    """An experience a member spent points on: a person arranges it (an open Task on the member's Contact)."""

    member_id: str
    redemption_id: str
    reward_id: str
    points: int
    redeemed_at: datetime


@dataclass
class CrmState:
    pushed: dict[str, Any] = field(default_factory=dict)  # field API name -> value as last sent
    status: str = "synced"  # synced | parked | unlinked | stale
    reason: str | None = None


@dataclass(frozen=True)
class RecordResult:
    """One record's outcome in a collection request (matched by position)."""

    record_id: str | None
    success: bool
    errors: tuple[tuple[str, str], ...] = ()  # (statusCode, message)
    created: bool | None = None  # upsert only: True if the record was created, False if an existing one was updated

    @property
    def retryable(self) -> bool:
        return not self.success and any(code in RETRYABLE_CODES for code, _ in self.errors)


class CrmStates(Protocol):
    def states(self, member_ids: Iterable[str]) -> dict[str, CrmState]:
        """The states of those members that have one."""
        ...

    def save(self, states: Mapping[str, CrmState], at: datetime) -> None:
        """Store each member's state (member id -> state), in as few writes as the store allows."""
        ...

    def not_in_sync(self, status: str) -> list[tuple[str, str | None]]:
        """Members parked, unlinked or stale (``status``), with the reason: the list an operator looks at."""
        ...

    def request_push(self, member_ids: Iterable[str], at: datetime) -> None:
        """Ask for these members' push again, as of ``at``: the table's stream brings them to the CRM push as
        if they had changed (their state is marked; the push's next save of it clears the mark)."""
        ...


class CrmClient(Protocol):
    def contacts_by_member_id(self, member_ids: Iterable[str]) -> dict[str, str]:
        """Contact id by loyalty member id, for the members that have a Contact."""
        ...

    def contacts_by_email(self, emails: Iterable[str]) -> dict[str, list[str]]:
        """Contact ids by lower-cased e-mail (the org compares e-mail case-insensitively)."""
        ...

    def update_records(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[RecordResult]:
        """Update records (each with ``Id``); one result per record, in order."""
        ...

    def create_records(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[RecordResult]: ...

    def upsert_records(
        self, sobject: str, external_id_field: str, records: Sequence[dict[str, Any]]
    ) -> list[RecordResult]:
        """Create or update records matched by ``external_id_field``: a repeat updates what the first created."""
        ...

    def ids_before(self, sobject: str, field: str, before: datetime, limit: int) -> list[str]:
        """Ids of up to ``limit`` records whose DateTime ``field`` is earlier than ``before``."""
        ...

    def ids_where(self, sobject: str, field: str, values: Sequence[str], set_field: str | None = None) -> list[str]:
        """Ids of the records whose ``field`` is one of ``values`` (and, with ``set_field``, whose that field has a
        value)."""
        ...

    def delete_records(self, sobject: str, ids: Sequence[str]) -> list[RecordResult]:
        """Delete records by id; one result per id, in order."""
        ...
