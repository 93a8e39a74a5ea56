"""Push members' loyalty fields to their Salesforce Contacts: coalesced, only what changed, 200 a request.

For the members changed in a batch: read each member's current summary once (so ten changes in a batch
become one record with the latest values), link members to Contacts (by Loyalty_Member_Id__c, else by
e-mail with one query for the batch, then the member id is written to the Contact), send only the fields
that differ from the last successful push, and keep what Salesforce refused: retryable per-record failures
are retried a bounded number of times, validation failures are parked with their reason, members without a
Contact are parked as unlinked (never a duplicate Contact unless creating Contacts is switched on).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from loyalty.crm_fields import MEMBER_ID, SEGMENTS, TASK_SEND_ID
from loyalty.errors import CrmRetryableError, UnknownMemberError
from loyalty.ledger import MemberSummary
from loyalty.observability import logger, metrics
from loyalty.program import ProgramRules

if TYPE_CHECKING:
    from loyalty.adapters.dynamodb_crm_state import CrmStateStore
    from loyalty.adapters.dynamodb_directory import Directory
    from loyalty.adapters.dynamodb_ledger import Ledger
    from loyalty.adapters.dynamodb_offers import OfferStore
    from loyalty.adapters.salesforce import RecordResult, SalesforceClient

STALE_LINK_CODES = frozenset({"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"})
RECORD_RETRIES = 3


@dataclass
class CrmState:
    pushed: dict[str, Any] = field(default_factory=dict)
    status: str = "synced"
    reason: str | None = None


@dataclass
class PushReport:
    pushed: int = 0  # Contacts updated
    unchanged: int = 0
    parked: int = 0
    unlinked: int = 0
    linked: int = 0
    contacts_created: int = 0
    tasks: int = 0  # sent offers recorded as Tasks
    tasks_not_recorded: int = 0


@dataclass(frozen=True)
class SentOffer:
    """An offer sent to a member, to be recorded as a completed Task on their Contact."""

    member_id: str
    dedup: str
    channel: str  # email | sms
    template_key: str
    offer_code: str | None
    trigger: str
    language: str | None
    subject: str | None
    sent_at: datetime

    @property
    def send_id(self) -> str:
        """The Task's external id: the same send always upserts the same Task."""
        digest = hashlib.sha256(f"{self.dedup}#{self.channel}".encode()).hexdigest()[:24]
        return f"{self.member_id}:{digest}"


def task_fields(sent: SentOffer, contact_id: str) -> dict[str, Any]:
    what = sent.offer_code or sent.template_key.replace("_", " ")
    channel = "E-mail" if sent.channel == "email" else "SMS"
    return {
        "WhoId": contact_id,
        "Subject": f"Loyalty offer {what} sent by {channel} (template {sent.template_key})"[:255],
        "Status": "Completed",
        "ActivityDate": sent.sent_at.astimezone(UTC).date().isoformat(),
        "Type": "Email" if sent.channel == "email" else "SMS",
        "Description": (
            f"Sent by the loyalty programme on {sent.sent_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC ({sent.trigger}), "
            f"in {sent.language or 'en'}: {sent.subject or ''}"
        )[:32000],
        TASK_SEND_ID: sent.send_id,
    }


def contact_fields(summary: MemberSummary, rules: ProgramRules) -> dict[str, Any]:
    """The member's loyalty fields as Salesforce stores them.

    A value that is not known yet (the segment before the first review) is left out, not blanked; a value
    that no longer applies (tier expiry after falling to the lowest tier, an override that ended) is blanked."""
    next_tier = rules.tier(summary.next_tier) if summary.next_tier else None
    fields: dict[str, Any] = {
        MEMBER_ID: summary.member_id,
        "Loyalty_Points__c": summary.available,
        "Loyalty_Pending_Points__c": summary.pending,
        "Loyalty_Lifetime_Points__c": summary.lifetime,
        "Loyalty_Tier__c": rules.tier(summary.tier).display_name,
        "Loyalty_Next_Tier__c": next_tier.display_name if next_tier else None,
        "Loyalty_Points_To_Next_Tier__c": summary.points_to_next_tier,
        "Loyalty_Points_To_Keep_Tier__c": summary.points_to_keep_tier,
        "Loyalty_Tier_Expires_On__c": _date(summary.tier_expires_on),
        "Loyalty_Tier_Override_Until__c": _date(summary.tier_override_until),
        "Loyalty_Tier_Override_Reason__c": summary.tier_override_reason,
        "Loyalty_Expiring_Points__c": summary.next_expiry_points,
        "Loyalty_Points_Expire_On__c": _date(summary.next_expiry_on),
        "Loyalty_Enrolled_On__c": summary.enrolled_at.astimezone(UTC).date().isoformat(),
    }
    if summary.segment is not None:
        fields["Loyalty_Segment__c"] = SEGMENTS[summary.segment]
        fields["Loyalty_Segment_Reason__c"] = summary.segment_reason
    if summary.last_activity is not None:
        fields["Loyalty_Last_Activity__c"] = summary.last_activity.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    if summary.profile.sms_consent is not None:
        fields["Loyalty_SMS_Opt_In__c"] = summary.profile.sms_consent
    if summary.profile.email_consent is not None:  # an opt-out (unsubscribe, bounce, complaint) reaches the CRM
        fields["HasOptedOutOfEmail"] = not summary.profile.email_consent
    return fields


def _date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


