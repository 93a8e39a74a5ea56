"""Shopify webhooks: turn a verified REST webhook body into one of our `loyalty.shop.events`.

The receiver verified `X-Shopify-Hmac-Sha256` (`loyalty.shop.intake`) before queueing the body. The dedup
key is `shopify:<X-Shopify-Webhook-Id>`, which Shopify keeps the same on every retry.

Mapping (fields of Shopify's REST webhook payloads):
- orders/paid -> OrderPaidEvent. Amounts are in the shop currency (`currency`, else `presentment_currency`)
  and include tax when `taxes_included` is true. A line's unit price is `price` (before discounts), its
  discount the sum of its `discount_allocations` amounts (else `total_discount`), its tax the sum of its
  `tax_lines` prices; `gift_card` lines are flagged; lines of quantity 0 and tips (`tip` lines) are left out.
  Shipping is the sum of `shipping_lines[].price`. `placed_at` is `processed_at` (else `created_at`),
  `occurred_at` is `updated_at` (else `placed_at`). The e-mail is the order's, else the customer's.
  Not applied (`Unused`): a test order (`test: true`, unless test orders earn), a cancelled (`cancelled_at`)
  or voided order; Shopify's "Send test notification" order is all three.
- refunds/create -> RefundEvent: `refund_line_items` summed by `line_item_id`, quantities > 0 only, tips left
  out (they earned nothing). A refund
  with no line items (shipping only, or an amount) gives `lines={}`: nothing to reverse.
- customers/create, customers/update -> CustomerEvent. Consent: `subscribed` is True; `not_subscribed`,
  `unsubscribed`, `pending` (double opt-in not confirmed yet), `redacted` and `invalid` are False; an
  absent consent (API 2025-01 and later leave it out of customer webhooks) or an unknown state is None.
  A customer with neither `created_at` nor `updated_at` is Shopify's test notification: Unused.
- customers/email_marketing_consent_update (`customer_id`, `email_marketing_consent`) and
  customers/marketing_consent_update (`id`, `sms_marketing_consent`) -> CustomerEvent with that consent
  alone, at its `consent_updated_at` (else as it arrives), that finds the member by customer id or
  `email_address` and never enrols anyone; a consent without a state is the test notification, Unused.
- products/create, products/update -> ProductEvent; categories = `product_type` then the comma-separated
  `tags`, stripped, case-folded, de-duplicated, empties dropped. Without `created_at` and `updated_at`: the
  test notification, Unused.
Any other topic gives None. A body that is not JSON, or lacks a field we need, raises MalformedPayloadError
naming the field (never its value). Money is read exactly (Decimal, JSON numbers included), never as float.
"""

from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from loyalty.clock import now as clock_now
from loyalty.errors import MalformedPayloadError
from loyalty.programme.money import Money
from loyalty.programme.orders import Order, OrderLine
from loyalty.shop.events import (
    CustomerEvent,
    OrderPaidEvent,
    PrivacyEvent,
    ProductEvent,
    RefundEvent,
    ShopEvent,
    Unused,
    test_delivery,
)
from loyalty.wire_json import describe, load_json, text_only


