"""Order builders shared by the ledger tests, the demo and the benchmarks."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from loyalty.programme.orders import Order, OrderLine


def simple_order(
    order_id: str,
    placed_at: datetime,
    lines: list[tuple[str, int, str]] | None = None,
    shop: str = "shopify:demo",
    currency: str = "EUR",
) -> Order:
    """An order with VAT-exclusive prices; ``lines`` are (line id, quantity, unit price)."""
    lines = lines or [("1", 1, "100.00")]
    return Order(
        shop=shop,
        order_id=order_id,
        currency=currency,
        placed_at=placed_at,
        prices_include_tax=False,
        lines=tuple(
            OrderLine(line_id=line_id, product_id=f"p-{line_id}", quantity=qty, unit_price=Decimal(price))
            for line_id, qty, price in lines
        ),
    )
