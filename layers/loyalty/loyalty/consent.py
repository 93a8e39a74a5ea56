"""Every consent rule, once: how consent changes are applied, which of them count, when a message may be sent, and
the opt-outs that come back from the channels.

- Consent is kept per channel, each flag with the time it was stated: a change applies unless that flag was
  stated later already, so an opt-out is never lost to a newer change of an unrelated field (a phone number)
  and an older consent never undoes a newer one. Other profile fields share one time.
- The CRM sends every Contact field on any change, so a CRM user editing the phone right after the member
  unsubscribed sends the old "yes". A "yes" against the member's "no" counts only once the Contact has shown
  that "no" (crm_sync pushed it): then a CRM user really changed it back.
- Sending: e-mail needs an address and SMS a mobile number. The programme's latest flag and the flag the CRM
  sent with the request both count: any "no" refuses; marketing needs at least one "yes", a service message
  (an expiry warning) only the absence of a "no". The decision keeps its evidence: each flag, its value, when
  it was stated and where it came from.
- E-mail complaints and permanent bounces, an SMS opt-out at the carrier and the unsubscribe link turn that
  channel's consent off as of when they happened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from loyalty.ledger.model import MemberProfile
from loyalty.observability import logger, mask_email, metrics
from loyalty.ports.directory import CONSENT_FIELDS, Directory

Channel = Literal["email", "sms"]
CONSENT_FIELD: dict[str, str] = {"email": "email_consent", "sms": "sms_consent"}  # channel -> profile flag


@dataclass(frozen=True)
class EmailFeedback:
    """A bounce or complaint about a message we sent, as the e-mail service reports it."""

    email: str  # the recipient, lower-cased and stripped
    kind: Literal["bounce", "complaint"]
    permanent: bool  # a hard bounce, or any complaint
    at: datetime  # in UTC: when it happened
    feedback_id: str  # distinct per recipient of one notice
    message_id: str  # the message as the service's send returned it
    tags: Mapping[str, str]  # the message's tags, where the service reports them


def apply_profile_changes(directory: Directory, member_id: str, changes: Mapping[str, Any], at: datetime) -> bool:
    """Apply profile changes made at ``at``: each consent flag on its own time, the rest together, each unless a
    newer change was applied. True if anything was applied."""
    applied = False
    for field in CONSENT_FIELDS:
        if changes.get(field) is not None:
            applied |= directory.set_consent(member_id, field, bool(changes[field]), at)
    rest = {name: value for name, value in changes.items() if name not in CONSENT_FIELDS}
    if rest and directory.update_profile(member_id, rest, at):
        applied = True
    return applied


def stale_crm_consent(
    profile: MemberProfile, changes: Mapping[str, Any], shown: Mapping[str, bool | None]
) -> list[str]:
    """The consent flags among ``changes`` (from the CRM) that give back a "yes" the member took away, while the
    Contact has not shown their "no" yet (``shown``: each flag as the Contact last showed it)."""
    stale = []
    for field in CONSENT_FIELDS:
        if changes.get(field) is True and getattr(profile, field) is False and shown.get(field) is not False:
            logger.info("consent from the CRM ignored: the Contact had not shown the opt-out", field=field)
            stale.append(field)
    return stale


def consent_to_send(
    channel: Channel,
    profile: MemberProfile,
    fallback_address: str | None,
    crm_flag: bool | None,
    service: bool,
    requested_at: datetime,
    now: datetime,
) -> tuple[str | None, str | None, dict[str, Any]]:
    """Whether a message may go on ``channel``: (the address, the refusal reason or None, the evidence).

    ``fallback_address`` is what the requester knew (used when the programme has none); ``crm_flag`` the consent
    the CRM sent with the request; ``service`` True for a service message."""
    field = CONSENT_FIELD[channel]
    if channel == "email":
        address, stated = profile.email or fallback_address, profile.email_consent_at
    else:
        address, stated = profile.phone or fallback_address, profile.sms_consent_at
    programme_flag = getattr(profile, field)
    evidence: dict[str, Any] = {
        "checked_at": now.isoformat(),
        "programme": {
            "flag": field,
            "value": programme_flag,
            "as_of": stated.isoformat() if stated else None,
            "source": "member profile",
        },
        "crm": {"flag": field, "value": crm_flag, "as_of": requested_at.isoformat(), "source": "CRM"},
    }
    if not address:
        return None, f"no {'e-mail address' if channel == 'email' else 'mobile number'}", evidence
    if programme_flag is False or crm_flag is False:
        source = "the member's latest consent" if programme_flag is False else "the CRM's consent flag"
        return address, f"no {channel} consent ({source} says no)", evidence
    if not service and programme_flag is not True and crm_flag is not True:
        return address, f"no {channel} consent given for marketing", evidence
    return address, None, evidence


def carrier_opt_out(evidence: dict[str, Any], opted_out: bool, now: datetime) -> str | None:
    """An SMS number on the carrier's opt-out list refuses the message; the evidence says so either way."""
    evidence["carrier"] = {"flag": "sns_opted_out", "value": opted_out, "as_of": now.isoformat()}
    return "the number opted out of SMS (SNS opt-out list)" if opted_out else None


def opt_out(directory: Directory, member_id: str, channel: str, at: datetime, source: str) -> bool:
    """The member opted out of ``channel`` at ``at`` (an unsubscribe link, the carrier's list, a bounce)."""
    changed = directory.set_consent(member_id, CONSENT_FIELD[channel], False, at)
    logger.info("opt-out recorded", member_id=member_id, channel=channel, source=source, changed=changed)
    return changed


def apply_email_feedback(
    member_for_email: Callable[[str], str | None], directory: Directory, feedback: Iterable[EmailFeedback]
) -> int:
    """Opt members out of e-mail for complaints and permanent bounces; returns how many changed."""
    changed = 0
    for notice in feedback:
        if not notice.permanent:
            logger.info("transient bounce ignored", email=mask_email(notice.email))
            continue
        member_id = member_for_email(notice.email)
        if member_id is None:
            logger.info("e-mail feedback for no member", email=mask_email(notice.email), kind=notice.kind)
            continue
        changed += opt_out(directory, member_id, "email", notice.at, f"e-mail {notice.kind}")
    metrics.add_metric(name="EmailOptOuts", unit="Count", value=changed)
    return changed
