"""WooCommerce webhooks: turn a verified REST v3 body into a `loyalty.shop.events` event.

The receiver verified `X-WC-Webhook-Signature` and answered the unsigned `webhook_id=N` ping
(`loyalty.shop.intake`) before queueing the body.

WooCommerce's delivery id changes on every attempt, so the dedup key is built from the resource and its
state: `woocommerce:<host>:order:<id>:<status>` for orders, `woocommerce:<host>:<customer|product>:<id>:
<date_modified_gmt>` for customers and products. `<host>` is the host (and port, if any) of the
X-WC-Webhook-Source URL, lower-cased; the shop is `woocommerce:<host>`.

Mapping (REST API v3 shapes; `*_gmt` dates carry no offset and are UTC):
- order.created / order.updated with status `completed` -> OrderPaidEvent. WooCommerce keeps line amounts
  WITHOUT tax whatever the store's `prices_include_tax`, so the Order always has `prices_include_tax=False`:
  unit_price = subtotal / quantity, discount = subtotal - total, tax = total_tax, and the line amount is
  exactly `total`. When subtotal / quantity has no exact decimal, the unit price is rounded UP at 10
  decimals and the discount absorbs the difference (so the amount stays exactly `total`). A line whose
  total exceeds its subtotal (edited by hand) gets no discount. Lines of quantity 0 are left out; fees and
  coupons are not lines (coupons are already in the line totals). WooCommerce has no gift-card flag on a
  line: `is_gift_card` is False. Shipping = sum of `shipping_lines[].total` (without tax). `placed_at` is
  `date_created_gmt`; `occurred_at` is `date_completed_gmt`, else paid, modified, created. customer_id 0
  (a guest) gives None; e-mail and first name come from `billing`.
  A partial refund leaves the status at completed and adds the refund to the order's `refunds` (its id and
  total, not its lines): the event carries the order as bought and `refunds` (ListedRefund), and the dedup key
  names the refunds (`...:completed:refunds:<ids>`), so the delivery after each new refund is applied too. The
  ledger writer reads each refund's lines from the shop's REST API and reverses them line by line; for a shop
  it has no API keys for, `kept_after_refunds` reduces each line by the whole refunded total (at most to
  zero) before the order is first accrued: however the refund was shared out among the lines, no line keeps
  less than that, so the order never earns on refunded money.
- order.* with status `refunded` or `cancelled` -> RefundEvent of the whole order (`lines=None`,
  `refund_id="status:<status>"`).
- order.* with any other status -> None.
- customer.created / customer.updated -> CustomerEvent; phone from `billing`; WooCommerce core has no
  marketing consent or locale, so those are None.
- product.created / product.updated -> ProductEvent; categories = `categories[].slug` (percent-decoded;
  the name when there is no slug) then `tags[].slug`, stripped, case-folded, de-duplicated.
Any other topic gives None. A body that is not JSON or lacks a field we need raises MalformedPayloadError
naming the field, never its value. Money is read exactly from the strings (Decimal), never as float.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, Inexact, localcontext
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from loyalty.errors import MalformedPayloadError
from loyalty.ports.shops import RefundedLine
from loyalty.programme.money import ExactDecimal, Money
from loyalty.programme.orders import Order, OrderLine
from loyalty.shop.events import CustomerEvent, ListedRefund, OrderPaidEvent, ProductEvent, RefundEvent, ShopEvent
from loyalty.shop.intake import WOOCOMMERCE_EARNING_STATUS, WOOCOMMERCE_REVERSING_STATUSES, woocommerce_order_status
from loyalty.wire_json import describe, load_json, text_only

_UNIT_PRICE_STEP = Decimal("1e-10")
_CENT = Decimal("0.01")


def _id(value: object) -> object:
    """WooCommerce ids are JSON integers; we keep them as strings."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _as_utc(value: datetime) -> datetime:
    """`*_gmt` dates have no offset: they are UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


Id = Annotated[str, BeforeValidator(_id), Field(min_length=1, max_length=100)]
UtcDatetime = Annotated[datetime, BeforeValidator(text_only), AfterValidator(_as_utc)]  # never seconds since 1970


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Billing(_Wire):
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None


class _LineItem(_Wire):
    id: Id
    product_id: int = 0  # 0: the product was deleted
    quantity: int
    subtotal: Money  # before discounts, without tax
    total: Money  # after discounts, without tax
    total_tax: Money = Decimal(0)


class _ShippingLine(_Wire):
    total: Money


class _CouponLine(_Wire):
    code: str


class _Refund(_Wire):
    id: Id
    total: ExactDecimal  # WooCommerce writes it negative: "-10.00"


class _Meta(_Wire):
    key: str
    value: Any = None


class _RefundLine(_Wire):
    quantity: int = 0  # negative: units taken back
    total: ExactDecimal = Decimal(0)  # negative: the amount taken back, without tax
    meta_data: list[_Meta] = []


class _RefundDetail(_Wire):
    id: Id
    line_items: list[_RefundLine] = []


class _OrderState(_Wire):
    id: Id
    status: str
    date_created_gmt: UtcDatetime
    date_modified_gmt: UtcDatetime | None = None


class _Order(_OrderState):
    currency: str
    date_paid_gmt: UtcDatetime | None = None
    date_completed_gmt: UtcDatetime | None = None
    customer_id: int = 0  # 0: a guest
    billing: _Billing = _Billing()
    line_items: list[_LineItem]
    shipping_lines: list[_ShippingLine] = []
    coupon_lines: list[_CouponLine] = []
    refunds: list[_Refund] = []


class _Customer(_Wire):
    id: Id
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    billing: _Billing = _Billing()
    date_created_gmt: UtcDatetime | None = None
    date_modified_gmt: UtcDatetime | None = None


class _Term(_Wire):
    name: str | None = None
    slug: str | None = None


class _Product(_Wire):
    id: Id
    name: str
    categories: list[_Term] = []
    tags: list[_Term] = []
    date_created_gmt: UtcDatetime | None = None
    date_modified_gmt: UtcDatetime | None = None


def parse_woocommerce_webhook(topic: str, source: str, raw_body: bytes) -> ShopEvent | None:
    """The event a verified WooCommerce webhook body stands for, or None for a topic or status we ignore.

    `topic` is X-WC-Webhook-Topic (e.g. `order.updated`); `source` is X-WC-Webhook-Source (the shop's URL)
    or a bare host. Raises MalformedPayloadError for a body that is not JSON or lacks a field we need, and
    for an empty source.
    """
    topic = topic.strip().lower()
    build = BUILDERS.get(topic)
    if build is None:
        return None
    host = _source_host(source)
    if not host:
        raise MalformedPayloadError(f"woocommerce {topic}: the webhook source is required")
    body = load_json(raw_body, f"woocommerce {topic}")
    try:
        return build(topic, body, host)
    except ValidationError as error:
        raise MalformedPayloadError(f"woocommerce {topic}: {describe(error)}") from None


def _order(topic: str, body: Any, host: str) -> OrderPaidEvent | RefundEvent | None:
    state = _OrderState.model_validate(body)
    status = woocommerce_order_status(state.status)
    shop, dedup_key = f"woocommerce:{host}", f"woocommerce:{host}:order:{state.id}:{status}"
    if status in WOOCOMMERCE_REVERSING_STATUSES:
        return RefundEvent(
            shop=shop,
            dedup_key=dedup_key,
            occurred_at=state.date_modified_gmt or state.date_created_gmt,
            order_id=state.id,
            refund_id=f"status:{status}",
            lines=None,
        )
    if status != WOOCOMMERCE_EARNING_STATUS:
        return None
    payload = _Order.model_validate(body)
    refunds = tuple(ListedRefund(refund_id=r.id, total=abs(r.total)) for r in payload.refunds)
    if refunds:  # each new refund is a new state of the order: delivered after the last, it is applied too
        dedup_key += ":refunds:" + "-".join(sorted(refund.refund_id for refund in refunds))
    order = Order(
        shop=shop,
        order_id=payload.id,
        currency=payload.currency,
        placed_at=payload.date_created_gmt,
        prices_include_tax=False,  # WooCommerce line amounts never include tax
        lines=tuple(_order_line(item) for item in payload.line_items if item.quantity > 0),
        shipping=sum((s.total for s in payload.shipping_lines), Decimal(0)),
        discount_codes=tuple(c.code for c in payload.coupon_lines if c.code),
    )
    return OrderPaidEvent(
        shop=shop,
        dedup_key=dedup_key,
        occurred_at=(
            payload.date_completed_gmt or payload.date_paid_gmt or payload.date_modified_gmt or payload.date_created_gmt
        ),
        order=order,
        customer_id=str(payload.customer_id) if payload.customer_id else None,
        email=payload.billing.email or None,
        first_name=payload.billing.first_name or None,
        refunds=refunds,
    )


def kept_after_refunds(order: Order, refunded: Decimal) -> Order:
    """The order as certainly kept when only its refunds' totals are known: each line less the whole refunded
    total, at most to zero, its tax in the same share."""
    if refunded <= 0:
        return order
    lines = []
    for line in order.lines:
        amount = line.quantity * line.unit_price - line.discount
        kept = max(amount - refunded, Decimal(0))
        tax = line.tax if kept == amount else (line.tax * kept / amount).quantize(_CENT, ROUND_FLOOR)
        lines.append(line.model_copy(update={"discount": line.quantity * line.unit_price - kept, "tax": tax}))
    return order.model_copy(update={"lines": tuple(lines)})


def refund_lines(body: Any) -> dict[str, RefundedLine]:
    """An order refund of the REST API (`GET /orders/<id>/refunds/<refund id>`) as what it took back of each order
    line (`_refunded_item_id` in each refund line's meta data; quantities and totals are negative)."""
    refund = _RefundDetail.model_validate(body)
    lines: dict[str, RefundedLine] = {}
    for item in refund.line_items:
        refunded = next((str(meta.value) for meta in item.meta_data if meta.key == "_refunded_item_id"), "")
        if refunded and (item.quantity or item.total):
            before = lines.get(refunded, RefundedLine(0, Decimal(0)))
            lines[refunded] = RefundedLine(before.units + abs(item.quantity), before.amount + abs(item.total))
    return lines


def _order_line(item: _LineItem) -> OrderLine:
    """The line as the programme sees it (as bought: refunds are applied as reversals)."""
    gross = max(item.subtotal, item.total)  # a total above the subtotal (a line edited by hand): no discount
    with localcontext() as context:
        context.clear_flags()
        unit_price = gross / item.quantity
        exact = not context.flags[Inexact]
    if not exact:  # e.g. 11.71 / 3: round up at 10 decimals; the discount absorbs the difference
        unit_price = unit_price.quantize(_UNIT_PRICE_STEP, rounding=ROUND_CEILING)
    return OrderLine(
        line_id=item.id,
        product_id=str(item.product_id) if item.product_id else None,
        quantity=item.quantity,
        unit_price=unit_price,
        discount=item.quantity * unit_price - item.total,
        tax=item.total_tax,
    )


def _customer(topic: str, body: Any, host: str) -> CustomerEvent:
    payload = _Customer.model_validate(body)
    modified = payload.date_modified_gmt or payload.date_created_gmt
    if modified is None:
        raise MalformedPayloadError(f"woocommerce {topic}: date_modified_gmt or date_created_gmt is required")
    return CustomerEvent(
        shop=f"woocommerce:{host}",
        dedup_key=f"woocommerce:{host}:customer:{payload.id}:{_key_time(modified)}",
        occurred_at=modified,
        customer_id=payload.id,
        email=payload.email or payload.billing.email or None,
        first_name=payload.first_name or payload.billing.first_name or None,
        last_name=payload.last_name or payload.billing.last_name or None,
        phone=payload.billing.phone or None,
        email_consent=None,
        sms_consent=None,
        locale=None,
        created=topic == "customer.created",
    )


def _product(topic: str, body: Any, host: str) -> ProductEvent:
    payload = _Product.model_validate(body)
    modified = payload.date_modified_gmt or payload.date_created_gmt
    if modified is None:
        raise MalformedPayloadError(f"woocommerce {topic}: date_modified_gmt or date_created_gmt is required")
    names = (unquote(term.slug) if term.slug else term.name or "" for term in [*payload.categories, *payload.tags])
    categories = dict.fromkeys(c for c in (name.strip().casefold() for name in names) if c)
    return ProductEvent(
        shop=f"woocommerce:{host}",
        dedup_key=f"woocommerce:{host}:product:{payload.id}:{_key_time(modified)}",
        occurred_at=modified,
        product_id=payload.id,
        title=payload.name,
        categories=tuple(categories),
    )


def _key_time(value: datetime) -> str:
    """A UTC time as WooCommerce writes `*_gmt` dates (`2026-03-16T07:12:44`), for dedup keys."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat()


def _source_host(source: str) -> str:
    """`https://Shop.example.com/` -> `shop.example.com` (a port is kept); a bare host is lower-cased."""
    source = source.strip()
    if "://" not in source:
        return source.strip("/").lower()
    try:
        parts = urlsplit(source)
        host, port = parts.hostname or "", parts.port
    except ValueError:  # a port that is not a number
        return ""
    return f"{host}:{port}" if host and port else host


BUILDERS: dict[str, Callable[[str, Any, str], ShopEvent | None]] = {  # the receiver queues these topics only
    "order.created": _order,
    "order.updated": _order,
    "customer.created": _customer,
    "customer.updated": _customer,
    "product.created": _product,
    "product.updated": _product,
}
