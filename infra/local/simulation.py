"""A year of a small shop, as a deterministic stream of things that happen, day by day.

The stream says what happened (a member joins, an order is paid, a refund arrives, a member redeems or
refers a friend); a driver decides how it reaches the programme (straight into the ledger, or as signed
webhooks). Most members joined during the previous year, so their signup points expire during this one; a
tenth join during the year. Each member buys in the way of a persona (steady, bargain hunter, campaign
shopper, small frequent baskets, ambassador, occasional), so the segments have someone to recognise.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

SHOP = "shopify:demo-shop"
PRODUCTS = {  # product id -> (title, unit price in SEK, categories)
    "p-100": ("Trail running shoe", 1299, ("shoes", "outdoor")),
    "p-101": ("City sneaker", 999, ("shoes",)),
    "p-200": ("Rain jacket", 1899, ("outdoor",)),
    "p-201": ("Merino base layer", 699, ("outdoor", "new-arrivals")),
    "p-300": ("Leather belt", 449, ("accessories",)),
    "p-301": ("Wool socks, 3-pack", 199, ()),
    "p-400": ("Water bottle", 249, ("accessories", "outdoor")),
}


@dataclass(frozen=True)
class Enrol:
    at: datetime
    member_id: str
    email: str


@dataclass(frozen=True)
class OrderPaid:
    at: datetime
    member_id: str
    order_id: str
    lines: tuple[tuple[str, str, int], ...]  # (line id, product id, quantity)
    redelivered: bool = False
    discount_code: str | None = None  # the order used a discount code (15 % off every line)


@dataclass(frozen=True)
class Refund:
    at: datetime
    order_id: str
    refund_id: str
    lines: tuple[tuple[str, int], ...]  # (line id, quantity)
    before_order: bool = False


@dataclass(frozen=True)
class Redeem:
    at: datetime
    member_id: str
    redemption_id: str
    points: int


@dataclass(frozen=True)
class Refer:
    """A member's friend joins through their referral link: the referral bonus."""

    at: datetime
    member_id: str
    referral_id: str


@dataclass(frozen=True)
class Midday:
    """Daytime: the CRM's marketing automation runs (birthday Flows) and SMS held overnight go out."""

    at: datetime
    day: date


@dataclass(frozen=True)
class DayEnds:
    """The day's scheduled jobs run: release, expiry, expiry warnings, birthdays, reviews."""

    at: datetime
    day: date


Happening = Enrol | OrderPaid | Refund | Redeem | Refer | Midday | DayEnds

# How members buy. Each persona is a kind of customer the segments should recognise.
PERSONAS = (  # (name, share of members, orders per year)
    ("steady", 0.40, (2, 4, 8)),  # mostly full price, a few orders a year
    ("bargain", 0.15, (4, 8)),  # most orders with a discount code
    ("campaign", 0.10, (0,)),  # buys on campaign days only (see CAMPAIGN_DAY_RATE)
    ("small", 0.10, (16, 24)),  # frequent single small items
    ("ambassador", 0.08, (10, 14)),  # frequent, broad, refers friends
    ("occasional", 0.17, (0.5, 1)),  # rarely: at risk or lapsed
)
SMALL_ITEMS = ("p-301", "p-400")
OUTDOOR_ITEMS = ["p-100", "p-200", "p-201", "p-400"]
CAMPAIGN_DAY_RATE = 0.12  # chance a campaign shopper orders on a campaign day


@dataclass
class _Member:
    member_id: str
    email: str
    persona: str
    orders_per_year: float
    redeem_at: int = field(default=0)


def _is_campaign_day(day: date) -> bool:
    """Black Friday, and spring weekends (infra/program.yaml's campaigns)."""
    black_friday = date(day.year, 11, 27) <= day <= date(day.year, 11, 30)
    spring_weekend = 3 <= day.month <= 5 and day.weekday() >= 5
    return black_friday or spring_weekend