def _id(value: object) -> object:
    """Shopify ids are JSON integers; we keep them as strings."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Id = Annotated[str, BeforeValidator(_id), Field(min_length=1, max_length=100)]
Timestamp = Annotated[AwareDatetime, BeforeValidator(text_only)]  # never a number read as seconds since 1970


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Consent(_Wire):
    state: str | None = None
    consent_updated_at: Timestamp | None = None


class _Customer(_Wire):
    id: Id
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    locale: str | None = None
    email_marketing_consent: _Consent | None = None
    sms_marketing_consent: _Consent | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class _Amount(_Wire):
    amount: Money


class _TaxLine(_Wire):
    price: Money


class _LineItem(_Wire):
    id: Id
    product_id: Id | None = None  # null for a custom line item
    quantity: int
    price: Money
    total_discount: Money = Decimal(0)
    discount_allocations: list[_Amount] = []
    tax_lines: list[_TaxLine] = []
    gift_card: bool = False
    tip: bool = False


class _ShippingLine(_Wire):
    price: Money


class _Address(_Wire):
    first_name: str | None = None


class _DiscountCode(_Wire):
    code: str


class _OrderPayload(_Wire):
    id: Id
    currency: str | None = None
    presentment_currency: str | None = None
    created_at: Timestamp
    processed_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    taxes_included: bool
    email: str | None = None
    customer: _Customer | None = None
    billing_address: _Address | None = None
    line_items: list[_LineItem]
    shipping_lines: list[_ShippingLine] = []
    discount_codes: list[_DiscountCode] = []
    test: bool = False
    cancelled_at: Timestamp | None = None
    financial_status: str | None = None


class _RefundedLine(_Wire):
    tip: bool = False


class _RefundLineItem(_Wire):
    line_item_id: Id
    quantity: int
    line_item: _RefundedLine = _RefundedLine()  # the line as it was ordered


class _RefundPayload(_Wire):
    id: Id
    order_id: Id
    created_at: Timestamp
    refund_line_items: list[_RefundLineItem] = []


class _ProductPayload(_Wire):
    id: Id
    title: str
    product_type: str | None = None
    tags: str | None = None
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None


class _EmailConsentPayload(_Wire):
    customer_id: Id
    email_address: str | None = None
    email_marketing_consent: _Consent


class _SmsConsentPayload(_Wire):
    id: Id
    sms_marketing_consent: _Consent


_CONSENT_STATES = {
    "subscribed": True,
    "not_subscribed": False,
    "unsubscribed": False,
    "pending": False,
    "redacted": False,
    "invalid": False,
}


def parse_shopify_webhook(
    topic: str, shop_domain: str, webhook_id: str, raw_body: bytes, *, test_orders_earn: bool = False
) -> ShopEvent | Unused | None:
    """The event a verified Shopify webhook body stands for, Unused for one not applied on purpose (a test
    notification, a test or cancelled order), or None for a topic we do not handle.

    `topic`, `shop_domain` and `webhook_id` are the X-Shopify-Topic, X-Shopify-Shop-Domain and
    X-Shopify-Webhook-Id headers. Raises MalformedPayloadError for a body that is not JSON, lacks a field
    we need, or does not add up (a discount larger than its line), and for an empty shop or webhook id.
    """
    topic = topic.strip().lower()
    build = BUILDERS.get(topic)
    if build is None:
        return None
    shop_domain, webhook_id = shop_domain.strip().lower(), webhook_id.strip()
    if not shop_domain or not webhook_id:
        raise MalformedPayloadError(f"shopify {topic}: the shop domain and the webhook id are required")
    body = load_json(raw_body, f"shopify {topic}")
    if topic == "orders/paid" and isinstance(body, dict) and body.get("test") is True and not test_orders_earn:
        return test_delivery("a test order earns nothing (TestOrdersEarn is off)")
    try:
        return build(topic, body, f"shopify:{shop_domain}", f"shopify:{webhook_id}")
    except ValidationError as error:
        raise MalformedPayloadError(f"shopify {topic}: {describe(error)}") from None


def _order_paid(topic: str, body: Any, shop: str, dedup_key: str) -> OrderPaidEvent | Unused:
    payload = _OrderPayload.model_validate(body)
    if payload.cancelled_at is not None or payload.financial_status == "voided":
        return Unused(reason="a cancelled or voided order earns nothing", metric="WebhookOrderNotEarning")
    lines = tuple(
        OrderLine(
            line_id=item.id,
            product_id=item.product_id,
            quantity=item.quantity,
            unit_price=item.price,
            discount=(
                sum((a.amount for a in item.discount_allocations), Decimal(0))
                if item.discount_allocations
                else item.total_discount
            ),
            tax=sum((t.price for t in item.tax_lines), Decimal(0)),
            is_gift_card=item.gift_card,
        )
        for item in payload.line_items
        if item.quantity > 0 and not item.tip
    )
    placed_at = payload.processed_at or payload.created_at
    order = Order(
        shop=shop,
        order_id=payload.id,
        currency=payload.currency or payload.presentment_currency or "",
        placed_at=placed_at,
        prices_include_tax=payload.taxes_included,
        lines=lines,
        shipping=sum((s.price for s in payload.shipping_lines), Decimal(0)),
        discount_codes=tuple(d.code for d in payload.discount_codes if d.code),
    )
    customer = payload.customer
    first_name = (customer and customer.first_name) or (payload.billing_address and payload.billing_address.first_name)
    return OrderPaidEvent(
        shop=shop,
        dedup_key=dedup_key,
        occurred_at=payload.updated_at or placed_at,
        order=order,
        customer_id=customer.id if customer else None,
        email=payload.email or (customer and customer.email) or None,
        first_name=first_name or None,
    )


def _refund(topic: str, body: Any, shop: str, dedup_key: str) -> RefundEvent:
    payload = _RefundPayload.model_validate(body)
    quantities: Counter[str] = Counter()
    for item in payload.refund_line_items:
        if item.quantity > 0 and not item.line_item.tip:  # a tip earned nothing: nothing to take back
            quantities[item.line_item_id] += item.quantity
    return RefundEvent(
        shop=shop,
        dedup_key=dedup_key,
        occurred_at=payload.created_at,
        order_id=payload.order_id,
        refund_id=payload.id,
        lines=dict(quantities),
    )


def _customer(topic: str, body: Any, shop: str, dedup_key: str) -> CustomerEvent | Unused:
    payload = _Customer.model_validate(body)
    occurred_at = payload.updated_at or payload.created_at
    if occurred_at is None:  # every real customer has been created
        return test_delivery("Shopify's sample customer")
    return CustomerEvent(
        shop=shop,
        dedup_key=dedup_key,
        occurred_at=occurred_at,
        customer_id=payload.id,
        email=payload.email or None,
        first_name=payload.first_name or None,
        last_name=payload.last_name or None,
        phone=payload.phone or None,
        email_consent=_consent(payload.email_marketing_consent),
        sms_consent=_consent(payload.sms_marketing_consent),
        locale=payload.locale or None,
        created=topic == "customers/create",
    )


def _consent_change(
    shop: str, dedup_key: str, customer_id: str, consent: _Consent, channel: str, email: str | None = None
) -> CustomerEvent | Unused:
    if consent.state is None:  # every real change is to a state
        return test_delivery(f"Shopify's sample {channel} consent change")
    return CustomerEvent(
        shop=shop,
        dedup_key=dedup_key,
        occurred_at=consent.consent_updated_at or clock_now(),  # without its time: as it arrives
        customer_id=customer_id,
        email=email or None,  # to find the member by, never to enrol: the customer may not be one
        first_name=None,
        last_name=None,
        phone=None,
        email_consent=_consent(consent) if channel == "e-mail" else None,
        sms_consent=_consent(consent) if channel == "SMS" else None,
        locale=None,
        created=False,
        may_enrol=False,
    )


def _email_consent(topic: str, body: Any, shop: str, dedup_key: str) -> CustomerEvent | Unused:
    payload = _EmailConsentPayload.model_validate(body)
    consent, address = payload.email_marketing_consent, payload.email_address
    return _consent_change(shop, dedup_key, payload.customer_id, consent, "e-mail", address)


def _sms_consent(topic: str, body: Any, shop: str, dedup_key: str) -> CustomerEvent | Unused:
    payload = _SmsConsentPayload.model_validate(body)
    return _consent_change(shop, dedup_key, payload.id, payload.sms_marketing_consent, "SMS")


def _product(topic: str, body: Any, shop: str, dedup_key: str) -> ProductEvent | Unused:
    payload = _ProductPayload.model_validate(body)
    occurred_at = payload.updated_at or payload.created_at
    if occurred_at is None:  # every real product has been created
        return test_delivery("Shopify's sample product")
    names = [payload.product_type or "", *(payload.tags or "").split(",")]
    categories = dict.fromkeys(c for c in (name.strip().casefold() for name in names) if c)
    return ProductEvent(
        shop=shop,
        dedup_key=dedup_key,
        occurred_at=occurred_at,
        product_id=payload.id,
        title=payload.title,
        categories=tuple(categories),
    )


def _consent(consent: _Consent | None) -> bool | None:
    return _CONSENT_STATES.get(consent.state) if consent and consent.state else None


class _PrivacyCustomer(_Wire):
    id: Id | None = None
    email: str | None = None


class _DataRequest(_Wire):
    id: Id | None = None


class _PrivacyPayload(_Wire):
    customer: _PrivacyCustomer | None = None
    data_request: _DataRequest | None = None


PRIVACY_REQUESTS = {"customers/data_request": "export", "customers/redact": "erase", "shop/redact": "shop_erase"}


def _privacy(topic: str, body: Any, shop: str, dedup_key: str) -> PrivacyEvent:
    """One of Shopify's mandatory privacy webhooks: a customer's data requested or to be erased (by their id and
    e-mail), or the shop's customers to be erased 48 hours after the shop uninstalled the app."""
    payload = _PrivacyPayload.model_validate(body)
    customer = payload.customer
    request = PRIVACY_REQUESTS[topic]
    if request != "shop_erase" and (customer is None or (customer.id is None and not customer.email)):
        raise MalformedPayloadError(f"shopify {topic}: customer.id or customer.email is required")
    return PrivacyEvent(
        shop=shop,
        dedup_key=dedup_key,
        occurred_at=clock_now(),
        request=request,
        customer_id=customer.id if customer is not None else None,
        email=(customer.email or None) if customer is not None else None,
        request_id=payload.data_request.id if payload.data_request is not None else None,
    )


BUILDERS: dict[str, Callable[[str, Any, str, str], ShopEvent | Unused]] = {  # the receiver queues these only
    "orders/paid": _order_paid,
    "refunds/create": _refund,
    "customers/create": _customer,
    "customers/update": _customer,
    "customers/email_marketing_consent_update": _email_consent,
    "customers/marketing_consent_update": _sms_consent,
    "products/create": _product,
    "products/update": _product,
    **dict.fromkeys(PRIVACY_REQUESTS, _privacy),
}
