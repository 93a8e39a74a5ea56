"""Points an order earns: a pure calculation from the programme rules, the order and the member's tier.

Earning base of a line: merchandise after discounts, `quantity x unit_price - discount`, then with or
without VAT as `rules.earning_base.include_vat` says. The order says whether its prices include tax
(`prices_include_tax`) and each line says its tax after discount, so:
- prices include tax: with VAT = quantity x unit_price - discount; net = that - tax.
- prices exclude tax: net = quantity x unit_price - discount; with VAT = that + tax.
Shipping never earns. Gift-card lines never earn and are left out of `Earning.lines`; every other line
is in `Earning.lines`, possibly with 0 points. A line id missing from `Earning.lines` earned nothing.

Multiplier of a line (precedence, documented in full in `loyalty.programme.rules`): the highest matching category
multiplier (never stacked), times every matching active campaign multiplier, times the tier multiplier,
capped at `max_total_multiplier`. Campaigns are active on the order's date in the programme's time zone.

Rounding:
1. Each line's exact points = base x points_per_unit x combined multiplier (Decimal, no rounding).
2. The order's purchase points = the exact sum rounded DOWN (a fraction of a point is never awarded).
3. That integer is shared over the lines by largest remainder: each line gets the integer part of its
   exact points, the points left over go one each to the lines with the largest fractional parts, ties
   to the earlier line. So line points sum exactly to the total and each line gets its exact points
   rounded down or up. Example: three lines worth 3.4 each -> floor(10.2) = 10 -> 4, 3, 3.
4. A campaign's fixed `bonus_points` are shared over its qualifying lines (active, category matches,
   base > 0) in proportion to their base, by largest remainder, and added to those lines' points, so a
   refund can reverse the bonus line by line. No qualifying line: no bonus.

Offers granted to the member (a points multiplier or bonus points sent by the CRM or the programme) work
like campaigns for orders placed within their validity: a multiplier offer multiplies every line on top of
the category and campaign multipliers (subject to the same cap), a bonus-points offer is shared over the
lines like a campaign bonus. `Earning.offers` names the offers that applied.

`Earning.qualifying_points` (toward the tier) are all the points the order earned: purchase points with
every multiplier, plus campaign bonuses. Today that equals `Earning.points`; it is its own field so the
rule can change without changing callers.
"""

from decimal import Decimal
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loyalty.errors import UnknownCurrencyError
from loyalty.programme.money import ExactDecimal, floor_points, largest_remainder, split_proportionally
from loyalty.programme.orders import Order, OrderLine
from loyalty.programme.rules import Campaign, ProgramRules, Tier


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LinePoints(_Frozen):
    line_id: str
    quantity: int
    base: ExactDecimal  # earning base of the line in the order currency
    multiplier: ExactDecimal  # combined multiplier applied (after the cap)
    points: Annotated[int, Field(ge=0)]
    rule: str  # why, e.g. "category shoes x2, campaign black-friday x2, tier gold x1.25 (capped 3)"


class GrantedOffer(_Frozen):
    """An offer that changes what an order earns: a multiplier or a fixed bonus (exactly one)."""

    code: str
    multiplier: ExactDecimal | None = None
    bonus_points: Annotated[int, Field(gt=0)] | None = None


class Earning(_Frozen):
    lines: tuple[LinePoints, ...]  # one per line that is not a gift card
    points: Annotated[int, Field(ge=0)]
    campaigns: tuple[str, ...]  # ids of the campaigns that applied, in file order
    qualifying_points: Annotated[int, Field(ge=0)]
    offers: tuple[str, ...] = ()  # codes of the member's offers that applied

    @model_validator(mode="after")
    def _points_add_up(self) -> Self:
        if self.points != sum(line.points for line in self.lines):
            raise ValueError(f"points {self.points} != the sum of the line points")
        return self


def earning_base(line: OrderLine, prices_include_tax: bool, include_vat: bool) -> Decimal:
    """What `line` earns on in the order currency: 0 for a gift card, else merchandise after discount."""
    if line.is_gift_card:
        return Decimal(0)
    if prices_include_tax == include_vat:
        return line.amount
    return line.amount - line.tax if prices_include_tax else line.amount + line.tax


