"""Earning: the points an order earns, by hand-computed examples and one property."""

import math
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_DOWN, Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from loyalty.errors import UnknownCurrencyError, UnknownTierError
from loyalty.programme.earning import Earning, LinePoints, earn_for_order
from loyalty.programme.money import largest_remainder, split_proportionally, to_decimal
from loyalty.programme.orders import Order, OrderLine
from loyalty.programme.rules import ProgramRules

STOCKHOLM_WINTER = timezone(timedelta(hours=1))
STOCKHOLM_SUMMER = timezone(timedelta(hours=2))

RULES: dict[str, Any] = {
    "timezone": "Europe/Stockholm",
    "currencies": {
        "SEK": {"points_per_unit": "0.1"},
        "DKK": {"points_per_unit": "0.15"},
        "EUR": {"points_per_unit": "1"},
    },
    "earning_base": {"include_vat": False},
    # shoes first; outdoor and new tie at 1.5 and outdoor is listed first
    "categories": [
        {"category": "shoes", "multiplier": "2"},
        {"category": "outdoor", "multiplier": "1.5"},
        {"category": "new", "multiplier": "1.5"},
    ],
    "max_total_multiplier": "3",
    "campaigns": [],
    "tiers": [
        {"name": "bronze", "threshold": 0, "multiplier": "1"},
        {"name": "silver", "threshold": 1000, "multiplier": "1.1"},
        {"name": "gold", "threshold": 3000, "multiplier": "1.25"},
        {"name": "platinum", "threshold": 6000, "multiplier": "1.5"},
    ],
    "pending_days": 30,
    "expiry": {"months": 12},
}
CATEGORY_MULTIPLIERS = {"shoes": Decimal(2), "outdoor": Decimal("1.5"), "new": Decimal("1.5")}
TIER_MULTIPLIERS = {"bronze": Decimal(1), "silver": Decimal("1.1"), "gold": Decimal("1.25"), "platinum": Decimal("1.5")}
RATES = {"SEK": Decimal("0.1"), "DKK": Decimal("0.15"), "EUR": Decimal(1)}


def rules_with(**changes: Any) -> ProgramRules:
    return ProgramRules.model_validate({**RULES, **changes})


def line(line_id: str = "1", unit_price: str = "100", quantity: int = 1, **fields: Any) -> OrderLine:
    return OrderLine(line_id=line_id, unit_price=Decimal(unit_price), quantity=quantity, **fields)


def order(
    *lines: OrderLine,
    currency: str = "SEK",
    prices_include_tax: bool = False,
    placed_at: datetime = datetime(2026, 6, 10, 12, 0, tzinfo=STOCKHOLM_SUMMER),  # a Wednesday
    shipping: str = "0",
) -> Order:
    return Order(
        shop="shopify:test",
        order_id="1001",
        currency=currency,
        placed_at=placed_at,
        prices_include_tax=prices_include_tax,
        lines=lines,
        shipping=Decimal(shipping),
    )


def campaign(**fields: Any) -> dict[str, Any]:
    return {"id": "black-friday", "name": "Black Friday", "starts_on": "2026-11-27", "ends_on": "2026-11-30", **fields}


# --- earning base: VAT, discount, gift cards, shipping ---------------------------------------------------------


@pytest.mark.parametrize(
    ("prices_include_tax", "unit_price", "include_vat", "base", "points"),
    [
        (True, "125.00", False, Decimal("200.00"), 20),  # 2 x 125 incl. = 250, minus tax 50 = 200 net -> 20
        (True, "125.00", True, Decimal("250.00"), 25),  # 250 incl. -> 25
        (False, "100.00", False, Decimal("200.00"), 20),  # 2 x 100 net = 200 -> 20
        (False, "100.00", True, Decimal("250.00"), 25),  # 200 net + tax 50 = 250 -> 25
    ],
)
def test_vat_in_or_out_of_the_earning_base(
    prices_include_tax: bool, unit_price: str, include_vat: bool, base: Decimal, points: int
) -> None:
    # Given a line of 2 units with 50.00 tax, prices with or without tax, earning with or without VAT
    rules = rules_with(earning_base={"include_vat": include_vat})
    the_order = order(line(unit_price=unit_price, quantity=2, tax=Decimal(50)), prices_include_tax=prices_include_tax)
    # When the order earns
    earning = earn_for_order(rules, the_order, "bronze")
    # Then the base follows the VAT setting, at 0.1 point per SEK
    assert earning.lines[0].base == base
    assert earning.points == points