def simulate_year(year: int = 2026, members: int = 1000, seed: int = 7) -> Iterator[Happening]:
    """Yield the year's happenings, then one DayEnds per day (in_time_order sorts them)."""
    rng = random.Random(seed)
    names = [name for name, _, _ in PERSONAS]
    weights = [share for _, share, _ in PERSONAS]
    rates = {name: choices for name, _, choices in PERSONAS}
    people = []
    for n in range(members):
        persona = rng.choices(names, weights)[0]
        people.append(
            _Member(
                f"mem-{n:05d}",
                f"member{n:05d}@example.com",
                persona,
                rng.choice(rates[persona]),
                rng.choice([200, 500]),
            )
        )
    start = date(year, 1, 1)
    # most joined during the previous year (their signup points expire during this one); a tenth join this year
    joined: dict[str, date] = {}
    for person in people:
        offset = rng.randint(1, 365)
        joined[person.member_id] = (
            start + timedelta(days=rng.randint(0, 300)) if rng.random() < 0.1 else (start - timedelta(days=offset))
        )
        yield Enrol(datetime.combine(joined[person.member_id], time(12), UTC), person.member_id, person.email)
    order_number = 10000
    for offset in range(365):
        day = start + timedelta(days=offset)
        for person in people:
            if joined[person.member_id] >= day:
                continue
            if person.persona == "campaign":
                buys = _is_campaign_day(day) and rng.random() < CAMPAIGN_DAY_RATE
            else:
                buys = rng.random() < person.orders_per_year / 365
            if not buys:
                continue
            order_number += 1
            at = datetime.combine(day, time(rng.randint(7, 22), rng.randint(0, 59)), UTC)
            if person.persona == "small":
                chosen = [rng.choice(SMALL_ITEMS)]
            elif person.persona == "campaign":
                chosen = rng.sample(OUTDOOR_ITEMS, rng.randint(1, 2))
            elif person.persona == "ambassador":
                chosen = rng.sample(sorted(PRODUCTS), rng.randint(2, 3))
            else:
                chosen = rng.sample(sorted(PRODUCTS), rng.randint(1, 3))
            quantity_max = 1 if person.persona == "small" else 2
            lines = tuple((str(n + 1), product, rng.randint(1, quantity_max)) for n, product in enumerate(chosen))
            order_id = str(order_number)
            code = "SAVE15" if person.persona == "bargain" and rng.random() < 0.8 else None
            roll = rng.random()
            if roll < 0.02:  # the refund webhook overtakes the order's
                line_id, _, quantity = lines[0]
                yield Refund(at, order_id, f"{order_id}-r1", ((line_id, quantity),), before_order=True)
            yield OrderPaid(at, person.member_id, order_id, lines, discount_code=code)
            if roll > 0.95:  # the shop delivers the same webhook again
                yield OrderPaid(at + timedelta(minutes=5), person.member_id, order_id, lines, True, code)
            elif 0.02 <= roll < 0.12:  # a partial refund within the return window
                line_id, _, quantity = lines[-1]
                refund_at = at + timedelta(days=rng.randint(2, 20))
                yield Refund(refund_at, order_id, f"{order_id}-r1", ((line_id, rng.randint(1, quantity)),))
            if rng.random() < 0.3:
                yield Redeem(at + timedelta(hours=1), person.member_id, f"red-{order_id}", person.redeem_at)
            if person.persona == "ambassador" and rng.random() < 0.25:
                yield Refer(at + timedelta(hours=2), person.member_id, f"ref-{order_id}")
        yield Midday(datetime.combine(day, time(11, 0), UTC), day)
        yield DayEnds(datetime.combine(day, time(23, 59), UTC), day)


def in_time_order(happenings: Iterator[Happening]) -> list[Happening]:
    """Happenings sorted by time; a day's jobs run after everything else that day."""
    return sorted(happenings, key=lambda h: (h.at, isinstance(h, DayEnds)))
