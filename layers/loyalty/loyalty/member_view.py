"""What the member API answers: a member's points, tier, next expiry, profile and latest entries."""

from __future__ import annotations

from typing import Any

from loyalty.adapters.dynamodb_ledger import Ledger

RECENT_ENTRIES = 20


def member_view(ledger: Ledger, member_id: str) -> dict[str, Any]:
    summary = ledger.summary(member_id)
    history = ledger.history(member_id, limit=RECENT_ENTRIES)
    next_tier = ledger.rules.next_tier(summary.tier)
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
            "next": next_tier.name if next_tier else None,
            "pointsToNext": max(0, next_tier.threshold - summary.qualifying) if next_tier else None,
        },
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
        },
        "enrolledAt": summary.enrolled_at.isoformat(),
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
