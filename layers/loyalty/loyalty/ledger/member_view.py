"""What the member API answers: a member's points, tier, next expiry, profile and latest entries."""

from __future__ import annotations

from datetime import date
from typing import Any

from loyalty.errors import InvalidAmountError, UnknownMemberError
from loyalty.ledger.service import Ledger
from loyalty.observability import metrics

RECENT_ENTRIES = 20


def _date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def member_by_email(ledger: Ledger, email: str | None) -> dict[str, Any]:
    """The member enrolled with ``email`` (``GET /members?email=``)."""
    if not email:
        metrics.add_metric(name="MemberRead", unit="Count", value=1)
        raise InvalidAmountError("give ?email=<address> or use /members/{member_id}")
    member_id = ledger.member_for_email(email)
    if member_id is None:
        raise UnknownMemberError("no member with that e-mail address")
    return member_view(ledger, member_id)


def member_view(ledger: Ledger, member_id: str) -> dict[str, Any]:
    """What the member API answers for a member."""
    metrics.add_metric(name="MemberRead", unit="Count", value=1)
    summary = ledger.summary(member_id)
    history = ledger.history(member_id, limit=RECENT_ENTRIES)
    return {
        "memberId": summary.member_id,
        "points": {
            "available": summary.available,
            "pending": summary.pending,
            "lifetime": summary.lifetime,
            "qualifying": summary.qualifying,
        },
        "tier": {
            "name": summary.tier,
            "earned": summary.earned_tier,
            "next": summary.next_tier,
            "pointsToNext": summary.points_to_next_tier,
            "pointsToKeep": summary.points_to_keep_tier,
            "expiresOn": _date(summary.tier_expires_on),
            "periodEnd": _date(summary.tier_period_end),
            "override": (
                {"until": _date(summary.tier_override_until), "reason": summary.tier_override_reason}
                if summary.tier_override_until
                else None
            ),
        },
        "segment": (
            {"name": summary.segment, "reason": summary.segment_reason, "rfm": summary.segment_rfm}
            if summary.segment
            else None
        ),
        "nextExpiry": (
            {"date": summary.next_expiry_on.isoformat(), "points": summary.next_expiry_points}
            if summary.next_expiry_on
            else None
        ),
        "profile": {
            "email": summary.profile.email,
            "firstName": summary.profile.first_name,
            "birthdate": summary.profile.birthdate.isoformat() if summary.profile.birthdate else None,
            "locale": summary.profile.locale,
            "consent": {"email": summary.profile.email_consent, "sms": summary.profile.sms_consent},
            "crmContactId": summary.profile.crm_contact_id,
            "emailParked": (
                {"email": summary.profile.email_parked, "reason": summary.profile.email_parked_reason}
                if summary.profile.email_parked
                else None
            ),
        },
        "blocked": (
            {"reason": summary.profile.blocked_reason, "since": summary.profile.blocked_at.isoformat()}
            if summary.profile.blocked_reason and summary.profile.blocked_at
            else None
        ),
        "enrolledAt": summary.enrolled_at.isoformat(),
        "joinedVia": summary.profile.joined_via,
        "leavingOn": summary.profile.leaving_on.isoformat() if summary.profile.leaving_on else None,
        "termsVersion": summary.profile.terms_version,
        "entries": [
            {
                "at": entry.created_at.isoformat(),
                "kind": entry.kind.value,
                "points": entry.points,
                "pending": entry.pending,
                "reason": entry.reason,
            }
            for entry in history.entries
        ],
    }