@pytest.mark.parametrize(("include_vat", "base", "points"), [(False, Decimal("192"), 19), (True, Decimal("240"), 24)])
def test_points_are_earned_after_discount(include_vat: bool, base: Decimal, points: int) -> None:
    # Given 3 x 100 SEK incl. VAT with 60 discount and 48 tax: 240 paid, 192 net
    the_order = order(
        line(unit_price="100", quantity=3, discount=Decimal(60), tax=Decimal(48)), prices_include_tax=True
    )
    # When it earns with VAT off (192 x 0.1 = 19.2 -> 19) or on (240 x 0.1 = 24)
    earning = earn_for_order(rules_with(earning_base={"include_vat": include_vat}), the_order, "bronze")
    # Then only what was paid for the merchandise earns
    assert (earning.lines[0].base, earning.points) == (base, points)


def test_gift_cards_and_shipping_never_earn() -> None:
    # Given 499 SEK of merchandise, a 1000 SEK gift card and 99 SEK shipping
    the_order = order(
        line("merch", unit_price="499.00"),
        line("card", unit_price="1000.00", is_gift_card=True),
        shipping="99",
    )
    # When it earns
    earning = earn_for_order(rules_with(), the_order, "bronze")
    # Then only the merchandise earns: 499 x 0.1 = 49.9 -> 49; the gift-card line is left out
    assert earning.points == 49
    assert [lp.line_id for lp in earning.lines] == ["merch"]


@pytest.mark.parametrize(
    "lines",
    [
        (),
        (line("card", unit_price="500", is_gift_card=True),),
        (line("free", unit_price="100", discount=Decimal(100)),),
    ],
)
def test_an_order_with_nothing_earning_earns_zero(lines: tuple[OrderLine, ...]) -> None:
    # Given an order with no lines, only a gift card, or a fully discounted line
    # When it earns
    earning = earn_for_order(rules_with(), order(*lines), "gold")
    # Then it earns 0 points, not an error
    assert (earning.points, earning.qualifying_points, earning.campaigns) == (0, 0, ())


def test_rate_per_currency() -> None:
    # Given 1000 DKK of merchandise at 0.15 point per DKK and 12.34 EUR at 1 point per EUR
    # When each earns
    # Then 1000 x 0.15 = 150 and 12.34 x 1 = 12.34 -> 12
    assert earn_for_order(rules_with(), order(line(unit_price="1000"), currency="DKK"), "bronze").points == 150
    assert earn_for_order(rules_with(), order(line(unit_price="12.34"), currency="EUR"), "bronze").points == 12


def test_unknown_currency_is_refused() -> None:
    # Given an order in USD, which the programme has no rate for
    # When it earns / Then UnknownCurrencyError names the currency
    with pytest.raises(UnknownCurrencyError, match="'USD'"):
        earn_for_order(rules_with(), order(line(), currency="usd"), "bronze")


def test_unknown_tier_is_a_value_error_naming_it() -> None:
    # Given a tier the programme does not have
    # When an order earns for it / Then a ValueError names it
    with pytest.raises(ValueError, match="unknown tier 'diamond'") as raised:
        earn_for_order(rules_with(), order(line()), "diamond")
    assert isinstance(raised.value, UnknownTierError)


# --- multipliers: category precedence, tier, campaigns, cap -----------------------------------------------------


