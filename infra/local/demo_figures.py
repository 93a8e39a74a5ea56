"""The demo's 12-month table worked out again from what the demo sent, not from the programme's table: the orders
as their webhooks carried them, the refunds, the redemptions the member API granted and the members who joined.
The programme's figures (GET /kpis) must equal it.

Only the rules the report states are used: a month is the programme's local month of when the event was applied;
order value is ex-VAT after discounts, net of refunds (a refund applied in its month, or in its order's month if it
came first; a partial refund takes its share of a line to the hundredth, the last unit what is left); active is an
order or a redemption in the last 12 months, over the members at the month's end.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")


def _month_index(month: str) -> int:
    return int(month[:4]) * 12 + int(month[5:7])


@dataclass(frozen=True)
class _Line:
    quantity: int
    value: Decimal  # ex-VAT, after its discount


@dataclass
class SentEvents:
    """What the demo sent and what the programme granted, each with the local month it was applied in."""

    joined: dict[str, str] = field(default_factory=dict)  # member -> month
    orders: dict[str, tuple[str, str, dict[str, _Line]]] = field(default_factory=dict)  # id -> (member, month, lines)
    refunds: list[tuple[str, str, tuple[tuple[str, int], ...]]] = field(default_factory=list)  # (order, month, lines)
    redeemed: list[tuple[str, str]] = field(default_factory=list)  # (member, month)

    def joined_in(self, member: str, month: str) -> None:
        self.joined.setdefault(member, month)

    def order(self, member: str, month: str, line_ids: Sequence[str], payload: Mapping[str, Any]) -> None:
        """An order webhook's lines (``line_ids``: the simulation's, in the webhook's order): each line's value
        ex-VAT after its discount (the prices include VAT)."""
        lines = {}
        for line_id, line in zip(line_ids, payload["line_items"], strict=True):
            value = Decimal(line["price"]) * line["quantity"] - Decimal(line["total_discount"])
            value -= sum((Decimal(tax["price"]) for tax in line["tax_lines"]), Decimal(0))
            lines[line_id] = _Line(line["quantity"], value)
        self.orders.setdefault(str(payload["id"]), (member, month, lines))

    def refund(self, order_id: str, month: str, lines: tuple[tuple[str, int], ...]) -> None:
        self.refunds.append((order_id, month, lines))

    def redemption(self, member: str, month: str) -> None:
        self.redeemed.append((member, month))


def twelve_months(events: SentEvents, months: list[str]) -> dict[str, dict[str, Any]]:
    """Month -> returning share, average order value (SEK) and active share, as GET /kpis states them."""
    orders: dict[str, int] = {}
    buyers: dict[str, set[str]] = {}
    activity: dict[str, set[str]] = {}
    for member, month, _ in events.orders.values():
        orders[month] = orders.get(month, 0) + 1
        buyers.setdefault(month, set()).add(member)
        activity.setdefault(member, set()).add(month)
    for member, month in events.redeemed:
        activity.setdefault(member, set()).add(month)
    first_bought = {}
    for month in sorted(buyers):
        for member in buyers[month]:
            first_bought.setdefault(member, month)
    table = {}
    for month in months:
        bought = buyers.get(month, set())
        returning = sum(1 for member in bought if first_bought[member] < month)
        members = sum(1 for joined in events.joined.values() if joined <= month)
        index = _month_index(month)
        active = sum(
            1
            for months_active in activity.values()
            if any(0 <= index - _month_index(active_in) < 12 for active_in in months_active)
        )
        value = sum(order_values(events, month).values(), Decimal(0))
        table[month] = {
            "returningShare": round(returning / len(bought), 4) if bought else None,
            "averageOrderValue": {"SEK": str((value / orders[month]).quantize(CENT, rounding=ROUND_HALF_UP))}
            if orders.get(month)
            else {},
            "activeShare": round(active / members, 4) if members else None,
        }
    return table


def order_values(events: SentEvents, month: str) -> dict[str, Decimal]:
    """Each order's value the month holds by the events sent: its value if bought then, less what refunds applied
    then took off it (a refund applies in its month, or its order's if it came first)."""
    values: dict[str, Decimal] = {}
    for order_id, (_, bought_in, lines) in events.orders.items():
        if bought_in == month:
            values[order_id] = sum((line.value for line in lines.values()), Decimal(0))
    units_left: dict[tuple[str, str], int] = {}
    for order_id, refund_month, refunded in events.refunds:
        if order_id not in events.orders:
            continue  # never applied: its order never came
        _, bought_in, lines = events.orders[order_id]
        for line_id, quantity in refunded:
            line = lines[line_id]
            before = units_left.get((order_id, line_id), line.quantity)
            units_left[order_id, line_id] = after = before - quantity
            taken = _kept(line, before) - _kept(line, after)
            if max(refund_month, bought_in) == month:
                values[order_id] = values.get(order_id, Decimal(0)) - taken
    return values


def _kept(line: _Line, units: int) -> Decimal:
    """What a line is worth with ``units`` of its units left: its share to the hundredth, half up."""
    return (line.value * units / line.quantity).quantize(CENT, rounding=ROUND_HALF_UP) if units else Decimal(0)
