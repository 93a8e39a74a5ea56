"""What the CRM tells the programme: Contact changes (Outbound Messages) and Flow callouts from CRM users."""

from __future__ import annotations

from typing import Any

from loyalty.adapters.dynamodb_directory import Directory
from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.adapters.salesforce_outbound import ContactNotification
from loyalty.enrolment import enrol_member
from loyalty.errors import UnknownMemberError
from loyalty.flow_callouts import CalloutContact, FlowCallout, MemberEnrolCallout, PointsAdjustmentCallout
from loyalty.observability import logger


class CrmInbound:
    def __init__(self, ledger: Ledger, directory: Directory) -> None:
        self.ledger = ledger
        self.directory = directory

    def apply_contact_change(self, change: ContactNotification) -> str:
        """Apply a Contact's consent, birthday, language, phone and names, unless a later change was applied."""
        member_id = self._member(change.loyalty_member_id, change.email)
        if member_id is None:
            return "no member for this Contact"
        profile: dict[str, Any] = {
            "crm_contact_id": change.contact_id,
            "phone": change.mobile_phone,
            "birthdate": change.birthdate.isoformat() if change.birthdate else None,
            "email_consent": None if change.has_opted_out_of_email is None else not change.has_opted_out_of_email,
            "sms_consent": change.sms_opt_in,
            "first_name": change.first_name,
            "last_name": change.last_name,
            "locale": change.locale,
        }
        known = {name: value for name, value in profile.items() if value is not None}
        applied = self.directory.update_profile(member_id, known, change.last_modified)
        return "contact change applied" if applied else "contact change older than the last applied: ignored"

    def apply_callout(self, callout: FlowCallout) -> bool:
        """Apply a Flow callout once; True if this request id was applied before (nothing changed now)."""
        if isinstance(callout, PointsAdjustmentCallout):
            member_id = self._member_of(callout.contact)
            result = self.ledger.adjust(
                member_id,
                callout.adjustment.points,
                actor=f"salesforce-user:{callout.source.requested_by_user_id}",
                reason=f"{callout.adjustment.reason} (Flow {callout.source.flow_api_name})",
                adjustment_id=f"salesforce:{callout.request_id}",
            )
            first = self.directory.record_request(callout.request_id)
            return result.duplicate or not first
        if isinstance(callout, MemberEnrolCallout):
            email = callout.contact.email
            found = self._member(callout.contact.loyalty_member_id, email)
            member_id = found if found is not None else enrol_member(self.ledger, self.directory, email, {})
            if callout.contact.id:
                self.directory.link_contact(member_id, callout.contact.id)
            logger.info("member enrolled from the CRM", member_id=member_id)
            return not self.directory.record_request(callout.request_id)
        raise AssertionError(f"unhandled callout {type(callout).__name__}")  # the union is exhaustive

    def _member_of(self, contact: CalloutContact) -> str:
        member_id = self._member(contact.loyalty_member_id, contact.email)
        if member_id is None:
            raise UnknownMemberError("no member for this Contact")
        return member_id

    def _member(self, member_id: str | None, email: str | None) -> str | None:
        if member_id:
            try:
                self.ledger.summary(member_id)
                return member_id
            except UnknownMemberError:
                pass
        return self.ledger.member_for_email(email) if email else None