@pytest.mark.parametrize(
    ("categories", "multiplier", "rule", "points"),
    [
        (("outdoor", "shoes"), Decimal(2), "category shoes x2, tier bronze x1", 20),  # highest wins, no stacking
        (("new", "outdoor"), Decimal("1.5"), "category outdoor x1.5, tier bronze x1", 15),  # tie: first in file
        ((" Shoes ",), Decimal(2), "category shoes x2, tier bronze x1", 20),  # case-insensitive
        (("socks",), Decimal(1), "tier bronze x1", 10),  # no rule for the category
        ((), Decimal(1), "tier bronze x1", 10),  # unknown product
    ],
)
def test_the_single_highest_category_multiplier_applies(
    categories: tuple[str, ...], multiplier: Decimal, rule: str, points: int
) -> None:
    # Given a 100 SEK line in some categories (shoes x2, outdoor x1.5, new x1.5)
    # When it earns for a bronze member
    earning = earn_for_order(rules_with(), order(line(categories=categories)), "bronze")
    # Then the single highest matching category multiplier applies: 100 x 0.1 x multiplier
    assert (earning.lines[0].multiplier, earning.lines[0].rule, earning.points) == (multiplier, rule, points)


@pytest.mark.parametrize(("tier", "points"), [("bronze", 123), ("silver", 135), ("gold", 154), ("platinum", 185)])
def test_tier_multiplier(tier: str, points: int) -> None:
    # Given 1234 SEK of merchandise: 123.4 exact points at x1
    # When it earns per tier: x1.1 = 135.74 -> 135; x1.25 = 154.25 -> 154; x1.5 = 185.1 -> 185
    earning = earn_for_order(rules_with(), order(line(unit_price="1234")), tier)
    # Then the tier multiplier applies and the total rounds down
    assert earning.points == points
    assert earning.qualifying_points == points


def test_the_combined_multiplier_is_capped() -> None:
    # Given Black Friday x2, a gold member (x1.25) and a cap of 3
    rules = rules_with(campaigns=[campaign(multiplier="2")])
    the_order = order(
        line("shoes", unit_price="1000", categories=("shoes",)),
        line("other", unit_price="1000"),
        placed_at=datetime(2026, 11, 28, 10, 0, tzinfo=STOCKHOLM_WINTER),
    )
    # When the order earns
    earning = earn_for_order(rules, the_order, "gold")
    # Then shoes: 2 x 2 x 1.25 = 5, capped at 3 -> 1000 x 0.1 x 3 = 300; other: 2 x 1.25 = 2.5 -> 250
    assert earning.lines[0] == LinePoints(
        line_id="shoes",
        quantity=1,
        base=Decimal(1000),
        multiplier=Decimal(3),
        points=300,
        rule="category shoes x2, campaign black-friday x2, tier gold x1.25 (capped 3)",
    )
    assert (earning.lines[1].multiplier, earning.lines[1].points) == (Decimal("2.5"), 250)
    assert earning.lines[1].rule == "campaign black-friday x2, tier gold x1.25"
    assert (earning.points, earning.campaigns) == (550, ("black-friday",))


@pytest.mark.parametrize(
    ("placed_at", "points"),
    [
        (datetime(2026, 11, 26, 22, 59, tzinfo=UTC), 10),  # 23:59 on the 26th in Stockholm: before
        (datetime(2026, 11, 26, 23, 0, tzinfo=UTC), 20),  # 00:00 on the 27th in Stockholm: first day
        (datetime(2026, 11, 30, 22, 59, tzinfo=UTC), 20),  # 23:59 on the 30th: last day, inclusive
        (datetime(2026, 11, 30, 23, 0, tzinfo=UTC), 10),  # 00:00 on 1 December: after
    ],
)
def test_campaign_window_is_judged_in_the_programme_time_zone(placed_at: datetime, points: int) -> None:
    # Given Black Friday x2 from 27 to 30 November (Europe/Stockholm, UTC+1 in November)
    rules = rules_with(campaigns=[campaign(multiplier="2")])
    # When a 100 SEK order placed at `placed_at` (UTC) earns
    earning = earn_for_order(rules, order(line(), placed_at=placed_at), "bronze")
    # Then the campaign doubles the 10 points only inside the window
    assert earning.points == points
    assert earning.campaigns == (("black-friday",) if points == 20 else ())


