"""Exact decimals for money and rates, and the rounding rules that turn them into whole points.

Money and rates are `Decimal`, never `float`: a float such as 0.1 is not 0.1, so `to_decimal` accepts
only `str`, `int` or `Decimal` and refuses floats and bools with a ValueError (which pydantic reports as
a validation error). Points are `int`.

Rounding rules:
- `floor_points`: a fraction of a point is never awarded, so exact points round DOWN.
- `largest_remainder`: share an integer total out over items whose exact quotas sum to about that
  total. Each item gets the integer part of its quota; the units left over go one each to the items
  with the largest fractional parts, ties going to the earlier item. Shares sum exactly to the total.
- `split_proportionally`: share an integer total in proportion to weights, by largest remainder,
  computed exactly with fractions.
"""

import math
import re
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Annotated

from pydantic import BeforeValidator, Field

_PLAIN_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)")


def to_decimal(value: object) -> Decimal:
    """Return `value` as a finite Decimal; accepts str, int or Decimal and refuses float and bool."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError(f"expected a decimal string, int or Decimal, not {type(value).__name__} ({value!r})")
    if isinstance(value, str) and not _PLAIN_NUMBER.fullmatch(value.strip()):
        raise ValueError(f"not a plain decimal number: {value!r}")  # "1_000", "1e3", "0x10": never a price
    try:
        result = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not a decimal number: {value!r}") from None
    if not result.is_finite():
        raise ValueError(f"not a finite number: {value!r}")
    return result


# Pydantic field types: an exact decimal (rates, multipliers) and a non-negative amount of money.
ExactDecimal = Annotated[Decimal, BeforeValidator(to_decimal)]
Money = Annotated[Decimal, BeforeValidator(to_decimal), Field(ge=0)]


def floor_points(exact: Decimal | Fraction) -> int:
    """Round exact points down to whole points (never award a fraction)."""
    return math.floor(exact)


def largest_remainder(total: int, quotas: Sequence[Decimal | Fraction]) -> list[int]:
    """Integer shares of `total`, one per quota, each the floor or ceiling of its quota.

    `total` must lie between the sum of the floors of the quotas and that sum plus the number of quotas.
    """
    floors = [math.floor(q) for q in quotas]
    left_over = total - sum(floors)
    if not 0 <= left_over <= len(quotas):
        raise ValueError(f"cannot share {total} over quotas {list(quotas)}")
    by_remainder = sorted(range(len(quotas)), key=lambda i: (-(quotas[i] - floors[i]), i))
    for i in by_remainder[:left_over]:
        floors[i] += 1
    return floors


def split_proportionally(total: int, weights: Sequence[Decimal]) -> list[int]:
    """Share `total` over `weights` (>= 0) in proportion, by largest remainder; all zero if the weights are."""
    weight_sum = sum(weights, Decimal(0))
    if weight_sum <= 0:
        return [0] * len(weights)
    return largest_remainder(total, [Fraction(total) * Fraction(w) / Fraction(weight_sum) for w in weights])
