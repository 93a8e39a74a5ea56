"""A year of a small shop, as a deterministic stream of things that happen, day by day.

The stream says what happened (a member joins, an order is paid, a refund arrives, a member redeems);
a driver decides how it reaches the programme (straight into the ledger, or later as signed webhooks).
Members joined during the previous year, so their signup points expire during this one.
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
class DayEnds:
    """The daily scheduled jobs run: release orders past their return window, expire due lots."""

    at: datetime
    day: date


Happening = Enrol | OrderPaid | Refund | Redeem | DayEnds


@dataclass
class _Member:
    member_id: str
    email: str
    orders_per_year: float
    redeem_at: int = field(default=0)


def simulate_year(year: int = 2026, members: int = 1000, seed: int = 7) -> Iterator[Happening]:
    """Yield the year's happenings in time order, then one DayEnds per day."""
    rng = random.Random(seed)
    people = [
        _Member(f"mem-{n:05d}", f"member{n:05d}@example.com", rng.choice([0.5, 2, 4, 8, 16]), rng.choice([200, 500]))
        for n in range(members)
    ]
    start = date(year, 1, 1)
    # enrolments spread over the previous year
    joined = sorted(
        ((datetime.combine(start - timedelta(days=rng.randint(1, 365)), time(12), UTC), person) for person in people),
        key=lambda pair: (pair[0], pair[1].member_id),
    )
    for at, person in joined:
        yield Enrol(at, person.member_id, person.email)
    order_number = 10000
    for offset in range(365):
        day = start + timedelta(days=offset)
        for person in people:
            if rng.random() >= person.orders_per_year / 365:
                continue
            order_number += 1
            at = datetime.combine(day, time(rng.randint(7, 22), rng.randint(0, 59)), UTC)
            chosen = rng.sample(sorted(PRODUCTS), rng.randint(1, 3))
            lines = tuple((str(n + 1), product, rng.randint(1, 2)) for n, product in enumerate(chosen))
            order_id = str(order_number)
            roll = rng.random()
            if roll < 0.02:  # the refund webhook overtakes the order's
                line_id, _, quantity = lines[0]
                yield Refund(at, order_id, f"{order_id}-r1", ((line_id, quantity),), before_order=True)
            yield OrderPaid(at, person.member_id, order_id, lines)
            if roll > 0.95:  # the shop delivers the same webhook again
                yield OrderPaid(at + timedelta(minutes=5), person.member_id, order_id, lines, redelivered=True)
            elif 0.02 <= roll < 0.12:  # a partial refund within the return window
                line_id, _, quantity = lines[-1]
                refund_at = at + timedelta(days=rng.randint(2, 20))
                yield Refund(refund_at, order_id, f"{order_id}-r1", ((line_id, rng.randint(1, quantity)),))
            if rng.random() < 0.3:
                yield Redeem(at + timedelta(hours=1), person.member_id, f"red-{order_id}", person.redeem_at)
        yield DayEnds(datetime.combine(day, time(23, 59), UTC), day)


def in_time_order(happenings: Iterator[Happening]) -> list[Happening]:
    """Happenings sorted by time; a day's jobs run after everything else that day."""
    return sorted(happenings, key=lambda h: (h.at, isinstance(h, DayEnds)))