@dataclass
class CrmSync:
    ledger: Ledger
    client: SalesforceClient
    store: CrmStateStore
    directory: Directory
    offers: OfferStore
    create_contacts: bool = False
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], datetime] = field(default_factory=lambda: lambda: datetime.now(UTC))

    def push(self, member_ids: Iterable[str]) -> PushReport:
        report = PushReport()
        summaries: dict[str, MemberSummary] = {}
        for member_id in sorted(set(member_ids)):
            try:
                summaries[member_id] = self.ledger.summary(member_id)
            except UnknownMemberError:
                logger.warning("member gone before its CRM push", member_id=member_id)
        if not summaries:
            return report
        states = self.store.states(summaries)
        contacts = {m: s.profile.crm_contact_id for m, s in summaries.items() if s.profile.crm_contact_id}
        newly_linked = self._link(summaries, contacts, states, report)
        updates: dict[str, dict[str, Any]] = {}
        for member_id, contact_id in contacts.items():
            state = states.setdefault(member_id, CrmState())
            fields = contact_fields(summaries[member_id], self.ledger.rules)
            changed = {
                name: value
                for name, value in fields.items()
                if member_id in newly_linked or state.status != "synced" or state.pushed.get(name, ...) != value
            }
            if changed:
                updates[member_id] = {"Id": contact_id, **changed}
            else:
                report.unchanged += 1
        self._send(updates, states, contacts, report)
        return report

    def record_tasks(self, sends: Iterable[SentOffer]) -> PushReport:
        """Record sent offers as completed Tasks on the members' Contacts (upserted: a retry adds none)."""
        report = PushReport()
        sends = list({(s.member_id, s.dedup, s.channel): s for s in sends}.values())
        if not sends:
            return report
        contacts: dict[str, str | None] = {}
        for member_id in sorted({s.member_id for s in sends}):
            try:
                contacts[member_id] = self.ledger.summary(member_id).profile.crm_contact_id
            except UnknownMemberError:
                contacts[member_id] = None
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

    def _link(
        self,
        summaries: dict[str, MemberSummary],
        contacts: dict[str, str],
        states: dict[str, CrmState],
        report: PushReport,
    ) -> set[str]:
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
                self._park(member_id, states, "parked", f"{len(matches)} Contacts share the member's e-mail", report)
            elif self.create_contacts:
                to_create.append(member_id)
            else:
                self._park(member_id, states, "unlinked", "no Contact with the member's e-mail yet", report)
        searched = set(by_email.values())
        for member_id in unlinked:
            if member_id not in contacts and member_id not in searched:
                self._park(member_id, states, "unlinked", "the member has no e-mail to find a Contact by", report)
        if to_create:
            self._create(to_create, summaries, contacts, linked, states, report)
        for member_id in linked:
            self.directory.link_contact(member_id, contacts[member_id])
        report.linked += len(linked)
        return linked

    def _create(
        self,
        member_ids: list[str],
        summaries: dict[str, MemberSummary],
        contacts: dict[str, str],
        linked: set[str],
        states: dict[str, CrmState],
        report: PushReport,
    ) -> None:
        records = [
            {
                "LastName": summaries[m].profile.first_name or "Member",
                "Email": summaries[m].profile.email,
                MEMBER_ID: m,
            }
            for m in member_ids
        ]
        for member_id, result in zip(member_ids, self.client.create_records("Contact", records), strict=True):
            if result.success and result.record_id:
                contacts[member_id] = result.record_id
                linked.add(member_id)
                report.contacts_created += 1
            else:
                self._park(member_id, states, "parked", _describe(result), report)

    def _send(
        self,
        updates: dict[str, dict[str, Any]],
        states: dict[str, CrmState],
        contacts: dict[str, str],
        report: PushReport,
    ) -> None:
        now = self.clock()
        pending = dict(updates)
        for attempt in range(RECORD_RETRIES + 1):
            if not pending:
                break
            members = list(pending)
            results = self.client.update_records("Contact", [pending[m] for m in members])
            retry: dict[str, dict[str, Any]] = {}
            for member_id, result in zip(members, results, strict=True):
                record = pending[member_id]
                state = states[member_id]
                if result.success:
                    state.pushed.update({k: v for k, v in record.items() if k != "Id"})
                    state.status, state.reason = "synced", None
                    self.store.save(member_id, state, now)
                    report.pushed += 1
                elif result.retryable:
                    retry[member_id] = record
                elif any(code in STALE_LINK_CODES for code, _ in result.errors):
                    self.directory.link_contact(member_id, None)  # relinked on the next push
                    contacts.pop(member_id, None)
                    self._park(member_id, states, "unlinked", "the linked Contact was deleted", report)
                else:
                    self._park(member_id, states, "parked", _describe(result), report)
                    metrics.add_metric(name="CrmRecordsParked", unit="Count", value=1)
            pending = retry
            if pending and attempt < RECORD_RETRIES:
                self.sleep(0.5 * 2**attempt)
        if pending:
            raise CrmRetryableError(f"{len(pending)} Contacts stayed locked after {RECORD_RETRIES} retries")

    def _park(self, member_id: str, states: dict[str, CrmState], status: str, reason: str, report: PushReport) -> None:
        state = states.setdefault(member_id, CrmState())
        state.status, state.reason = status, reason
        self.store.save(member_id, state, self.clock())
        if status == "unlinked":
            report.unlinked += 1
        else:
            report.parked += 1
        logger.info("member not in sync with the CRM", member_id=member_id, status=status, reason=reason)


def _describe(result: RecordResult) -> str:
    return "; ".join(f"{code}: {message}" for code, message in result.errors) or "refused without a reason"
