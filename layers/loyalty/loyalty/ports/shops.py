"""The shops' side of the programme: a redemption's code made in Shopify or WooCommerce, and removed again; and
the member's tier and segment written to their customer in each shop, for the shop's own rules.

Implemented by loyalty.adapters.shop_codes (Shopify Admin GraphQL, WooCommerce REST) and loyalty.fakes.shops.
Errors: ShopRetryableError (try again later), ShopRefusedError (refused for good; the message says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from loyalty.programme.tiers import TierOverride


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


@dataclass(frozen=True)
class MemberTags:
    """What a member's item says of their tier, segment and shop customers (as the table's stream shows it)."""

    member_id: str
    tier: str | None  # earned; None: the lowest
    override: TierOverride | None
    segment: str | None
    customers: frozenset[tuple[str, str]]  # (shop, the shop's customer id)


@dataclass(frozen=True)
class MemberImages:
    """One change of a member's item: its stream record's sequence number, the item before (None: new) and after."""

    key: str
    before: MemberTags | None
    after: MemberTags


@dataclass(frozen=True)
class CustomerLabels:
    """What a shop's customer carries of the programme: Shopify customer metafields ``loyalty.tier`` and
    ``loyalty.segment`` and the tag ``loyalty-tier-<tier>`` (the other tiers' tags removed); WooCommerce customer
    meta ``loyalty_tier`` and ``loyalty_segment``."""

    shop: str
    customer_id: str  # the shop's own id
    tier: str  # the tier in force, by name (e.g. "gold")
    segment: str | None
    other_tiers: tuple[str, ...]  # their tags are removed


@dataclass(frozen=True)
class RefundedLine:
    """What a refund took back of one order line: units, and the amount without tax (an amount may be refunded on
    a line without any unit)."""

    units: int
    amount: Decimal


class ShopRefunds(Protocol):
    def refund_lines(self, shop: str, order_id: str, refund_id: str) -> dict[str, RefundedLine]:
        """What a refund of the shop's order took back of each order line (the shop's own line ids; empty for a
        refund of the order's amount alone). ShopRetryableError: ask again later; ShopRefusedError: the shop has no
        such refund, or it cannot be read."""
        ...


class ShopCustomers(Protocol):
    def label(self, labels: CustomerLabels) -> None:
        """Set the customer's loyalty fields as given (again is harmless)."""
        ...
