"""The offers the programme sends by itself, built from infra/offers.yaml. Each request id says how often the
member may get it (once per tier and period, per expiry date, per year, per at-risk spell, per quarter), and the
sender sends each request id once."""

from __future__ import annotations

from datetime import date, datetime

from loyalty.ledger.model import LedgerResult, MemberSummary
from loyalty.offers.requests import OfferRequest, Trigger
from loyalty.offers.rules import OfferRules
from loyalty.programme.segments import Purchase


def programme_request(
    rules: OfferRules,
    trigger: Trigger,
    member_id: str,
    once_per: str,
    day: date,
    now: datetime,
    details: dict[str, str | int] | None = None,
    occasion: date | None = None,
) -> OfferRequest:
    """A request for the programme's ``trigger`` offer, sent at most once per ``once_per``."""
    made = rules.for_trigger(trigger)
    return OfferRequest(
        request_id=f"{trigger.value}#{member_id}#{once_per}",
        member_id=member_id,
        trigger=trigger,
        template_key=trigger.value,
        requested_at=now,
        offer=made.offer.on(day) if made.offer is not None else None,
        channels=made.channels,
        details=details or {},
        occasion=occasion,
    )


def after_order(
    rules: OfferRules, result: LedgerResult, summary: MemberSummary, day: date, now: datetime
) -> list[OfferRequest]:
    """An order reached a tier (the upgrade offer), or left the member close to the next one (the nudge)."""
    entry = result.entry
    requests = []
    if entry.tier_reached and entry.tier_period_end:
        requests.append(
            programme_request(
                rules,
                Trigger.TIER_UPGRADE,
                entry.member_id,
                f"{entry.tier_reached}#{entry.tier_period_end.isoformat()}",
                day,
                now,
                {"tier": entry.tier_reached},
            )
        )
    gap = summary.points_to_next_tier
    if summary.next_tier and gap is not None and 0 < gap <= rules.tier_nudge.within_points:
        period = summary.tier_period_end.isoformat() if summary.tier_period_end else str(day.year)
        requests.append(
            programme_request(
                rules,
                Trigger.TIER_NUDGE,
                entry.member_id,
                f"{summary.next_tier}#{period}",
                day,
                now,
                {"gap": gap},
            )
        )
    return requests


def category_affinity(
    rules: OfferRules, member_id: str, purchases: list[Purchase], day: date, now: datetime
) -> OfferRequest | None:
    """A complementary category the member has not bought lately, next to one they have (once a quarter)."""
    affinity = rules.category_affinity
    recent = [p for p in purchases if (day - p.placed_on).days <= affinity.bought_within_days]
    lately = {c for p in purchases if (day - p.placed_on).days <= affinity.not_bought_for_days for c in p.categories}
    bought = {c for p in recent for c in p.categories}
    for category in sorted(bought):
        for complement in affinity.complements.get(category, []):
            if complement not in lately and complement not in bought:
                quarter = f"{day.year}-Q{(day.month - 1) // 3 + 1}"
                return programme_request(
                    rules,
                    Trigger.CATEGORY_AFFINITY,
                    member_id,
                    quarter,
                    day,
                    now,
                    {"category": complement, "because": category},
                )
    return None