def earn_for_order(rules: ProgramRules, order: Order, tier: str, offers: tuple[GrantedOffer, ...] = ()) -> Earning:
    """The points `order` earns for a member in `tier` (see the module docstring for every rule).

    Raises UnknownTierError (a ValueError) for an unknown tier and UnknownCurrencyError for a currency
    the programme has no rate for.
    """
    member_tier = rules.tier(tier)
    currency = rules.currencies.get(order.currency)
    if currency is None:
        raise UnknownCurrencyError(
            f"order {order.order_id!r}: no earning rate for currency {order.currency!r}; "
            f"the programme has {sorted(rules.currencies)}"
        )
    campaigns = [c for c in rules.campaigns if c.is_active_on(rules.local_date(order.placed_at))]
    lines = [line for line in order.lines if not line.is_gift_card]
    bases = [earning_base(line, order.prices_include_tax, rules.earning_base.include_vat) for line in lines]
    multiplier_offers = [offer for offer in offers if offer.multiplier is not None]
    multipliers = [
        _line_multiplier(rules, line.categories, campaigns, member_tier, multiplier_offers) for line in lines
    ]

    exact = [base * currency.points_per_unit * m for base, (m, _) in zip(bases, multipliers, strict=True)]
    points = largest_remainder(floor_points(sum(exact, Decimal(0))), exact)
    reasons = [reason for _, reason in multipliers]

    applied: list[str] = []
    for campaign in campaigns:
        qualifying = [
            base if base > 0 and campaign.covers(line.categories) else Decimal(0)
            for line, base in zip(lines, bases, strict=True)
        ]
        if not any(qualifying):
            continue
        applied.append(campaign.id)
        if campaign.bonus_points is not None:
            for i, share in enumerate(split_proportionally(campaign.bonus_points, qualifying)):
                if share:
                    points[i] += share
                    reasons[i] += f", campaign {campaign.id} +{share}"

    for offer in offers:
        if offer.bonus_points is None or not any(base > 0 for base in bases):
            continue
        for i, share in enumerate(split_proportionally(offer.bonus_points, bases)):
            if share:
                points[i] += share
                reasons[i] += f", offer {offer.code} +{share}"
    applied_offers = [o.code for o in multiplier_offers if any(b > 0 for b in bases)]
    applied_offers += [o.code for o in offers if o.bonus_points is not None and any(b > 0 for b in bases)]

    line_points = tuple(
        LinePoints(line_id=ln.line_id, quantity=ln.quantity, base=b, multiplier=m, points=p, rule=why)
        for ln, b, (m, _), p, why in zip(lines, bases, multipliers, points, reasons, strict=True)
    )
    total = sum(points)
    return Earning(
        lines=line_points,
        points=total,
        campaigns=tuple(applied),
        qualifying_points=total,
        offers=tuple(applied_offers),
    )


def _line_multiplier(
    rules: ProgramRules,
    categories: tuple[str, ...],
    campaigns: list[Campaign],
    tier: Tier,
    offers: list[GrantedOffer],
) -> tuple[Decimal, str]:
    """The combined, capped multiplier of a line and a human-readable account of it."""
    multiplier = Decimal(1)
    parts: list[str] = []
    matching = [rule for rule in rules.categories if rule.category in categories]
    if matching:
        best = max(matching, key=lambda rule: rule.multiplier)  # max keeps the first of equals: file order
        multiplier *= best.multiplier
        parts.append(f"category {best.category} x{_show(best.multiplier)}")
    for campaign in campaigns:
        if campaign.multiplier is not None and campaign.covers(categories):
            multiplier *= campaign.multiplier
            parts.append(f"campaign {campaign.id} x{_show(campaign.multiplier)}")
    for offer in offers:
        assert offer.multiplier is not None
        multiplier *= offer.multiplier
        parts.append(f"offer {offer.code} x{_show(offer.multiplier)}")
    multiplier *= tier.multiplier
    parts.append(f"tier {tier.name} x{_show(tier.multiplier)}")
    if multiplier > rules.max_total_multiplier:
        multiplier = rules.max_total_multiplier
        parts[-1] += f" (capped {_show(multiplier)})"
    return multiplier, ", ".join(parts)


def _show(value: Decimal) -> str:
    return f"{value.normalize():f}"