@pytest.mark.parametrize(
    ("day", "points", "campaigns"),
    [
        (date(2026, 3, 7), 50, ("outdoor-saturday",)),  # Saturday: outdoor 100 x 0.1 x 1.5 x 2 = 30 + shoes 20
        (date(2026, 3, 6), 35, ()),  # Friday: outdoor 15 + shoes 20
    ],
)
def test_campaign_weekday_and_category_filter(day: date, points: int, campaigns: tuple[str, ...]) -> None:
    # Given a x2 campaign on Saturdays in March for outdoor products
    rules = rules_with(
        campaigns=[
            campaign(
                id="outdoor-saturday",
                starts_on="2026-03-01",
                ends_on="2026-03-31",
                weekdays=["sat"],
                categories=["Outdoor"],
                multiplier="2",
            )
        ]
    )
    placed_at = datetime(day.year, day.month, day.day, 12, tzinfo=STOCKHOLM_WINTER)
    the_order = order(line("tent", categories=("outdoor",)), line("boots", categories=("shoes",)), placed_at=placed_at)
    # When the order earns
    earning = earn_for_order(rules, the_order, "bronze")
    # Then only the outdoor line on the Saturday is doubled
    assert (earning.points, earning.campaigns) == (points, campaigns)


def test_several_campaign_multipliers_multiply() -> None:
    # Given two active x1.5 campaigns and a cap of 3
    rules = rules_with(campaigns=[campaign(multiplier="1.5"), campaign(id="members-week", multiplier="1.5")])
    placed_at = datetime(2026, 11, 27, 12, tzinfo=STOCKHOLM_WINTER)
    # When a 100 SEK line earns for silver: 1.5 x 1.5 x 1.1 = 2.475 -> 24.75 -> 24
    earning = earn_for_order(rules, order(line(), placed_at=placed_at), "silver")
    # Then both campaigns applied
    assert (earning.lines[0].multiplier, earning.points) == (Decimal("2.475"), 24)
    assert earning.campaigns == ("black-friday", "members-week")


def test_fixed_bonus_is_shared_by_base_over_qualifying_lines() -> None:
    # Given a 100-point bonus for outdoor products
    rules = rules_with(campaigns=[campaign(id="spring", categories=["outdoor"], bonus_points=100)])
    the_order = order(
        line("a", unit_price="100", categories=("outdoor",)),  # 100 x 0.1 x 1.5 = 15
        line("b", unit_price="200", categories=("outdoor",)),  # 200 x 0.1 x 1.5 = 30
        line("c", unit_price="300", categories=("shoes",)),  # 300 x 0.1 x 2 = 60, no bonus
        placed_at=datetime(2026, 11, 27, 12, tzinfo=STOCKHOLM_WINTER),
    )
    # When it earns
    earning = earn_for_order(rules, the_order, "bronze")
    # Then the bonus splits 100:200 -> 33.33, 66.67 -> 33 + 67 (largest remainder to b)
    assert [lp.points for lp in earning.lines] == [15 + 33, 30 + 67, 60]
    assert earning.points == 205
    assert earning.lines[0].rule == "category outdoor x1.5, tier bronze x1, campaign spring +33"
    assert earning.campaigns == ("spring",)


