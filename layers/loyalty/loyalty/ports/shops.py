"""The shops' own discount codes: a redemption's code made in Shopify or WooCommerce, and removed again.

Implemented by loyalty.adapters.shop_codes (Shopify Admin GraphQL, WooCommerce REST) and loyalty.fakes.shops.
Errors: ShopRetryableError (try again later), ShopRefusedError (refused for good; the message says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class CodeRequest:
    """One single-use code for one customer, in the shop's currency, valid from ``starts_at`` to ``ends_at``."""

    shop: str  # "shopify:<domain>" or "woocommerce:<host>"
    code: str
    title: str
    kind: str  # amount_off, percent_off, free_shipping or free_product
    starts_at: datetime
    ends_at: datetime
    currency: str
    customer_email: str | None = None
    amount: Decimal | None = None
    percent: Decimal | None = None
    product: str | None = None  # the shop's product or variant id
    min_subtotal: Decimal | None = None


@dataclass(frozen=True)
class ShopCode:
    """The code as the shop has it: its own id, and the link that applies it at checkout, if the shop has one."""

    shop_code_id: str
    apply_url: str | None = None


class ShopCodes(Protocol):
    def create(self, request: CodeRequest) -> ShopCode:
        """The code in the shop. If the shop already has the code (an earlier attempt made it), that one."""
        ...

    def remove(self, shop: str, shop_code_id: str) -> None:
        """The code gone from the shop (already gone is fine)."""
        ...
