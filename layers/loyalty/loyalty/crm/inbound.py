"""What the CRM tells the programme: Contact changes (Outbound Messages) and Flow callouts from CRM users."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

from loyalty.clock import now as clock_now
from loyalty.consent import apply_profile_changes, stale_crm_consent
from loyalty.crm.fields import HAS_OPTED_OUT_OF_EMAIL, SMS_OPT_IN, consent_on
from loyalty.crm.flow_callouts import (
    CalloutContact,
    FlowCallout,
    MemberBlockCallout,
    MemberEnrolCallout,
    MemberEraseCallout,
    MemberExportCallout,
    MemberLeaveCallout,
    NpsResponseCallout,
    OfferRequestedCallout,
    PointsAdjustmentCallout,
    RewardRedeemCallout,
    TierOverrideCallout,
    accepted_response,
    parse_callout,
    verify_callout,
)
from loyalty.crm.outbound_messages import (
    ContactNotification,
    acknowledgement,
    org_id_matches,
    parse_outbound_message,
    verify_token,
)
from loyalty.enrolment import enrol_member
from loyalty.errors import ForeignOrgError, MalformedPayloadError, UnknownMemberError
from loyalty.ledger.service import Ledger
from loyalty.ledger.state import EmailMove
from loyalty.observability import logger, metrics
from loyalty.offers.messages import template_keys
from loyalty.offers.records import OfferQueue
from loyalty.offers.requests import ContactSnapshot, CrmConsent, Offer, OfferKind, OfferRequest, Trigger
from loyalty.ports.crm import CrmStates
from loyalty.ports.directory import CONSENT_FIELDS, Directory
from loyalty.ports.privacy import EXPORT_LINK_DAYS
from loyalty.ports.surveys import NpsAnswer, NpsAnswers
from loyalty.programme.tiers import month_key

RedeemReward = Callable[[str, Any, str, str], tuple[dict[str, Any], bool]]  # (member, body, key, actor) -> answer, made
EraseMember = Callable[[str], Any]  # member id -> what was erased (counts: logged)
ExportMember = Callable[[str, str], str]  # (member id, request id) -> a download link
FUTURE_TOLERANCE = timedelta(minutes=5)  # clocks differ a little; a change time beyond that is refused


class CrmInbound:
    def __init__(
        self,
        ledger: Ledger,
        directory: Directory,
        crm_states: CrmStates,
        offer_queue: OfferQueue,
        org_id: str,
        callout_secret: Callable[[], str],
        outbound_token: Callable[[], str],
        clock: Callable[[], datetime] = clock_now,
        redeem_reward: RedeemReward | None = None,
        nps_answers: NpsAnswers | None = None,
        erase_member: EraseMember | None = None,
        export_member: ExportMember | None = None,
    ) -> None:
        self.ledger = ledger
        self.directory = directory
        self.crm_states = crm_states
        self.offer_queue = offer_queue
        self.org_id = org_id
        self.callout_secret = callout_secret
        self.outbound_token = outbound_token
        self.clock = clock
        self.redeem_reward = redeem_reward
        self.nps_answers = nps_answers
        self.erase_member = erase_member
        self.export_member = export_member
        self.apply_notification: Callable[..., str] = self.apply_contact_change  # wiring: once per notification

    def outbound_message(self, raw_body: bytes, token: str | None) -> bytes:
        """Apply an Outbound Message's Contact changes (each notification once) and return the SOAP ack.

        `token` is the endpoint URL's `token` parameter: without the programme's, nothing is read or applied."""
        verify_token(token, self.outbound_token())
        message = parse_outbound_message(raw_body)
        self._check_org(message.organization_id)
        latest = self.clock() + FUTURE_TOLERANCE
        if any(notification.last_modified > latest for notification in message.notifications):
            # applied, it would make every real change after it look older, and be ignored
            raise MalformedPayloadError(
                f"outbound message: a LastModifiedDate more than {FUTURE_TOLERANCE.seconds // 60} minutes ahead"
            )
        for notification in message.notifications:
            outcome = self.apply_notification(change=notification)
            logger.info(outcome, notification_id=notification.notification_id)
        metrics.add_metric(name="CrmContactChanges", unit="Count", value=len(message.notifications))
        return acknowledgement()

    def flow_callout(self, raw_body: bytes, headers: Mapping[str, str]) -> dict[str, Any]:
        """Verify, parse and apply a Flow callout; the JSON answer says whether it was a repeat."""
        verify_callout(raw_body, headers, self.callout_secret(), self.clock())
        callout = parse_callout(raw_body)
        self._check_org(callout.org_id)
        if isinstance(callout, RewardRedeemCallout):
            redemption, duplicate = self._redeem(callout)
            more = {"redemptionId": redemption["redemptionId"], "redemptionStatus": redemption["status"]}
        elif isinstance(callout, MemberEraseCallout):
            duplicate, more = self._erase(callout), {}
        elif isinstance(callout, MemberLeaveCallout):
            member_id = self._member_of(callout.contact)
            leaving_on = self.ledger.leave(member_id)
            logger.info("member leaves the programme", member_id=member_id, on=leaving_on.isoformat(),
                        requested_by=callout.source.requested_by_user_id, request_id=callout.request_id)  # fmt: skip
            metrics.add_metric(name="MembersLeaving", unit="Count", value=1)
            duplicate, more = (
                not self.directory.record_request(callout.request_id),
                {"leavingOn": leaving_on.isoformat()},
            )
        elif isinstance(callout, MemberExportCallout):
            url, duplicate = self._export(callout)
            more = {"downloadUrl": url, "expiresInDays": EXPORT_LINK_DAYS}
        else:
            duplicate, more = self.apply_callout(callout), {}
        logger.info("flow callout applied", type=callout.type, request_id=callout.request_id, duplicate=duplicate)
        metrics.add_metric(name="CrmCallouts", unit="Count", value=1)
        return accepted_response(callout.request_id, duplicate, **more)

    def _redeem(self, callout: RewardRedeemCallout) -> tuple[dict[str, Any], bool]:
        """The redemption a service agent asked for (the requestId its idempotency key), and whether it was made
        before."""
        if self.redeem_reward is None:
            raise RuntimeError("reward.redeem needs the rewards")
        member_id = self._member_of(callout.contact)
        body = {"rewardId": callout.reward_id} | ({"shop": callout.shop} if callout.shop else {})
        actor = f"salesforce-user:{callout.source.requested_by_user_id}"
        redemption, made = self.redeem_reward(member_id, body, f"salesforce:{callout.request_id}", actor)
        return redemption, not made

    def _erase(self, callout: MemberEraseCallout) -> bool:
        """Erase the Contact's member; True if this request erased them before (their e-mail then finds no one)."""
        if self.erase_member is None:
            raise RuntimeError("member.erase needs the privacy requests")
        try:
            member_id = self._member_of(callout.contact)
        except UnknownMemberError:
            if self.directory.request_seen(callout.request_id):
                return True
            raise
        erased = self.erase_member(member_id)
        logger.info(
            "member erased at a CRM user's request",
            member_id=member_id,
            requested_by=callout.source.requested_by_user_id,
            flow=callout.source.flow_api_name,
            request_id=callout.request_id,
            erased=str(erased),
        )
        metrics.add_metric(name="MembersErased", unit="Count", value=1)
        return not self.directory.record_request(callout.request_id)

    def _export(self, callout: MemberExportCallout) -> tuple[str, bool]:
        """The Contact's member's data for download (a repeat makes a fresh link); and whether it is a repeat."""
        if self.export_member is None:
            raise RuntimeError("member.export needs the privacy requests")
        member_id = self._member_of(callout.contact)
        url = self.export_member(member_id, f"salesforce-{callout.request_id}")
        logger.info(
            "member's data exported at a CRM user's request",
            member_id=member_id,
            requested_by=callout.source.requested_by_user_id,
            request_id=callout.request_id,
        )
        metrics.add_metric(name="MemberExports", unit="Count", value=1)
        return url, not self.directory.record_request(callout.request_id)

    def _check_org(self, org_id: str) -> None:
        if not org_id_matches(self.org_id, org_id):
            logger.warning("salesforce message from another organisation refused")
            metrics.add_metric(name="CrmForeignOrgRefused", unit="Count", value=1)
            raise ForeignOrgError("this endpoint serves another Salesforce organisation")

    def apply_contact_change(self, change: ContactNotification) -> str:
        """Link the member to the Contact if it is theirs and they have none, and apply the Contact's consent,
        birthday, language, phone and names, unless a later change was applied; a Contact that is not the
        member's (found by e-mail while they have another, or parked) changes nothing."""
        member_id = self._member(change.loyalty_member_id, change.email)
        if member_id is None:
            return "no member for this Contact"
        current = self.ledger.summary(member_id, expiry=False).profile.crm_contact_id
        linked = self._link(member_id, change, current)
        if not (linked or change.loyalty_member_id == member_id or change.contact_id == current):
            # another Contact with the member's e-mail (a duplicate a CRM user made, or one of several while the
            # member is parked) says nothing about the member: its defaults must not undo their opt-out
            return "another Contact with the member's e-mail: ignored"
        profile: dict[str, Any] = {
            # a Contact that carries the member id is theirs: it replaces another link, in time order as the rest
            "crm_contact_id": change.contact_id if change.loyalty_member_id == member_id else None,
            "phone": change.mobile_phone,
            "birthdate": change.birthdate.isoformat() if change.birthdate else None,
            **consent_on({HAS_OPTED_OUT_OF_EMAIL: change.has_opted_out_of_email, SMS_OPT_IN: change.sms_opt_in}),
            "first_name": change.first_name,
            "last_name": change.last_name,
            "locale": change.locale,
        }
        known = {name: value for name, value in profile.items() if value is not None}
        if any(known.get(field) is True for field in CONSENT_FIELDS):
            pushed = self.crm_states.states([member_id]).get(member_id)
            shown = consent_on(pushed.pushed if pushed is not None else {})
            for field in stale_crm_consent(self.ledger.summary(member_id, expiry=False).profile, known, shown):
                del known[field]
        applied = apply_profile_changes(self.directory, member_id, known, change.last_modified)
        outcome = "contact change applied" if applied else "contact change older than the last applied: ignored"
        if change.email and (change.loyalty_member_id == member_id or change.contact_id == current):
            moved = self.ledger.change_email(member_id, change.email, change.last_modified)  # the Contact's new one
            if moved is EmailMove.TAKEN:
                logger.warning("a Contact's new e-mail is another member's: parked", member_id=member_id)
                metrics.add_metric(name="MemberEmailParked", unit="Count", value=1)
            outcome += {EmailMove.CHANGED: "; e-mail changed", EmailMove.TAKEN: "; new e-mail parked"}.get(moved, "")
        return f"member linked to the Contact; {outcome}" if linked else outcome

    def _link(self, member_id: str, change: ContactNotification, current: str | None) -> bool:
        """Link a member who has no Contact to this one now, if it is theirs: it carries their member id, or it has
        their e-mail and they are not parked because several Contacts share it (a person chooses then). Linking
        changes the member, so the table's stream brings them to the CRM push, which writes the member id and
        the loyalty fields to the Contact within its batching window.

        Made however late the message arrives (Salesforce redelivers for up to 24 hours, and the member's profile
        may have changed meanwhile): that the member has a Contact is a fact, not a change to order in time. A
        Contact found by e-mail never takes the place of the member's own."""
        if current is not None:
            return False
        if change.loyalty_member_id != member_id:  # found by e-mail
            state = self.crm_states.states([member_id]).get(member_id)
            if state is not None and state.status == "parked":
                return False
        self.directory.link_contact(member_id, change.contact_id)
        metrics.add_metric(name="CrmMembersLinkedByOutboundMessage", unit="Count", value=1)
        return True

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
            member_id = found if found is not None else enrol_member(self.ledger, self.directory, email, {}, via="crm")
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
            self.offer_queue.send([offer_request(callout, member_id)])
            return not self.directory.record_request(callout.request_id)
        if isinstance(callout, MemberBlockCallout):
            member_id = self._member_of(callout.contact)
            actor = f"salesforce-user:{callout.source.requested_by_user_id}"
            reason = (
                f"{callout.reason.strip()} ({actor})" if callout.type == "member.block" and callout.reason else None
            )
            self.ledger.block(member_id, reason, actor)
            logger.info(
                "member blocked" if reason else "member's block lifted", member_id=member_id, requested_by=actor,
                request_id=callout.request_id,
            )  # fmt: skip
            metrics.add_metric(name="MembersBlocked" if reason else "MembersUnblocked", unit="Count", value=1)
            return not self.directory.record_request(callout.request_id)
        if isinstance(callout, NpsResponseCallout):
            saved = self._nps_answer(callout)
            first = self.directory.record_request(callout.request_id)
            return not (saved and first)
        raise AssertionError(f"unhandled callout {type(callout).__name__}")  # the rest: see flow_callout

    def _nps_answer(self, callout: NpsResponseCallout) -> bool:
        """Keep the answer with the member's segment and earned tier as they are now (it counts by them in its month);
        False if the same or a later answer to the survey is kept already."""
        if self.nps_answers is None:
            raise RuntimeError("nps.response needs the NPS answers")
        if callout.responded_at > self.clock() + FUTURE_TOLERANCE:
            raise MalformedPayloadError(f"respondedAt: more than {FUTURE_TOLERANCE.seconds // 60} minutes ahead")
        member_id = self._member_of(callout.contact)
        member = self.ledger.summary(member_id, expiry=False)
        saved = self.nps_answers.save(
            NpsAnswer(
                member_id=member_id,
                survey_id=callout.survey_id,
                score=callout.score,
                responded_at=callout.responded_at,
                month=month_key(self.ledger.rules.local_date(callout.responded_at)),
                segment=member.segment,
                tier=member.earned_tier,  # the figures count members by their earned tier
                comment=callout.comment,
                request_id=callout.request_id,
            )
        )
        if saved:
            metrics.add_metric(name="NpsAnswers", unit="Count", value=1)
        return saved

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
                self.ledger.summary(member_id, expiry=False)
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