def test_fixed_bonus_remainder_ties_go_to_the_earlier_line() -> None:
    # Given a 100-point bonus on every line and three equal 100 SEK lines
    rules = rules_with(campaigns=[campaign(bonus_points=100)])
    placed_at = datetime(2026, 11, 27, 12, tzinfo=STOCKHOLM_WINTER)
    the_order = order(line("1"), line("2"), line("3"), placed_at=placed_at)
    # When it earns
    earning = earn_for_order(rules, the_order, "bronze")
    # Then 33.33 each -> 34, 33, 33, plus 10 purchase points each
    assert [lp.points for lp in earning.lines] == [44, 43, 43]
    assert earning.points == 130


def test_fixed_bonus_needs_a_qualifying_line_with_a_base() -> None:
    # Given a bonus for outdoor products, and an order whose only outdoor line is fully discounted
    rules = rules_with(campaigns=[campaign(categories=["outdoor"], bonus_points=100)])
    placed_at = datetime(2026, 11, 27, 12, tzinfo=STOCKHOLM_WINTER)
    the_order = order(
        line("free-tent", categories=("outdoor",), discount=Decimal(100)), line("boots"), placed_at=placed_at
    )
    # When it earns
    earning = earn_for_order(rules, the_order, "bronze")
    # Then no bonus is given and the campaign did not apply: only the boots' 10 points
    assert (earning.points, earning.campaigns) == (10, ())


# --- rounding ----------------------------------------------------------------------------------------------------


def test_total_rounds_down_and_is_shared_by_largest_remainder() -> None:
    # Given three 34 SEK lines: 3.4 exact points each
    # When the order earns
    earning = earn_for_order(rules_with(), order(line("1", "34"), line("2", "34"), line("3", "34")), "bronze")
    # Then floor(10.2) = 10, shared 4, 3, 3 (equal remainders: the earlier line first)
    assert [lp.points for lp in earning.lines] == [4, 3, 3]
    assert earning.points == 10


def test_left_over_points_go_to_the_largest_fractions() -> None:
    # Given lines of 5, 7 and 9 SEK: 0.5, 0.7 and 0.9 exact points
    # When the order earns
    earning = earn_for_order(rules_with(), order(line("1", "5"), line("2", "7"), line("3", "9")), "bronze")
    # Then floor(2.1) = 2 goes to the 0.9 and the 0.7 lines
    assert [lp.points for lp in earning.lines] == [0, 1, 1]


def test_rounding_helpers() -> None:
    # Given quotas and weights / When they are shared / Then the hand-computed shares come out
    assert largest_remainder(10, [Decimal("3.4")] * 3) == [4, 3, 3]
    assert largest_remainder(2, [Decimal("0.5"), Decimal("0.7"), Decimal("0.9")]) == [0, 1, 1]
    assert split_proportionally(100, [Decimal(1), Decimal(1), Decimal(1)]) == [34, 33, 33]
    assert split_proportionally(10, [Decimal(1), Decimal(3)]) == [3, 7]  # 2.5, 7.5: tie -> earlier line
    assert split_proportionally(5, [Decimal(0), Decimal(0)]) == [0, 0]
    with pytest.raises(ValueError, match="cannot share 5"):
        largest_remainder(5, [Decimal("1.5")])


@pytest.mark.parametrize("value", [0.1, True, "NaN", "Infinity", "ten", None])
def test_to_decimal_refuses_floats_and_non_numbers(value: object) -> None:
    # Given a float, a bool, a non-finite or a non-number / When converted / Then it is refused
    with pytest.raises(ValueError):
        to_decimal(value)


def test_to_decimal_keeps_the_exact_text() -> None:
    assert str(to_decimal(" 19.90 ")) == "19.90"
    assert to_decimal(3) == Decimal(3)


