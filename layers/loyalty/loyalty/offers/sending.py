"""Sending an offer: for each channel, consent at send time (with its evidence), the frequency cap, quiet hours
for SMS, the member's language, and one message per member, offer and validity.

For a request and each channel it asks for (or both), in this order:
1. Already decided for this member, offer and channel (a repeated request, a redelivery): nothing more.
2. Consent, at send time. E-mail needs an address and SMS a mobile number. Both the programme's latest flag
   (the CRM's Outbound Messages, the shops, bounces, complaints, SMS opt-outs and unsubscribe links keep it)
   and the flag the CRM sent with the request count: any "no" refuses; marketing needs at least one "yes",
   a service message (an expiry warning) only the absence of a "no". For SMS, SNS's opt-out list is checked
   too, and an opt-out found there is recorded. A refusal is stored with the flags, values, times and sources.
3. SMS in the member's quiet hours (their time zone, from their language) is held until the hours end, not
   dropped; the hourly job `release_held` sends it then.
4. The frequency cap per channel (marketing and service counted apart): over the cap, it is recorded as capped.
   What the member has just asked for (a reward's code, a link to spend points) is never capped.
5. Rendered in the member's language and sent (SES v2 with the configuration set; SNS with the sender id).
   A sent offer gets a CRM Task through crm_sync. A failure worth retrying releases the claim and raises, so
   the queue delivers the request again; a refusal by the service is recorded as failed, with the reason.
An offer that changes earning (multiplier, bonus points) is granted to the member first, whatever the channels
decide: the CRM decided the offer; the messages only tell the member about it.

Requests to the table, fewest first (the sender is most of the offer path's cost): the member and each channel's
record and cap are read together (one BatchGetItem; a repeat with nothing to grant stops there). Every channel is
decided from that read; the decisions that send nothing (refused, held, capped) and the claims of the channels to
send, each with its cap slot, are stored in one commit, all or nothing, each record only if still as read and each
cap only at the version read (a failed condition: another delivery or sender got there first, so read and decide
again). Then each claimed channel is sent and its decision stored at once, before the next is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from loyalty.consent import carrier_opt_out, consent_to_send, opt_out
from loyalty.errors import ChannelOptedOutError, ChannelRejectedError, OfferInFlightError, UnknownMemberError
from loyalty.ledger.model import MemberSummary
from loyalty.ledger.service import Ledger
from loyalty.observability import logger, mask_email, mask_phone, metrics
from loyalty.offers.messages import MessageFacts, TemplateError, language_for, render_email, render_sms
from loyalty.offers.records import CapChange, CapState, OfferRecords, OfferState, RecordWrite, SendRecord, Status
from loyalty.offers.requests import Channel, OfferRequest, earning_grant
from loyalty.offers.rules import Cap, OfferRules
from loyalty.ports.channels import EmailChannel, SmsChannel
from loyalty.ports.directory import Directory

CHANNELS: tuple[Channel, ...] = ("email", "sms")
# A claim this old belongs to a sender that died: the function's timeout (30 s) ends every sender sooner, and the
# queue redelivers after its visibility timeout (180 s), by when the claim can be taken over.
STALE_CLAIM = timedelta(minutes=2)


METRIC_OF = {
    Status.SENT: "OffersSent",
    Status.REFUSED: "OffersRefused",
    Status.CAPPED: "OffersCapped",
    Status.HELD: "OffersHeld",
    Status.FAILED: "OffersFailed",
    Status.HOLDOUT: "OffersHeldOut",
}


def _cap_kind(request: OfferRequest) -> str:
    return "service" if request.service else "marketing"


def _settled(existing: SendRecord | None, released: bool, now: datetime) -> Status | None:
    """The status a request gets without deciding again: decided before, or held and its hold not over yet."""
    if existing is None or existing.status is Status.SENDING:
        return None
    if not (existing.status is Status.HELD and released):
        return existing.status  # decided before: a repeated request sends nothing again
    if existing.hold_until is not None and existing.hold_until > now:
        return Status.HELD
    return None


def _count(cap_state: CapState, kind: str, cap: Cap, key: str, now: datetime) -> CapChange | bool:
    """The message ``key`` against the cap (at most ``cap.messages`` in ``cap.days``): the change that counts it,
    True if it counts already (a claim that died left it), False if the cap is reached."""
    since = (now - timedelta(days=cap.days)).isoformat()
    recent = [entry for entry in cap_state.entries if "|" in entry and entry.split("|", 1)[0] > since]
    if any(entry.split("|", 1)[1] == key for entry in recent):
        return True
    if len(recent) >= cap.messages:
        return False
    return CapChange(kind, cap_state.version, (*recent, f"{now.astimezone(UTC).isoformat()}|{key}"))


@dataclass(frozen=True)
class _Plan:
    """What one channel of a request comes to: a status, the write that stores it, and for a claim what sending
    needs (the address, the consent evidence, the message's key on the cap)."""

    channel: Channel
    status: Status
    write: RecordWrite | None = None
    address: str | None = None
    evidence: dict[str, Any] | None = None
    cap_key: str = ""


@dataclass
class OfferSender:
    ledger: Ledger
    directory: Directory
    store: OfferRecords
    email: EmailChannel
    sms: SmsChannel
    rules: OfferRules
    links: Callable[[str, str], str]  # (member id, channel) -> signed unsubscribe URL
    programme_name: str = "Loyalty Club"
    page_links: Callable[[str], str] | None = None  # member id -> signed link to their own page

    def handle(self, request: OfferRequest) -> dict[str, str]:
        """Decide and send ``request`` on each channel; returns channel -> status."""
        asked = dict.fromkeys(request.channels or CHANNELS)  # each once, in the order asked
        channels = [channel for channel in asked if not request.released or channel == "sms"]
        reading = self.store.load(request.member_id, request.dedup_key, _cap_kind(request), channels)
        state = reading.channels
        held_out = self._held_out(request, state)  # nothing granted, nothing sent, and recorded as such
        grant = earning_grant(request.offer) if request.offer is not None and not held_out else None
        now = self.ledger.clock()
        settled = {channel: _settled(state[channel].record, request.released, now) for channel in channels}
        if grant is None and all(status is not None for status in settled.values()):  # a repeat: nothing to do
            return self._handled(request, {channel: status for channel, status in settled.items() if status})
        try:  # the CRM decided the offer; the messages only tell the member about it (granted before they go)
            summary = self.ledger.offer_summary(request.member_id, grant, reading.member)
        except UnknownMemberError:
            logger.warning("offer for an unknown member dropped", request_id=request.request_id)
            return {}
        if grant is not None:
            logger.info("offer granted", member_id=request.member_id, code=grant.code)
        return self._handled(request, self._channels(request, summary, channels, state, held_out))

    def _held_out(self, request: OfferRequest, state: Mapping[str, OfferState]) -> bool:
        """Whether the member is held out of this offer: as decided before on its channels (a request asked again in
        another period neither grants the offer of one held out nor holds out one who had it), else drawn for the
        period of the programme's day the request was made."""
        decided = {s.record.status for s in state.values() if s.record is not None}
        if decided:
            return Status.HOLDOUT in decided
        return self.rules.holdout.holds_out(request, self.ledger.rules.local_date(request.requested_at))

    def _handled(self, request: OfferRequest, statuses: dict[Channel, Status]) -> dict[str, str]:
        outcome: dict[str, str] = {}
        for channel, status in statuses.items():
            outcome[channel] = status.value
            metrics.add_metric(name=METRIC_OF[status], unit="Count", value=1)
        trigger = request.trigger.value
        logger.info("offer request handled", request_id=request.request_id, trigger=trigger, channels=outcome)
        return outcome

    # ------------------------------------------------------------ the channels of one request

    def _channels(
        self,
        request: OfferRequest,
        summary: MemberSummary,
        channels: list[Channel],
        state: Mapping[str, OfferState],
        held_out: bool,
    ) -> dict[Channel, Status]:
        """Decide every channel from what was read, then store the claims and the decisions that send nothing in
        one commit (the claims with their cap slots), then send on each claimed channel and record it. A commit
        that finds the records or caps changed (another delivery, a concurrent sender) reads and decides again."""
        consents: dict[Channel, tuple[str | None, str | None, dict[str, Any]]] = {}  # checked once per request
        for attempt in range(10):
            if attempt:
                state = self.store.load(request.member_id, request.dedup_key, _cap_kind(request), channels).channels
            now = self.ledger.clock()
            plans: list[_Plan] = []
            in_flight = None
            for channel in channels:
                plan = self._plan(request, summary, channel, state[channel], now, consents, held_out)
                if plan is None:
                    in_flight = channel
                    break
                plans.append(plan)
            writes = [plan.write for plan in plans if plan.write is not None]
            if writes and not self.store.commit(writes, request.request_id):
                continue
            break
        else:
            raise OfferInFlightError(f"{request.dedup_key}: its records kept changing under concurrent senders")
        statuses: dict[Channel, Status] = {}
        for number, plan in enumerate(plans):
            if plan.status is not Status.SENDING:
                if plan.write is not None:
                    self._log(plan.write.record)
                statuses[plan.channel] = plan.status
                continue
            try:
                statuses[plan.channel] = self._send_claimed(request, summary, plan, now)
            except BaseException:  # the claims not tried yet go back too, for the next delivery
                for later in plans[number + 1 :]:
                    if later.status is Status.SENDING:
                        self._release(request, later)
                raise
        if in_flight is not None:
            raise OfferInFlightError(f"{request.dedup_key} on {in_flight} is being decided by another delivery")
        return statuses

    def _plan(
        self, request: OfferRequest, summary: MemberSummary, channel: Channel, state: OfferState, now: datetime,
        consents: dict[Channel, tuple[str | None, str | None, dict[str, Any]]], held_out: bool,
    ) -> _Plan | None:  # fmt: skip
        """What to do on ``channel``: nothing (decided before), a decision to store, or a claim to send; None if
        another delivery is deciding it now."""
        existing = state.record
        if existing is not None and existing.status is Status.SENDING and existing.decided_at >= now - STALE_CLAIM:
            return None
        status = _settled(existing, request.released, now)
        if status is not None:
            return _Plan(channel, status)  # decided before: a repeated request sends nothing again
        record = SendRecord(
            member_id=request.member_id,
            dedup=request.dedup_key,
            channel=channel,
            status=Status.SENDING,
            request=request.model_dump_json(),
            decided_at=now,
            trigger=request.trigger.value,
            template_key=request.template_key,
            offer_code=request.offer.code if request.offer else None,
        )
        held, before = existing is not None, now - STALE_CLAIM

        def decided(status: Status, evidence: dict[str, Any], **changes: Any) -> _Plan:
            decision = replace(record, status=status, **changes)
            return _Plan(channel, status, RecordWrite(decision, evidence, held, before))

        if held_out:
            holdout = self.rules.holdout
            share = f"{holdout.share * 100:g} %"
            return decided(
                Status.HOLDOUT, {}, reason=f"in the holdout ({share} of members, drawn each {holdout.period})"
            )
        if channel not in consents:
            consents[channel] = self._consent(request, summary, channel, now)
        address, refusal, evidence = consents[channel]
        if refusal is not None:
            return decided(Status.REFUSED, evidence, reason=refusal)
        if channel == "sms" and (until := self._quiet_until(summary, request, now)) is not None:
            return decided(Status.HELD, evidence, hold_until=until, reason=f"quiet hours until {until}")
        assert address is not None
        if not request.capped:
            return _Plan(channel, Status.SENDING, RecordWrite(record, None, held, before), address, evidence)
        kind = _cap_kind(request)
        cap = self.rules.caps.service if request.service else self.rules.caps.marketing
        key = f"{record.dedup}#{channel}"
        counted = _count(state.cap, kind, cap, key, now)
        if counted is False:
            reason = f"{kind} cap: {cap.messages} {channel} messages in {cap.days} days reached"
            return decided(Status.CAPPED, evidence, reason=reason)
        change = counted if isinstance(counted, CapChange) else None  # True: counted already (a dead claim's slot)
        return _Plan(channel, Status.SENDING, RecordWrite(record, None, held, before, change), address, evidence, key)

    def _send_claimed(self, request: OfferRequest, summary: MemberSummary, plan: _Plan, now: datetime) -> Status:
        assert plan.write is not None and plan.address is not None and plan.evidence is not None
        record, channel, kind = plan.write.record, plan.channel, _cap_kind(request)
        try:
            try:
                sent = self._send(request, summary, channel, plan.address)
            except ChannelOptedOutError as error:
                opt_out(self.directory, request.member_id, channel, now, "SNS opt-out list")
                self._release_cap(request.member_id, kind, channel, plan.cap_key)
                return self._decide(replace(record, status=Status.REFUSED, reason=str(error)), request, plan.evidence)
            except (ChannelRejectedError, TemplateError):
                self._release_cap(request.member_id, kind, channel, plan.cap_key)  # nothing reached the member
                raise
            return self._decide(replace(record, status=Status.SENT, **sent), request, plan.evidence)
        except (ChannelRejectedError, TemplateError) as error:  # a bad number, a template bug: retrying won't help
            failed = replace(record, status=Status.FAILED, reason=str(error))
            return self._decide(failed, request, {"checked_at": now.isoformat()})
        except BaseException:  # worth retrying (throttling, a timeout): give the claim and the cap slot back
            self._release(request, plan)
            raise

    def _release(self, request: OfferRequest, plan: _Plan) -> None:
        assert plan.write is not None
        self.store.release(plan.write.record)
        self._release_cap(request.member_id, _cap_kind(request), plan.channel, plan.cap_key)

    def _decide(self, record: SendRecord, request: OfferRequest, evidence: dict[str, Any]) -> Status:
        self.store.decide(record, request.request_id, evidence)
        self._log(record)
        return record.status

    @staticmethod
    def _log(record: SendRecord) -> None:
        logger.info(
            "offer decided",
            member_id=record.member_id,
            channel=record.channel,
            status=record.status.value,
            reason=record.reason,
            template=record.template_key,
        )

    # ------------------------------------------------------------ the rules of each step

    def _consent(
        self, request: OfferRequest, summary: MemberSummary, channel: Channel, now: datetime
    ) -> tuple[str | None, str | None, dict[str, Any]]:
        """(address, refusal reason or None, evidence): the consent rules, then for SMS the carrier's list."""
        contact, crm = request.contact, request.crm_consent
        fallback = (contact.email if channel == "email" else contact.mobile_phone) if contact else None
        crm_flag = (crm.email if channel == "email" else crm.sms) if crm else None
        address, refusal, evidence = consent_to_send(
            channel, summary.profile, fallback, crm_flag, request.service, request.requested_at, now
        )
        if refusal is None and channel == "sms" and address is not None:
            refusal = carrier_opt_out(evidence, self.sms.is_opted_out(address), now)
            if refusal is not None:
                opt_out(self.directory, request.member_id, "sms", now, "SNS opt-out list")
        return address, refusal, evidence

    # ------------------------------------------------------------ the frequency cap

    def _release_cap(self, member_id: str, kind: str, channel: str, key: str) -> None:
        """Give back the cap slot of a message that did not reach the member (none: an uncapped message)."""
        for _ in range(10 if key else 0):
            version, entries = self.store.cap(member_id, kind, channel)
            kept = [entry for entry in entries if "|" in entry and entry.split("|", 1)[1] != key]
            if len(kept) == len(entries) or self.store.save_cap(member_id, kind, channel, version, kept):
                return

    def _quiet_until(self, summary: MemberSummary, request: OfferRequest, now: datetime) -> datetime | None:
        locale = summary.profile.locale or (request.contact.locale if request.contact else None)
        zone = ZoneInfo(self.rules.time_zones.get(language_for(locale), self.ledger.rules.timezone))
        local = now.astimezone(zone)
        quiet = self.rules.quiet_hours
        if not quiet.contains(local.time().replace(tzinfo=None)):
            return None
        end = local.replace(hour=quiet.end.hour, minute=quiet.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end

    def _send(self, request: OfferRequest, summary: MemberSummary, channel: Channel, address: str) -> dict[str, Any]:
        contact = request.contact
        rules = self.ledger.rules
        facts = MessageFacts(
            first_name=summary.profile.first_name or (contact.first_name if contact else None),
            locale=summary.profile.locale or (contact.locale if contact else None),
            points_available=summary.available,
            tier=rules.tier(summary.tier).display_name,
            next_tier=rules.tier(summary.next_tier).display_name if summary.next_tier else None,
            points_to_next=summary.points_to_next_tier,
            unsubscribe_url=self.links(request.member_id, channel),
            offer=request.offer,
            details=request.details,
            programme_name=self.programme_name,
            page_url=self.page_links(request.member_id) if self.page_links is not None else None,
        )
        tags = {"trigger": request.trigger.value, "template": request.template_key}
        if channel == "email":
            email = render_email(request.template_key, facts)
            message_id = self.email.send(address, email.subject, email.html, email.text, tags)
            logger.info("e-mail sent", to=mask_email(address), template=request.template_key, language=email.language)
            return {"message_id": message_id, "subject": email.subject, "language": email.language}
        sms = render_sms(request.template_key, facts)
        message_id = self.sms.send(address, sms.text, transactional=request.service)
        logger.info("sms sent", to=mask_phone(address), template=request.template_key, septets=sms.characters)
        return {"message_id": message_id, "subject": f"SMS of {sms.characters} characters", "language": sms.language}
