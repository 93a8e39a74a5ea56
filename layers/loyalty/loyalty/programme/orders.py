"""Orders as the programme sees them, whatever shop they come from. Money is Decimal, never float."""

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Self

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from loyalty.programme.money import Money


def casefold_categories(categories: tuple[str, ...]) -> tuple[str, ...]:
    """Category names match case-insensitively: rules and order lines keep them stripped and case-folded."""
    return tuple(c.strip().casefold() for c in categories)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OrderLine(_Frozen):
    line_id: Annotated[str, Field(min_length=1)]
    product_id: str | None = None
    categories: tuple[str, ...] = ()  # from the product catalogue; empty = unknown product, base rate
    quantity: Annotated[int, Field(gt=0)]
    unit_price: Money  # per unit as charged, incl. or excl. tax per Order.prices_include_tax
    discount: Money = Decimal(0)  # total discount on this line (all units)
    tax: Money = Decimal(0)  # total tax on this line after discount
    is_gift_card: bool = False

    @field_validator("categories")
    @classmethod
    def _normalise(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return casefold_categories(value)

    @model_validator(mode="after")
    def _discount_within_price(self) -> Self:
        if self.discount > self.quantity * self.unit_price:
            raise ValueError(f"discount {self.discount} exceeds quantity x unit_price of line {self.line_id!r}")
        return self

    @property
    def amount(self) -> Decimal:
        """What the line costs after its discount, as charged (with or without tax, per the order)."""
        return self.quantity * self.unit_price - self.discount


class Order(_Frozen):
    shop: str  # e.g. "shopify:myshop"; opaque here
    order_id: str
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]  # ISO 4217
    placed_at: AwareDatetime
    prices_include_tax: bool
    lines: tuple[OrderLine, ...]
    shipping: Money = Decimal(0)  # never earns; kept for completeness
    discount_codes: tuple[str, ...] = ()  # codes the customer entered (segments tell price-driven buyers)

    @field_validator("currency", mode="before")
    @classmethod
    def _upper_case(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent_lines(self) -> Self:
        seen: set[str] = set()
        for i, line in enumerate(self.lines):
            if line.line_id in seen:
                raise ValueError(f"lines[{i}].line_id {line.line_id!r} is not unique")
            seen.add(line.line_id)
            if self.prices_include_tax and line.tax > line.amount:
                raise ValueError(f"lines[{i}].tax {line.tax} exceeds the tax-inclusive amount {line.amount}")
        return self


def with_catalogue_categories(order: Order, known: Mapping[str, tuple[str, ...]]) -> Order:
    """The order with each line's categories as the product catalogue has them (``known``: product id ->
    categories); a line whose product the catalogue does not know keeps its own."""
    lines = tuple(
        line.model_copy(update={"categories": known.get(line.product_id or "", line.categories)})
        for line in order.lines
    )
    return order.model_copy(update={"lines": lines})
