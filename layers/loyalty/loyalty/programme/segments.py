"""Segments: how a member buys, in words a CRM user understands, with RFM scores.

A pure function of the member's purchases (facts the ledger stored on each accrual entry, less orders
refunded in full), their referrals, their enrolment date, the rules (`segments` in infra/program.yaml) and
a date, so a segment can always be recomputed from the ledger. The first class that fits is the segment:

1. new: enrolled less than `new_member_days` ago with fewer than two orders;
2. lapsed: no order for `lapsed_days` (or never one);
3. at_risk: no order for `at_risk_days`;
4. loyal_ambassador: at least `min_orders` orders over at least `min_categories` categories, and referrals;
5. price_driven: at least `min_orders` orders, a share of at least `min_discount_share` with a discount code;
6. opportunistic: at least `min_orders` orders, a share of at least `min_campaign_share` in a campaign or
   with a bonus offer;
7. convenience_driven: at least `min_orders` orders averaging at most `max_average_basket_points` base
   points, in at most `max_categories` categories;
8. satisfaction_driven: everyone else who buys (steady, mostly at full price).

RFM: recency (days since the last order), frequency (orders in the window) and monetary (base points spent
in the window), each 1 to 5 against the four boundaries in `segments.rfm`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from loyalty.programme.rules import SegmentRules
from loyalty.programme.tiers import add_months


@dataclass(frozen=True)
class Purchase:
    """What the segment needs to know of one order."""

    order_key: str
    placed_on: date
    base_points: int  # what the order earns at x1: the spend, in every currency alike
    discounted: bool  # a discount code was used
    in_campaign: bool  # a campaign or a bonus offer applied
    categories: tuple[str, ...]


@dataclass(frozen=True)
class Segment:
    name: str
    reason: str
    rfm: str  # "R4 F3 M2"
    next_review: date  # the first day the segment could change with time alone


def _score_up(value: int, boundaries: Sequence[int]) -> int:
    return 1 + sum(1 for boundary in boundaries if value >= boundary)


def rfm_scores(rules: SegmentRules, days_since_last: int | None, orders: int, spent: int) -> str:
    recency = 1 if days_since_last is None else 5 - sum(1 for days in rules.rfm.recency_days if days_since_last > days)
    frequency = _score_up(orders, rules.rfm.frequency_orders)
    monetary = _score_up(spent, rules.rfm.monetary_points)
    return f"R{max(1, recency)} F{frequency} M{monetary}"


def _orders(count: int) -> str:
    return f"{count} order{'s' if count != 1 else ''}"


def _days(count: int) -> str:
    return f"{count} day{'s' if count != 1 else ''}"


def _share(part: int, whole: int, at_least: Decimal) -> bool:
    return whole > 0 and Decimal(part) >= at_least * whole


def assign_segment(
    rules: SegmentRules,
    purchases: Iterable[Purchase],
    referrals: int,
    enrolled_on: date,
    today: date,
) -> Segment:
    window_start = add_months(today, -rules.window_months)
    recent = sorted((p for p in purchases if window_start < p.placed_on <= today), key=lambda p: p.placed_on)
    last = recent[-1].placed_on if recent else None
    orders = len(recent)
    spent = sum(p.base_points for p in recent)
    days_since = (today - last).days if last else None
    rfm = rfm_scores(rules, days_since, orders, spent)
    categories = {c for p in recent for c in p.categories}
    discounted = sum(1 for p in recent if p.discounted)
    in_campaign = sum(1 for p in recent if p.in_campaign)
    months = f"in {rules.window_months} months"
    member_days = (today - enrolled_on).days

    reviews = [today + timedelta(days=rules.review_days)]
    if member_days < rules.new_member_days:
        reviews.append(enrolled_on + timedelta(days=rules.new_member_days))
    if last is not None:
        reviews += [
            last + timedelta(days=rules.at_risk_days + 1),
            last + timedelta(days=rules.lapsed_days + 1),
        ]
    if recent:  # the oldest order leaving the window changes the counts
        reviews.append(add_months(recent[0].placed_on, rules.window_months) + timedelta(days=1))
    next_review = min(day for day in reviews if day > today)

    def segment(name: str, reason: str) -> Segment:
        return Segment(name, reason[:255], rfm, next_review)

    if member_days < rules.new_member_days and orders < 2:
        return segment("new", f"Joined {_days(member_days)} ago, {_orders(orders)} so far")
    if days_since is None or days_since > rules.lapsed_days:
        if days_since is None:
            return segment("lapsed", f"No order {months} (member for {_days(member_days)})")
        return segment("lapsed", f"No order for {_days(days_since)}")
    if days_since > rules.at_risk_days:
        return segment("at_risk", f"No order for {_days(days_since)}; {_orders(orders)} {months} before that")
    ambassador = rules.loyal_ambassador
    if (
        orders >= ambassador.min_orders
        and len(categories) >= ambassador.min_categories
        and referrals >= ambassador.min_referrals
    ):
        return segment(
            "loyal_ambassador",
            f"{_orders(orders)} {months} across {len(categories)} categories, "
            f"{referrals} referral{'s' if referrals != 1 else ''}",
        )
    price = rules.price_driven
    if orders >= price.min_orders and _share(discounted, orders, price.min_discount_share):
        return segment("price_driven", f"{_orders(orders)} {months}, {discounted} with a discount code")
    opportunist = rules.opportunistic
    if orders >= opportunist.min_orders and _share(in_campaign, orders, opportunist.min_campaign_share):
        return segment("opportunistic", f"{_orders(orders)} {months}, {in_campaign} in campaigns or bonus offers")
    convenience = rules.convenience_driven
    average = spent // orders if orders else 0
    if (
        orders >= convenience.min_orders
        and average <= convenience.max_average_basket_points
        and len(categories) <= convenience.max_categories
    ):
        return segment(
            "convenience_driven",
            f"{_orders(orders)} {months}, small baskets (average {average} base points) "
            f"in {len(categories)} categor{'ies' if len(categories) != 1 else 'y'}",
        )
    full_price = orders - discounted
    return segment("satisfaction_driven", f"{_orders(orders)} {months}, {full_price} at full price")


def segment_window_start(rules: SegmentRules, today: date) -> datetime:
    """Entries written from this moment on are what the segment of ``today`` is judged on."""
    return datetime.combine(add_months(today, -rules.window_months), time(), UTC)
