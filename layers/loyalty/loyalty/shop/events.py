"""What the shops tell us, in our own terms: frozen event models independent of any shop's wire format.

The shop adapters (`loyalty.shop.shopify`, `loyalty.shop.woocommerce`) turn a verified webhook
body into one of these; everything downstream sees only these models.

- `shop` names the shop: `"shopify:<shop domain>"` or `"woocommerce:<source host>"`.
- `dedup_key` is the idempotency key downstream: the same real-world event delivered twice has the same
  key (Shopify: the webhook id, stable across retries; WooCommerce: the resource, its id and its state,
  because WooCommerce's delivery id changes on every attempt).
- `occurred_at` is when the shop says the change happened, always timezone-aware.

`OrderPaidEvent.order` leaves `lines[*].categories` empty: the ledger writer fills them from the product
catalogue kept from `ProductEvent`s (order lines carry no product type).

`RefundEvent.lines` maps an order line id to the quantity refunded (only quantities > 0 appear):
- `None`: the whole order is refunded or cancelled (WooCommerce status refunded/cancelled);
- `{}`: nothing to reverse (a refund of shipping only, or an amount without line items);
- otherwise: those quantities of those lines.

`Unused` is a delivery the programme receives and deliberately does not apply (a test delivery, a cancelled
order): the ledger writer logs its reason and counts it under its metric, and nothing is written.

Every event round-trips through JSON (`ShopEventAdapter.validate_json(event.model_dump_json())`), so it
can travel on a queue.
"""

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, TypeAdapter

from loyalty.programme.orders import Order

ShopName = Annotated[str, Field(pattern=r"^(shopify|woocommerce):\S+$")]
NonEmpty = Annotated[str, Field(min_length=1)]


class _Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    shop: ShopName
    dedup_key: NonEmpty  # idempotency key downstream; see the module docstring
    occurred_at: AwareDatetime


class ProductEvent(_Event):
    kind: Literal["product"] = "product"
    product_id: NonEmpty
    title: str
    categories: tuple[str, ...]  # stripped, case-folded, de-duplicated, no empties; first seen first


class CustomerEvent(_Event):
    kind: Literal["customer"] = "customer"
    customer_id: NonEmpty
    email: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    email_consent: bool | None  # None: the shop did not say (leave the stored consent as it is)
    sms_consent: bool | None
    locale: str | None
    created: bool  # True for a newly created customer, False for an update
    may_enrol: bool = True  # False: only a member already known is updated (a consent change from the shop)


class ListedRefund(BaseModel):
    """A refund the shop's order already lists, with its total but not its lines (WooCommerce)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    refund_id: NonEmpty
    total: Annotated[Decimal, Field(ge=0)]


class OrderPaidEvent(_Event):
    kind: Literal["order_paid"] = "order_paid"
    order: Order
    customer_id: str | None  # None for a guest checkout
    email: str | None
    first_name: str | None
    refunds: tuple[ListedRefund, ...] = ()  # WooCommerce: the order's lines are as bought; these come off


class RefundEvent(_Event):
    kind: Literal["refund"] = "refund"
    order_id: NonEmpty
    refund_id: NonEmpty
    lines: dict[NonEmpty, Annotated[int, Field(gt=0)]] | None  # None = whole order; {} = nothing to reverse


class PrivacyEvent(_Event):
    """A shop's privacy request (Shopify's mandatory webhooks): the customer's data for the merchant (``export``),
    the customer erased (``erase``), or every customer of a shop that left the app erased (``shop_erase``, no
    customer named). ``occurred_at`` is when it was received (the requests carry no time)."""

    kind: Literal["privacy"] = "privacy"
    request: Literal["export", "erase", "shop_erase"]
    customer_id: str | None = None
    email: str | None = None
    request_id: str | None = None  # the shop's id of a data request


ShopEvent = Annotated[
    ProductEvent | CustomerEvent | OrderPaidEvent | RefundEvent | PrivacyEvent, Field(discriminator="kind")
]
ShopEventAdapter: TypeAdapter[ShopEvent] = TypeAdapter(ShopEvent)


class Unused(BaseModel):
    """A delivery that is not applied, on purpose; `reason` is for the log (never personal data)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reason: NonEmpty
    metric: Literal["WebhookTestDelivery", "WebhookOrderNotEarning"]


def test_delivery(what: str) -> Unused:
    return Unused(reason=f"test delivery: {what}", metric="WebhookTestDelivery")
