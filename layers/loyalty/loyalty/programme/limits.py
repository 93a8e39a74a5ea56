"""Sane bounds on what a shop says about an order: beyond them an order is held for review, never applied.

A signed webhook is believed about what was bought, but not beyond sense: a line of 10^18 units, an order that
would earn more points than any real basket, or one placed in the future or years ago is a shop's bug, a test
gone wrong or a leaked secret. The bounds are in program.yaml (`order_limits`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from loyalty.programme.earning import earn_for_order
from loyalty.programme.orders import Order
from loyalty.programme.rules import ProgramRules

CLOCK_SKEW = timedelta(days=1)  # a shop's clock, or its time zone handling, may be ahead of ours by this much


def beyond_limits(rules: ProgramRules, order: Order, now: datetime) -> str | None:
    """Why `order` is beyond the programme's bounds (for an operator; no personal data), or None."""
    limits = rules.order_limits
    largest = max((line.quantity for line in order.lines), default=0)
    if largest > limits.max_line_quantity:
        return f"a line of {largest} units (at most {limits.max_line_quantity})"
    if order.placed_at > now + CLOCK_SKEW:
        return "placed in the future"
    if order.placed_at < now - timedelta(days=limits.max_order_age_days):
        return f"placed more than {limits.max_order_age_days} days ago"
    if order.currency in rules.currencies:  # an unknown currency is refused when the order is earned
        points = earn_for_order(rules, order, rules.tiers[0].name).points
        if points > limits.max_order_points:
            return f"it would earn {points} points at the lowest tier (at most {limits.max_order_points})"
    return None
