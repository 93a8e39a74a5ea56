"""Push members' loyalty fields to their Salesforce Contacts: coalesced, only what changed, 200 a request.

For the members changed in a batch: read the members once, together (so ten changes in a batch become one
record with the latest values; the lots, for the expiring points, only of members with a Contact), link
members to Contacts (by the member id field, else by e-mail with one query for the batch, then the member id
is written to the Contact), send only the fields
that differ from the last successful push, and keep what Salesforce refused: retryable per-record failures
are retried a bounded number of times, validation failures are parked with their reason, members without a
Contact are parked as unlinked (never a duplicate Contact unless creating Contacts is switched on).

When Salesforce fails the push (down, locked, refusing the login), the members whose push did not land are
listed as stale before the batch fails; Lambda retries the batch, and a retry that lands lists them as synced
again. If the retries run out (an outage longer than they last), they stay listed, and the crm_retry job asks
for their push again every hour, through the table's stream, until Salesforce answers. The list is kept in the
table rather than read back from CrmSyncFailureQueue: the queue's messages hold only stream sequence numbers,
and the stream keeps its records for 24 hours, shorter than an outage may last. The crm_link job asks again
once a day for every unlinked member, so a Contact that appears without an Outbound Message reaching the
programme is linked within a day. A push asked for again runs from the stream like any other, so it never
runs at the same time as another push of the same member (one member's items share a partition, whose stream
shard is read one batch at a time) and always sends what the ledger holds when it runs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from loyalty.crm.fields import (
    JOURNAL,
    JOURNAL_DATE,
    JOURNAL_KEY,
    JOURNAL_MEMBER,
    LOYALTY_FIELDS,
    MEMBER_ID,
    SMS_OPT_IN,
    TASK_SEND_ID,
    contact_fields,
    journal_record,
    new_contact,
    review_task_fields,
    reward_task_fields,
    task_fields,
)
from loyalty.errors import CrmAuthError, CrmRequestError, CrmRetryableError
from loyalty.ledger.model import Entry, MemberSummary
from loyalty.ledger.service import Ledger
from loyalty.observability import logger, metrics
from loyalty.offers.records import OfferRecords, SendRecord
from loyalty.ports.crm import CrmClient, CrmState, CrmStates, RecordResult, RewardToArrange
from loyalty.ports.directory import Directory, HeldForReview

STALE_LINK_CODES = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"})
RECORD_RETRIES = 3
DAYS_A_MONTH = 30.44


@dataclass
class PushReport:
    pushed: int = 0  # Contacts updated
    unchanged: int = 0
    parked: int = 0
    unlinked: int = 0
    stale: int = 0  # not pushed: Salesforce failed (listed, and asked again by the crm_retry job)
    linked: int = 0
    contacts_created: int = 0
    tasks: int = 0  # sent offers recorded as Tasks
    tasks_not_recorded: int = 0
    journal: int = 0  # ledger entries recorded in the Contacts' transaction journal
    journal_not_recorded: int = 0  # refused by the org (its reason logged)
    forgotten: int = 0  # erased members whose journal, Tasks and loyalty fields left their Contact
    newly_linked: tuple[str, ...] = ()  # members linked to a Contact by this push (their journal is filled in)


@dataclass
class CrmSync:
    ledger: Ledger
    client: CrmClient
    store: CrmStates
    directory: Directory
    offers: OfferRecords
    create_contacts: bool = False
    journal_months: int = 24  # how far back the transaction journal on the Contact goes
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] = field(default_factory=lambda: lambda: datetime.now(UTC))

    def sync(
        self,
        member_ids: Iterable[str],
        sends: Iterable[SendRecord],
        held: Iterable[HeldForReview] = (),
        arranged: Iterable[RewardToArrange] = (),
        entries: Iterable[Entry] = (),
    ) -> PushReport:
        """Push the changed members' fields, then record the sent offers, the orders held for review and the
        experiences to arrange as Tasks, and the new ledger entries in the transaction journal; one report of
        all."""
        members = set(member_ids)
        report = self.push(members)
        reports = [self.record_tasks(sends), self.record_review_tasks(held), self.record_reward_tasks(arranged)]
        report.tasks = sum(r.tasks for r in reports)
        report.tasks_not_recorded = sum(r.tasks_not_recorded for r in reports)
        journal = self.record_journal(entries, report.newly_linked)
        report.journal, report.journal_not_recorded = journal.journal, journal.journal_not_recorded
        logger.info(
            "crm push done",
            members=len(members),
            **{name: value for name, value in vars(report).items() if name != "newly_linked"},
        )
        metrics.add_metric(name="CrmContactsPushed", unit="Count", value=report.pushed)
        metrics.add_metric(name="CrmMembersUnlinked", unit="Count", value=report.unlinked)
        return report

    def push(self, member_ids: Iterable[str]) -> PushReport:
        members = sorted(set(member_ids))
        standing = self.ledger.summaries(members, expiry=False)  # who they are and their Contact: one batch read
        for member_id in members:
            if member_id not in standing:
                logger.warning("member gone before its CRM push", member_id=member_id)
        erased = {m: s.profile.crm_contact_id for m, s in standing.items() if s.profile.erased_at is not None}
        standing = {m: s for m, s in standing.items() if m not in erased}  # never pushed again
        try:
            forgotten = self.forget({m: contact for m, contact in erased.items() if contact})
        except (CrmRetryableError, CrmAuthError, CrmRequestError):
            # listed as stale before the batch fails: the crm_retry job asks for them again until the org forgets
            self.store.save(
                {m: CrmState(status="stale", reason="an erased member's records stay in the org for now")
                 for m, contact in erased.items() if contact},
                self.clock(),
            )  # fmt: skip
            raise
        batch = _Batch(self.store.states(standing) if standing else {})
        batch.report.forgotten = forgotten
        if not standing:
            return batch.report
        try:
            contacts = {m: s.profile.crm_contact_id for m, s in standing.items() if s.profile.crm_contact_id}
            newly_linked = self._link(standing, contacts, batch)
            # linked elsewhere (a CRM user's new Contact, through its Outbound Message) and never pushed since
            newly_linked |= {m for m in contacts if MEMBER_ID not in batch.states.get(m, CrmState()).pushed}
            batch.report.newly_linked = tuple(sorted(newly_linked))
            summaries = self.ledger.summaries(contacts)  # the fields, expiring points included: linked members only
            updates: dict[str, dict[str, Any]] = {}
            for member_id, contact_id in contacts.items():
                if member_id not in summaries:
                    continue
                state = batch.states.setdefault(member_id, CrmState())
                fields = contact_fields(summaries[member_id], self.ledger.rules)
                changed = {
                    name: value
                    for name, value in fields.items()
                    if member_id in newly_linked or state.status != "synced" or state.pushed.get(name, ...) != value
                }
                if changed:
                    updates[member_id] = {"Id": contact_id, **changed}
                else:
                    batch.settled.add(member_id)
                    batch.report.unchanged += 1
            self._send(updates, contacts, batch)
        except (CrmRetryableError, CrmAuthError, CrmRequestError) as error:
            # Listed as stale before the batch fails: if Lambda's retries of the batch run out too (a long
            # outage), the crm_retry job asks for these members' push again once an hour until it lands.
            reason = f"Salesforce did not take the push ({type(error).__name__}); asked again hourly"
            for member_id in sorted(set(standing) - batch.settled):
                self._park(member_id, batch, "stale", reason)
            metrics.add_metric(name="CrmMembersStale", unit="Count", value=batch.report.stale)
            raise
        finally:
            if batch.touched:  # whose state changed: saved together, even when Salesforce fails
                self.store.save({member_id: batch.states[member_id] for member_id in batch.touched}, self.clock())
        return batch.report

    def forget(self, contacts: Mapping[str, str]) -> int:
        """Erased members (member id -> their Contact): the journal records and Tasks the programme wrote on the
        Contact are deleted and its loyalty fields blanked (the member id included, so it is never found again;
        the Contact itself is the org's), then the member no longer names the Contact. How many were forgotten."""
        if not contacts:
            return 0
        journal = self.client.ids_where(JOURNAL, JOURNAL_MEMBER, sorted(contacts))
        tasks = self.client.ids_where("Task", "WhoId", sorted(set(contacts.values())), set_field=TASK_SEND_ID)
        deleted = self.client.delete_records(JOURNAL, journal) + self.client.delete_records("Task", tasks)
        blank = {name: None for name in LOYALTY_FIELDS if name != SMS_OPT_IN}  # consent stays the org's
        updated = self.client.update_records("Contact", [{"Id": c, **blank} for c in sorted(set(contacts.values()))])
        failed = [r for r in deleted + updated if not r.success and not set(c for c, _ in r.errors) & STALE_LINK_CODES]
        if failed:
            logger.warning("an erased member's records stay in the org for now", errors=str(failed[0].errors))
            raise CrmRetryableError("the org kept an erased member's records; the batch is retried")
        for member_id in sorted(contacts):
            self.directory.link_contact(member_id, None)
        logger.info("erased members forgotten in the org", members=len(contacts), deleted=len(deleted))
        metrics.add_metric(name="CrmMembersForgotten", unit="Count", value=len(contacts))
        return len(contacts)

    def record_tasks(self, sends: Iterable[SendRecord]) -> PushReport:
        """Record sent offers as completed Tasks on the members' Contacts (upserted: a retry adds none)."""
        report = PushReport()
        sends = list({(s.member_id, s.dedup, s.channel): s for s in sends}.values())
        if not sends:
            return report
        member_ids = {s.member_id for s in sends}
        standing = self.ledger.summaries(member_ids, expiry=False)
        contacts = {m: standing[m].profile.crm_contact_id if m in standing else None for m in member_ids}
        linked = [s for s in sends if contacts[s.member_id]]
        for sent in sends:
            if not contacts[sent.member_id]:
                self.offers.mark_task(sent.member_id, sent.dedup, sent.channel, "no_contact", "no Contact linked")
                report.tasks_not_recorded += 1
        if not linked:
            return report
        records = [task_fields(sent, str(contacts[sent.member_id])) for sent in linked]
        for sent, result in zip(linked, self.client.upsert_records("Task", TASK_SEND_ID, records), strict=True):
            if result.success:
                self.offers.mark_task(sent.member_id, sent.dedup, sent.channel, "pushed")
                report.tasks += 1
            elif result.retryable:
                raise CrmRetryableError("a Task could not be recorded for now; the batch is retried")
            else:
                self.offers.mark_task(sent.member_id, sent.dedup, sent.channel, "refused", _describe(result))
                report.tasks_not_recorded += 1
                metrics.add_metric(name="CrmTasksRefused", unit="Count", value=1)
        return report

    def record_journal(self, entries: Iterable[Entry], newly_linked: Iterable[str] = ()) -> PushReport:
        """Record ledger entries in their members' transaction journal on the Contact (upserted by the entry: a
        retry adds none), those of the journal's window only; for members just linked to a Contact, their earlier
        entries of the window too. An entry of a member without a Contact waits for the link."""
        report = PushReport()
        since = self.clock() - timedelta(days=round(DAYS_A_MONTH * self.journal_months))
        found = {(entry.member_id, entry.source_key): entry for entry in entries}
        for member_id in newly_linked:
            found.update({(member_id, e.source_key): e for e in self.ledger.entries_since(member_id, since)})
        kept = sorted((e for e in found.values() if e.created_at >= since), key=lambda e: e.created_at)
        if not kept:
            return report
        standing = self.ledger.summaries({entry.member_id for entry in kept}, expiry=False)
        contacts = {m: s.profile.crm_contact_id for m, s in standing.items() if s.profile.crm_contact_id}
        linked = [entry for entry in kept if entry.member_id in contacts]
        if not linked:
            return report
        records = [journal_record(entry, str(contacts[entry.member_id])) for entry in linked]
        for entry, result in zip(linked, self.client.upsert_records(JOURNAL, JOURNAL_KEY, records), strict=True):
            if result.success:
                report.journal += 1
            elif result.retryable:
                raise CrmRetryableError("a journal record could not be written for now; the batch is retried")
            else:
                report.journal_not_recorded += 1
                logger.warning("journal record refused", member_id=entry.member_id, reason=_describe(result))
                metrics.add_metric(name="CrmJournalRefused", unit="Count", value=1)
        return report

    def trim_journal(self, batch: int = 2000) -> int:
        """Delete the journal's records older than its window (``journal_months``), a batch a query, until none is
        left; the records deleted. A record the org will not delete now fails the run (the next day's retries)."""
        before = self.clock() - timedelta(days=round(DAYS_A_MONTH * self.journal_months))
        deleted = 0
        while ids := self.client.ids_before(JOURNAL, JOURNAL_DATE, before, batch):
            results = self.client.delete_records(JOURNAL, ids)
            gone = sum(1 for result in results if result.success or _already_gone(result))
            deleted += gone
            if gone < len(ids):
                raise CrmRetryableError(f"{len(ids) - gone} journal records older than the window were not deleted")
        logger.info("journal trimmed", deleted=deleted, before=before.date().isoformat())
        metrics.add_metric(name="CrmJournalRecordsDeleted", unit="Count", value=deleted)
        return deleted

    def record_review_tasks(self, held: Iterable[HeldForReview]) -> PushReport:
        """Show each order held for review as an open Task on its member's Contact, for a CRM user to follow up
        (upserted by the order: a retry adds none)."""
        report = PushReport()
        orders = {(h.order.shop, h.order.order_id): (h, h.member_id) for h in held if h.member_id is not None}
        if not orders:
            return report
        standing = self.ledger.summaries({member_id for _, member_id in orders.values()}, expiry=False)
        contact_of = {
            h: standing[member_id].profile.crm_contact_id if member_id in standing else None
            for h, member_id in orders.values()
        }
        linked = [h for h, contact_id in contact_of.items() if contact_id]
        for order, contact_id in contact_of.items():
            if not contact_id:
                self.directory.mark_review_task(order, "no_contact")
                report.tasks_not_recorded += 1
        if not linked:
            return report
        records = [review_task_fields(h, str(contact_of[h])) for h in linked]
        for order, result in zip(linked, self.client.upsert_records("Task", TASK_SEND_ID, records), strict=True):
            if result.success:
                self.directory.mark_review_task(order, "pushed")
                report.tasks += 1
            elif result.retryable:
                raise CrmRetryableError("a Task could not be recorded for now; the batch is retried")
            else:
                self.directory.mark_review_task(order, "refused")
                report.tasks_not_recorded += 1
                metrics.add_metric(name="CrmTasksRefused", unit="Count", value=1)
        return report

    def record_reward_tasks(self, arranged: Iterable[RewardToArrange]) -> PushReport:
        """Show each experience a member redeemed as an open Task on their Contact, for the person who arranges it
        (upserted by the redemption: a retry adds none)."""
        report = PushReport()
        rewards = list({(r.member_id, r.redemption_id): r for r in arranged}.values())
        if not rewards:
            return report
        standing = self.ledger.summaries({r.member_id for r in rewards}, expiry=False)
        contact_of = {r: standing[r.member_id].profile.crm_contact_id if r.member_id in standing else None
                      for r in rewards}  # fmt: skip
        for reward, contact_id in contact_of.items():
            if not contact_id:
                self.ledger.mark_redemption_task(reward.member_id, reward.redemption_id, "no_contact")
                report.tasks_not_recorded += 1
        linked = [r for r, contact_id in contact_of.items() if contact_id]
        if not linked:
            return report
        records = [reward_task_fields(r, str(contact_of[r])) for r in linked]
        for reward, result in zip(linked, self.client.upsert_records("Task", TASK_SEND_ID, records), strict=True):
            if result.success:
                self.ledger.mark_redemption_task(reward.member_id, reward.redemption_id, "pushed")
                report.tasks += 1
            elif result.retryable:
                raise CrmRetryableError("a Task could not be recorded for now; the batch is retried")
            else:
                self.ledger.mark_redemption_task(reward.member_id, reward.redemption_id, "refused")
                report.tasks_not_recorded += 1
                metrics.add_metric(name="CrmTasksRefused", unit="Count", value=1)
        return report

    def _link(self, summaries: dict[str, MemberSummary], contacts: dict[str, str], batch: _Batch) -> set[str]:
        unlinked = [m for m in summaries if m not in contacts]
        if not unlinked:
            return set()
        linked: set[str] = set()
        for member_id, contact_id in self.client.contacts_by_member_id(unlinked).items():
            if member_id in summaries:
                contacts[member_id] = contact_id
                linked.add(member_id)
        by_email: dict[str, str] = {}
        for member_id in unlinked:
            email = summaries[member_id].profile.email
            if member_id not in contacts and email:
                by_email[email.lower()] = member_id
        found = self.client.contacts_by_email(by_email) if by_email else {}
        to_create: list[str] = []
        for email, member_id in by_email.items():
            matches = found.get(email, [])
            if len(matches) == 1:
                contacts[member_id] = matches[0]
                linked.add(member_id)
            elif len(matches) > 1:
                self._park(member_id, batch, "parked", f"{len(matches)} Contacts share the member's e-mail")
            elif self.create_contacts:
                to_create.append(member_id)
            else:
                self._park(member_id, batch, "unlinked", "no Contact with the member's e-mail yet")
        searched = set(by_email.values())
        for member_id in unlinked:
            if member_id not in contacts and member_id not in searched:
                self._park(member_id, batch, "unlinked", "the member has no e-mail to find a Contact by")
        if to_create:
            self._create(to_create, summaries, contacts, linked, batch)
        for member_id in linked:
            self.directory.link_contact(member_id, contacts[member_id])
        batch.report.linked += len(linked)
        return linked

    def _create(
        self,
        member_ids: list[str],
        summaries: dict[str, MemberSummary],
        contacts: dict[str, str],
        linked: set[str],
        batch: _Batch,
    ) -> None:
        records = [new_contact(summaries[m]) for m in member_ids]
        for member_id, result in zip(member_ids, self.client.create_records("Contact", records), strict=True):
            if result.success and result.record_id:
                contacts[member_id] = result.record_id
                linked.add(member_id)
                batch.report.contacts_created += 1
            else:
                self._park(member_id, batch, "parked", _describe(result))

    def _send(self, updates: dict[str, dict[str, Any]], contacts: dict[str, str], batch: _Batch) -> None:
        pending = dict(updates)
        for attempt in range(RECORD_RETRIES + 1):
            if not pending:
                break
            members = list(pending)
            results = self.client.update_records("Contact", [pending[m] for m in members])
            retry: dict[str, dict[str, Any]] = {}
            for member_id, result in zip(members, results, strict=True):
                record = pending[member_id]
                state = batch.states[member_id]
                if result.success:
                    state.pushed.update({k: v for k, v in record.items() if k != "Id"})
                    state.status, state.reason = "synced", None
                    batch.touched.add(member_id)
                    batch.settled.add(member_id)
                    batch.report.pushed += 1
                elif result.retryable:
                    retry[member_id] = record
                elif any(code in STALE_LINK_CODES for code, _ in result.errors):
                    self.directory.link_contact(member_id, None)  # relinked on the next push
                    contacts.pop(member_id, None)
                    self._park(member_id, batch, "unlinked", "the linked Contact was deleted")
                else:
                    self._park(member_id, batch, "parked", _describe(result))
                    metrics.add_metric(name="CrmRecordsParked", unit="Count", value=1)
            pending = retry
            if pending and attempt < RECORD_RETRIES:
                self.sleep(0.5 * 2**attempt)
        if pending:
            raise CrmRetryableError(f"{len(pending)} Contacts stayed locked after {RECORD_RETRIES} retries")

    def _park(self, member_id: str, batch: _Batch, status: str, reason: str) -> None:
        state = batch.states.setdefault(member_id, CrmState())
        if (state.status, state.reason) != (status, reason):  # parked for the same reason before: nothing to write
            state.status, state.reason = status, reason
            batch.touched.add(member_id)
        batch.settled.add(member_id)
        if status == "unlinked":
            batch.report.unlinked += 1
        elif status == "stale":
            batch.report.stale += 1
        else:
            batch.report.parked += 1
        logger.info("member not in sync with the CRM", member_id=member_id, status=status, reason=reason)


@dataclass
class _Batch:
    """One push's bookkeeping: the members' CRM states, whose state changed (saved together at the end), and whose
    push reached an outcome (pushed, unchanged, parked or unlinked); the others are stale if Salesforce fails."""

    states: dict[str, CrmState]
    touched: set[str] = field(default_factory=set)
    settled: set[str] = field(default_factory=set)
    report: PushReport = field(default_factory=PushReport)


def _already_gone(result: RecordResult) -> bool:
    return any(code in STALE_LINK_CODES for code, _ in result.errors)


def _describe(result: RecordResult) -> str:
    return "; ".join(f"{code}: {message}" for code, message in result.errors) or "refused without a reason"