# --- invalid orders -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fields",
    [
        {"quantity": 0},
        {"unit_price": Decimal("-1")},
        {"discount": Decimal("-0.01")},
        {"tax": Decimal("-0.01")},
        {"unit_price": 9.99},  # float
        {"unit_price": Decimal(10), "quantity": 2, "discount": Decimal("20.01")},  # discount beyond the price
        {"line_id": ""},
    ],
)
def test_invalid_order_lines_are_refused(fields: dict[str, Any]) -> None:
    # Given a line with a negative amount, zero quantity, a float or a discount beyond its price
    settings = {"line_id": "1", "quantity": 1, "unit_price": Decimal(10), **fields}
    # When it is built / Then validation refuses it
    with pytest.raises(ValidationError):
        OrderLine(**settings)


def test_invalid_orders_are_refused() -> None:
    # Given orders with a naive timestamp, tax beyond a tax-inclusive amount, or duplicate line ids
    # When they are built / Then validation refuses them, naming the line
    with pytest.raises(ValidationError, match="timezone"):
        order(line(), placed_at=datetime(2026, 6, 10, 12, 0))  # naive on purpose
    with pytest.raises(ValidationError, match=r"lines\[0\]\.tax"):
        order(line(unit_price="100", tax=Decimal("100.01")), prices_include_tax=True)
    with pytest.raises(ValidationError, match=r"lines\[1\]\.line_id '1' is not unique"):
        order(line("1"), line("1"))
    with pytest.raises(ValidationError, match="currency"):
        order(line(), currency="SEKR")


def test_earning_points_must_add_up() -> None:
    # Given line points summing to 5 / When an Earning claims 6 / Then it is refused
    lp = LinePoints(line_id="1", quantity=1, base=Decimal(50), multiplier=Decimal(1), points=5, rule="tier bronze x1")
    with pytest.raises(ValidationError, match="points 6"):
        Earning(lines=(lp,), points=6, campaigns=(), qualifying_points=6)


# --- property -----------------------------------------------------------------------------------------------------

line_inputs = st.tuples(
    st.decimals(min_value=0, max_value=5000, places=2),  # unit price
    st.integers(min_value=1, max_value=5),  # quantity
    st.integers(min_value=0, max_value=100),  # discount in percent
    st.lists(st.sampled_from(["shoes", "outdoor", "new", "socks"]), max_size=3),
)


@given(
    inputs=st.lists(line_inputs, max_size=8),
    tier=st.sampled_from(sorted(TIER_MULTIPLIERS)),
    currency=st.sampled_from(sorted(RATES)),
    prices_include_tax=st.booleans(),
)
def test_line_points_add_up_to_the_rounded_down_exact_total(
    inputs: list[tuple[Decimal, int, int, list[str]]], tier: str, currency: str, prices_include_tax: bool
) -> None:
    # Given random lines (20% of the paid amount is tax) and a tier
    cent = Decimal("0.01")
    lines = []
    expected_exact = []
    for i, (price, quantity, percent, categories) in enumerate(inputs):
        discount = (price * quantity * percent / 100).quantize(cent, ROUND_DOWN)
        tax = ((price * quantity - discount) * Decimal("0.2")).quantize(cent, ROUND_DOWN)
        lines.append(line(str(i), str(price), quantity, discount=discount, tax=tax, categories=tuple(categories)))
        net = price * quantity - discount - (tax if prices_include_tax else 0)
        category = max([CATEGORY_MULTIPLIERS[c] for c in categories if c in CATEGORY_MULTIPLIERS], default=Decimal(1))
        expected_exact.append(net * RATES[currency] * min(Decimal(3), category * TIER_MULTIPLIERS[tier]))
    the_order = order(*lines, currency=currency, prices_include_tax=prices_include_tax)
    # When the order earns
    earning = earn_for_order(rules_with(), the_order, tier)
    # Then line points sum to the total, the total is the exact sum rounded down,
    # and each line got its exact points rounded down or up
    assert sum(lp.points for lp in earning.lines) == earning.points
    assert earning.points == math.floor(sum(expected_exact, Decimal(0)))
    for lp, exact in zip(earning.lines, expected_exact, strict=True):
        assert math.floor(exact) <= lp.points <= math.ceil(exact)
