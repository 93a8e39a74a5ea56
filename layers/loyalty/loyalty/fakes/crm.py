"""The CRM in memory: what was last pushed per member, and an org holding Contacts, Tasks, the transaction journal
and the monthly KPI records.

The org answers as Salesforce's sObject Collections do for what the programme sends: one result per record, in
order; an unknown field refuses the whole request; an id that does not exist, a missing last name and a second
Contact with the same member id are per-record errors; faults put on records (a lock, a validation rule) fail
them until used up.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from loyalty.crm.fields import (
    CONTENT_VERSION,
    CONTENT_VERSION_FIELDS,
    EMAIL,
    JOURNAL,
    JOURNAL_FIELDS,
    JOURNAL_KEY,
    KPI,
    KPI_FIELDS,
    KPI_KEY,
    LAST_NAME,
    LOYALTY_FIELDS,
    MEMBER_ID,
    READ_FIELDS,
    STANDARD_FIELDS,
    TASK_FIELDS,
    TASK_SEND_ID,
)
from loyalty.errors import CrmRequestError, CrmRetryableError
from loyalty.fakes.memory import Memory
from loyalty.ports.crm import NOT_IN_SYNC, CrmState, RecordResult

_FIELDS = {
    "Contact": {"Id", *LOYALTY_FIELDS, *READ_FIELDS, *STANDARD_FIELDS},
    "Task": {"Id", *TASK_FIELDS},
    JOURNAL: {"Id", *JOURNAL_FIELDS},
    KPI: {"Id", *KPI_FIELDS},
    CONTENT_VERSION: {"Id", *CONTENT_VERSION_FIELDS},
}
_UNIQUE = {"Contact": MEMBER_ID, "Task": TASK_SEND_ID, JOURNAL: JOURNAL_KEY, KPI: KPI_KEY}
_PREFIX = {"Contact": "003", "Task": "00T", JOURNAL: "a00", KPI: "a01", CONTENT_VERSION: "068"}


class InMemoryCrmStates:
    """The CRM states; ``push_requests`` stands in for the table's stream: the members whose push was asked for
    again, in order, for a test to hand to the push as the stream would."""

    def __init__(self, memory: Memory | None = None) -> None:
        self.memory = memory or Memory()
        self.push_requests: list[str] = []

    def states(self, member_ids: Iterable[str]) -> dict[str, CrmState]:
        stored = self.memory.items("crm_states")
        return {
            m: CrmState(dict(stored[m].pushed), stored[m].status, stored[m].reason)
            for m in set(member_ids)
            if m in stored
        }

    def save(self, states: Mapping[str, CrmState], at: datetime) -> None:
        for member_id, state in states.items():
            self.memory.items("crm_states")[member_id] = CrmState(dict(state.pushed), state.status, state.reason)

    def not_in_sync(self, status: str) -> list[tuple[str, str | None]]:
        stored = self.memory.items("crm_states")
        parked = status in NOT_IN_SYNC  # only those are listed: a synced member is nobody's task
        return sorted((m, s.reason) for m, s in stored.items() if parked and s.status == status)

    def request_push(self, member_ids: Iterable[str], at: datetime) -> None:
        stored = self.memory.items("crm_states")
        self.push_requests += [member_id for member_id in sorted(set(member_ids)) if member_id in stored]


class InMemoryOrg:
    """A Salesforce org's Contacts, Tasks, journal and KPI records, as the CRM client port reads and writes them."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, dict[str, Any]]] = {sobject: {} for sobject in _FIELDS}
        self.deleted: set[str] = set()
        self.calls = 0
        self.unavailable = 0  # the next this many calls fail for now (limits, 5xx, timeouts after retries)
        self._faults: list[tuple[str, int]] = []  # (error code, records left to fail)
        self._ids = itertools.count(1)

    # ------------------------------------------------------------ the org's side, for tests

    def add_contact(self, **fields: Any) -> str:
        """A Contact a CRM user created."""
        record_id = self._new_id("Contact")
        self.records["Contact"][record_id] = {"Id": record_id, **fields}
        return record_id

    def delete(self, record_id: str) -> None:
        for records in self.records.values():
            records.pop(record_id, None)
        self.deleted.add(record_id)

    def fail_records(self, code: str, times: int = 1) -> None:
        """The next ``times`` records written fail with ``code`` (UNABLE_TO_LOCK_ROW, a validation rule's
        FIELD_CUSTOM_VALIDATION_EXCEPTION)."""
        self._faults.append((code, times))

    def contacts(self) -> list[dict[str, Any]]:
        return list(self.records["Contact"].values())

    def tasks(self) -> list[dict[str, Any]]:
        return list(self.records["Task"].values())

    # ------------------------------------------------------------ the client port

    def contacts_by_member_id(self, member_ids: Iterable[str]) -> dict[str, str]:
        self._call()
        wanted = set(member_ids)
        return {c[MEMBER_ID]: c["Id"] for c in self.records["Contact"].values() if c.get(MEMBER_ID) in wanted}

    def contacts_by_email(self, emails: Iterable[str]) -> dict[str, list[str]]:
        self._call()
        wanted = {email.lower() for email in emails}
        found: dict[str, list[str]] = {}
        for contact in self.records["Contact"].values():
            email = (contact.get(EMAIL) or "").lower()
            if email in wanted:
                found.setdefault(email, []).append(contact["Id"])
        return found

    def update_records(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[RecordResult]:
        self._call(sobject, records)
        return [self._save(sobject, record.get("Id"), record) for record in records]

    def create_records(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[RecordResult]:
        self._call(sobject, records)
        return [self._save(sobject, None, record) for record in records]

    def upsert_records(
        self, sobject: str, external_id_field: str, records: Sequence[dict[str, Any]]
    ) -> list[RecordResult]:
        self._call(sobject, records)
        results = []
        for record in records:
            holder = self._holder(sobject, external_id_field, record.get(external_id_field))
            result = self._save(sobject, holder, record, creating=holder is None)
            results.append(
                RecordResult(result.record_id, result.success, result.errors, holder is None and result.success)
            )
        return results

    def ids_before(self, sobject: str, field: str, before: datetime, limit: int) -> list[str]:
        self._call()
        stamp = before.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        older = sorted(
            (str(record[field]), record_id)
            for record_id, record in self.records[sobject].items()
            if record.get(field) and str(record[field])[:19] < stamp
        )
        return [record_id for _, record_id in older[:limit]]

    def ids_where(self, sobject: str, field: str, values: Sequence[str], set_field: str | None = None) -> list[str]:
        self._call()
        wanted = {str(value).lower() for value in values}
        return sorted(
            record_id
            for record_id, record in self.records[sobject].items()
            if str(record.get(field, "")).lower() in wanted and (set_field is None or record.get(set_field))
        )

    def delete_records(self, sobject: str, ids: Sequence[str]) -> list[RecordResult]:
        self._call()
        results = []
        for record_id in ids:
            if record_id in self.records[sobject]:
                self.delete(record_id)
                results.append(RecordResult(record_id, True))
            else:
                results.append(RecordResult(record_id, False, (("ENTITY_IS_DELETED", "entity is deleted"),)))
        return results

    # ------------------------------------------------------------ how the org answers

    def _call(self, sobject: str | None = None, records: Sequence[dict[str, Any]] = ()) -> None:
        if self.unavailable:
            self.unavailable -= 1
            raise CrmRetryableError("the org is unavailable for now")
        self.calls += 1
        for record in records:
            unknown = sorted(set(record) - _FIELDS[sobject or "Contact"])
            if unknown:
                raise CrmRequestError(f"refused (400): INVALID_FIELD {unknown[0]}")

    def _save(
        self, sobject: str, record_id: str | None, values: dict[str, Any], creating: bool | None = None
    ) -> RecordResult:
        creating = record_id is None if creating is None else creating
        records = self.records[sobject]
        if not creating and record_id not in records:
            code = "ENTITY_IS_DELETED" if record_id in self.deleted else "INVALID_CROSS_REFERENCE_KEY"
            return RecordResult(record_id, False, ((code, "no such record"),))
        errors: list[tuple[str, str]] = []
        if self._faults:
            code, left = self._faults[0]
            errors.append((code, "injected"))
            self._faults = [(code, left - 1)] * (left > 1) + self._faults[1:]
        merged = {**records.get(record_id or "", {}), **{k: v for k, v in values.items() if k != "Id"}}
        if sobject == "Contact" and not merged.get(LAST_NAME):
            errors.append(("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]"))
        unique = _UNIQUE.get(sobject)
        holder = self._holder(sobject, unique, merged.get(unique)) if unique else None
        if unique and holder is not None and holder != record_id:
            errors.append(("DUPLICATE_VALUE", f"duplicate value found: {unique}"))
        if errors:
            return RecordResult(record_id, False, tuple(errors))
        record_id = record_id or self._new_id(sobject)
        records[record_id] = {**merged, "Id": record_id}
        return RecordResult(record_id, True)

    def _holder(self, sobject: str, field: str, value: Any) -> str | None:
        if value is None:
            return None
        for record_id, record in self.records[sobject].items():
            if str(record.get(field, "")).lower() == str(value).lower():
                return record_id
        return None

    def _new_id(self, sobject: str) -> str:
        return f"{_PREFIX[sobject]}{next(self._ids):012d}AAA"
