"""What the CRM tells the programme: Contact changes (Outbound Messages) and Flow callouts from CRM users."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from loyalty.adapters.dynamodb_crm_state import CrmStateStore
from loyalty.adapters.dynamodb_directory import Directory
from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.adapters.salesforce_outbound import ContactNotification
from loyalty.enrolment import enrol_member
from loyalty.errors import MalformedPayloadError, UnknownMemberError
from loyalty.flow_callouts import (
    CalloutContact,
    FlowCallout,
    MemberEnrolCallout,
    OfferRequestedCallout,
    PointsAdjustmentCallout,
    TierOverrideCallout,
)
from loyalty.observability import logger
from loyalty.offer_messages import template_keys
from loyalty.offer_requests import ContactSnapshot, CrmConsent, Offer, OfferKind, OfferRequest, Trigger

# consent field -> (the Contact field that shows it, the value it has when the member said no)
CONSENT_ON_CONTACT: dict[str, tuple[str, bool]] = {
    "email_consent": ("HasOptedOutOfEmail", True),
    "sms_consent": ("Loyalty_SMS_Opt_In__c", False),
}


class CrmInbound:
    def __init__(
        self,
        ledger: Ledger,
        directory: Directory,
        crm_states: CrmStateStore,
        send_offers: Callable[[list[OfferRequest]], None],
    ) -> None:
        self.ledger = ledger
        self.directory = directory
        self.crm_states = crm_states
        self.send_offers = send_offers

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
        for field in self._stale_consent(member_id, known):
            del known[field]
        applied = self.directory.update_profile(member_id, known, change.last_modified)
        return "contact change applied" if applied else "contact change older than the last applied: ignored"

    def _stale_consent(self, member_id: str, changes: dict[str, Any]) -> list[str]:
        """Consent the Contact would give back before it has even shown the member's opt-out.

        An Outbound Message carries every field, so a CRM user editing the phone right after the member
        unsubscribed sends the old "yes". A "yes" against the member's "no" counts only once the Contact has
        shown that "no" (crm_sync pushed it): then a CRM user really changed it back."""
        wants_yes = [f for f in CONSENT_ON_CONTACT if changes.get(f) is True]
        if not wants_yes:
            return []
        profile = self.ledger.summary(member_id).profile
        pushed = self.crm_states.states([member_id]).get(member_id)
        shown = pushed.pushed if pushed is not None else {}
        stale = []
        for field in wants_yes:
            contact_field, showing_no = CONSENT_ON_CONTACT[field]
            if getattr(profile, field) is False and shown.get(contact_field) != showing_no:
                logger.info("consent from the CRM ignored: the Contact had not shown the opt-out", field=field)
                stale.append(field)
        return stale

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
        if isinstance(callout, TierOverrideCallout):
            member_id = self._member_of(callout.contact)
            tier = self._tier_named(callout.override.tier)
            result = self.ledger.override_tier(
                member_id,
                tier,
                callout.override.valid_until,
                reason=callout.override.reason,
                actor=f"salesforce-user:{callout.source.requested_by_user_id}",
                override_id=f"salesforce:{callout.request_id}",
            )
            first = self.directory.record_request(callout.request_id)
            return result.duplicate or not first
        if isinstance(callout, OfferRequestedCallout):
            if callout.offer.template_key not in template_keys():
                raise MalformedPayloadError(
                    f"offer.templateKey: no such template; the programme has {', '.join(sorted(template_keys()))}"
                )
            member_id = self._member_of(callout.contact)
            # queued before the request is noted: a crash in between sends a repeat, which the sender drops
            self.send_offers([offer_request(callout, member_id)])
            return not self.directory.record_request(callout.request_id)
        raise AssertionError(f"unhandled callout {type(callout).__name__}")  # the union is exhaustive

    def _tier_named(self, name: str) -> str:
        """The tier a CRM user named, by its machine name or its label, in any case."""
        wanted = name.strip().casefold()
        for tier in self.ledger.rules.tiers:
            if wanted in (tier.name.casefold(), tier.display_name.casefold()):
                return tier.name
        return self.ledger.rules.tier(name).name  # UnknownTierError, naming the tiers there are

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


def offer_request(callout: OfferRequestedCallout, member_id: str) -> OfferRequest:
    """The offer a CRM Flow asked for, as the offer sender takes it."""
    wanted = callout.offer
    contact = callout.contact
    return OfferRequest(
        request_id=f"salesforce:{callout.request_id}",
        member_id=member_id,
        trigger=Trigger.CRM,
        template_key=wanted.template_key,
        requested_at=callout.requested_at,
        offer=Offer(
            code=wanted.code,
            kind=OfferKind(wanted.kind),
            multiplier=wanted.multiplier,
            bonus_points=wanted.bonus_points,
            valid_from=wanted.valid_from,
            valid_until=wanted.valid_until,
        ),
        channels=tuple(dict.fromkeys(wanted.channels)),
        crm_consent=CrmConsent(email=callout.consent.email, sms=callout.consent.sms),
        contact=ContactSnapshot(
            contact_id=contact.id,
            first_name=contact.first_name,
            email=contact.email,
            mobile_phone=contact.mobile_phone,
            locale=contact.locale,
        ),
        requested_by=f"salesforce-user:{callout.source.requested_by_user_id} (Flow {callout.source.flow_api_name})",
    )
