"""Payloads as real shops send them: every file under tests/events/shopify and tests/events/woocommerce through
the receiver and the mapping, and what the programme makes of tips, test deliveries, test and cancelled orders,
consent changes, refunds already in an order, and other WooCommerce API versions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest

from loyalty.errors import ShopRefusedError
from loyalty.fakes import Fakes
from loyalty.fakes.shops import InMemoryShopRefunds
from loyalty.ledger.model import Entry
from loyalty.ledger.service import Ledger
from loyalty.offers.rules import load_offer_rules
from loyalty.ports.shops import RefundedLine
from loyalty.shop.applier import ShopEventApplier
from loyalty.shop.events import (
    CustomerEvent,
    ListedRefund,
    OrderPaidEvent,
    PrivacyEvent,
    ProductEvent,
    RefundEvent,
    Unused,
)
from loyalty.shop.intake import WebhookReceiver
from loyalty.shop.webhooks import QueuedWebhook, shop_event
from loyalty.shop.woocommerce import kept_after_refunds
from tests.conftest import FakeClock

EVENTS = Path(__file__).resolve().parents[1] / "events"
SHOP_DOMAIN = "fjallvind-outdoor.myshopify.com"
SOURCE = "https://kahvipaahtimo.example.fi/"
WOO_SHOP = "woocommerce:kahvipaahtimo.example.fi"
SECRETS = {"shopify": "shopify-secret", "woocommerce": "woocommerce-secret"}
UPDATE_SETTING = "WP REST API Integration v3"

# Every payload file a shop sends, the topic it comes with, and what the programme makes of it
PAYLOADS: dict[str, tuple[str, type | str]] = {
    "shopify/orders_paid.json": ("orders/paid", OrderPaidEvent),
    "shopify/orders_paid_with_tip.json": ("orders/paid", OrderPaidEvent),
    "shopify/orders_paid_test_order.json": ("orders/paid", "WebhookTestDelivery"),
    "shopify/orders_paid_test_notification.json": ("orders/paid", "WebhookTestDelivery"),
    "shopify/refunds_create_partial.json": ("refunds/create", RefundEvent),
    "shopify/customers_create.json": ("customers/create", CustomerEvent),
    "shopify/customers_create_test_notification.json": ("customers/create", "WebhookTestDelivery"),
    "shopify/customers_email_marketing_consent_update.json": (
        "customers/email_marketing_consent_update",
        CustomerEvent,
    ),
    "shopify/customers_email_marketing_consent_update_test_notification.json": (
        "customers/email_marketing_consent_update",
        "WebhookTestDelivery",
    ),
    "shopify/customers_marketing_consent_update.json": ("customers/marketing_consent_update", CustomerEvent),
    "shopify/customers_marketing_consent_update_test_notification.json": (
        "customers/marketing_consent_update",
        "WebhookTestDelivery",
    ),
    "shopify/products_create.json": ("products/create", ProductEvent),
    "shopify/products_create_test_notification.json": ("products/create", "WebhookTestDelivery"),
    "shopify/customers_data_request.json": ("customers/data_request", PrivacyEvent),
    "shopify/customers_redact.json": ("customers/redact", PrivacyEvent),
    "shopify/shop_redact.json": ("shop/redact", PrivacyEvent),
    "woocommerce/order_completed.json": ("order.updated", OrderPaidEvent),
    "woocommerce/order_completed_with_refunds.json": ("order.updated", OrderPaidEvent),
    "woocommerce/order_refunded.json": ("order.updated", RefundEvent),
    "woocommerce/order_completed_legacy_api.json": ("order.updated", "not queued"),
    "woocommerce/order_completed_wp_api_v1.json": ("order.updated", "not queued"),
    "woocommerce/customer_created.json": ("customer.created", CustomerEvent),
    "woocommerce/product_updated.json": ("product.updated", ProductEvent),
}


class Queue:
    def __init__(self) -> None:
        self.messages: list[str] = []

    def send(self, message: str) -> None:
        self.messages.append(message)


def raw(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def signed(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def receive(name: str, body: bytes | None = None) -> tuple[dict[str, str], list[QueuedWebhook]]:
    """What the receiver answers for the payload file, and what it queued."""
    topic = PAYLOADS[name][0]
    body = raw(name) if body is None else body
    queue = Queue()
    receiver = WebhookReceiver(queue, SECRETS.__getitem__, "shopify", "woocommerce")  # type: ignore[arg-type]
    if name.startswith("shopify/"):
        headers = {
            "x-shopify-hmac-sha256": signed(body, SECRETS["shopify"]),
            "x-shopify-topic": topic,
            "x-shopify-shop-domain": SHOP_DOMAIN,
            "x-shopify-webhook-id": f"wh-{name}",
        }
        answer = receiver.shopify(body, headers)
    else:
        headers = {
            "x-wc-webhook-signature": signed(body, SECRETS["woocommerce"]),
            "x-wc-webhook-topic": topic,
            "x-wc-webhook-source": SOURCE,
            "content-type": "application/json",
        }
        answer = receiver.woocommerce(body, headers)
    return answer, [QueuedWebhook.model_validate_json(message) for message in queue.messages]


def mapped(name: str, body: bytes | None = None, **options: Any) -> Any:
    _, (webhook,) = receive(name, body)
    return shop_event(webhook, **options)


@pytest.fixture
def applier(fakes: Fakes, ledger: Ledger) -> ShopEventApplier:
    return ShopEventApplier(ledger, fakes.directory, 30, load_offer_rules(), fakes.offer_queue)


def deliver(applier: ShopEventApplier, name: str) -> str:
    _, (webhook,) = receive(name)
    return applier.deliver(webhook)


def test_every_payload_file_a_shop_sends_is_listed_here() -> None:
    files = {f"{platform}/{p.name}" for platform in ("shopify", "woocommerce") for p in (EVENTS / platform).iterdir()}
    assert files == set(PAYLOADS)


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_every_payload_file_is_answered_and_mapped_never_a_dead_letter(name: str) -> None:
    # When the shop delivers it, signed
    answer, queued = receive(name)
    expected = PAYLOADS[name][1]
    # Then the receiver answers, and what it queues maps to what the programme expects, without an error
    if expected == "not queued":
        assert queued == [] and answer["status"] == "ignored"
        return
    assert answer == {"status": "queued"}
    (webhook,) = queued
    event = shop_event(webhook)
    if isinstance(expected, str):
        assert isinstance(event, Unused) and event.metric == expected
    else:
        assert isinstance(event, expected)


def test_a_tip_earns_nothing() -> None:
    # Given the same order with and without a 100 kr tip
    plain = mapped("shopify/orders_paid.json")
    tipped = mapped("shopify/orders_paid_with_tip.json")
    # Then the tip is not a line of the order: the merchandise is the same
    assert [(line.product_id, line.amount) for line in tipped.order.lines] == [
        (line.product_id, line.amount) for line in plain.order.lines
    ]
    assert json.loads(raw("shopify/orders_paid_with_tip.json"))["total_tip_received"] == "100.00"


def test_a_refund_that_includes_the_tip_takes_back_the_merchandise(
    ledger: Ledger, applier: ShopEventApplier, clock: FakeClock
) -> None:
    # Given the order with a tip, accrued
    clock.advance(days=14)
    assert deliver(applier, "shopify/orders_paid_with_tip.json") == "order accrued"
    member = ledger.member_for_email("astrid.lindqvist@example.se")
    assert member is not None
    earned = ledger.summary(member).pending
    # When the shop refunds its first line and the tip
    order = json.loads(raw("shopify/orders_paid_with_tip.json"))
    refund = json.loads(raw("shopify/refunds_create_partial.json"))
    first, tip = order["line_items"][0], order["line_items"][-1]
    refund["order_id"] = order["id"]
    refund["refund_line_items"] = [
        {**refund["refund_line_items"][0], "line_item_id": line["id"], "quantity": 1, "line_item": line}
        for line in (first, tip)
    ]
    _, (webhook,) = receive("shopify/refunds_create_partial.json", json.dumps(refund).encode())
    # Then the merchandise's points are taken back, and the tip is no line to refund
    assert applier.deliver(webhook) == "refund applied"
    assert 0 < ledger.summary(member).pending < earned
    assert ledger.check_invariants(member) == []


def test_a_test_order_earns_only_where_test_orders_are_allowed() -> None:
    assert isinstance(mapped("shopify/orders_paid_test_order.json"), Unused)
    assert isinstance(mapped("shopify/orders_paid_test_order.json", test_orders_earn=True), OrderPaidEvent)


@pytest.mark.parametrize(
    "change",
    [{"cancelled_at": "2026-03-14T12:00:00+01:00", "financial_status": "refunded"}, {"financial_status": "voided"}],
)
def test_a_cancelled_or_voided_order_earns_nothing(change: dict[str, str]) -> None:
    body = json.loads(raw("shopify/orders_paid.json"))
    body.update(change)
    event = mapped("shopify/orders_paid.json", json.dumps(body).encode())
    assert isinstance(event, Unused) and event.metric == "WebhookOrderNotEarning"


@pytest.mark.parametrize(
    "name",
    [
        "shopify/orders_paid_test_notification.json",
        "shopify/orders_paid_test_order.json",
        "shopify/customers_create_test_notification.json",
        "shopify/products_create_test_notification.json",
    ],
)
def test_test_deliveries_write_nothing_and_enrol_no_one(
    fakes: Fakes, ledger: Ledger, applier: ShopEventApplier, name: str
) -> None:
    # When Shopify's test notification (in a currency the programme does not know), or a test order, is applied
    outcome = deliver(applier, name)
    # Then it is a test delivery, and nobody was enrolled and no product stored
    assert outcome.startswith("test delivery")
    body = json.loads(raw(name))
    for email in (body.get("email"), (body.get("customer") or {}).get("email")):
        assert email is None or ledger.member_for_email(email) is None
    assert fakes.directory.categories_for(f"shopify:{SHOP_DOMAIN}", [str(body["id"])]) == {}


def test_consent_changed_in_the_shop_reaches_the_member(
    ledger: Ledger, applier: ShopEventApplier, clock: FakeClock
) -> None:
    # Given a customer who became a member with their first order (no consent known yet)
    clock.advance(days=14)  # the order's day
    assert deliver(applier, "shopify/orders_paid.json") == "order accrued"
    member = ledger.member_for_email("astrid.lindqvist@example.se")
    assert member is not None
    assert (ledger.summary(member).profile.email_consent, ledger.summary(member).profile.sms_consent) == (None, None)
    # When they unsubscribe from e-mail and subscribe to SMS in the shop
    assert deliver(applier, "shopify/customers_email_marketing_consent_update.json") == "member profile updated"
    assert deliver(applier, "shopify/customers_marketing_consent_update.json") == "member profile updated"
    # Then the member's consent follows
    profile = ledger.summary(member).profile
    assert (profile.email_consent, profile.sms_consent) == (False, True)


@pytest.mark.parametrize(
    ("name", "topic"),
    [
        ("shopify/customers_create_test_notification.json", "customers/update"),
        ("shopify/products_create_test_notification.json", "products/update"),
    ],
)
def test_the_update_topics_test_notifications_are_test_deliveries_too(name: str, topic: str) -> None:
    queue = Queue()
    body = raw(name)
    headers = {"x-shopify-hmac-sha256": signed(body, SECRETS["shopify"]), "x-shopify-topic": topic}
    headers |= {"x-shopify-shop-domain": SHOP_DOMAIN, "x-shopify-webhook-id": "wh-test"}
    WebhookReceiver(queue, SECRETS.__getitem__, "shopify", "woocommerce").shopify(body, headers)  # type: ignore[arg-type]
    event = shop_event(QueuedWebhook.model_validate_json(queue.messages[0]))
    assert isinstance(event, Unused) and event.metric == "WebhookTestDelivery"


def test_an_unsubscribe_in_the_shop_reaches_a_member_the_shop_customer_was_never_linked_to(
    ledger: Ledger, applier: ShopEventApplier
) -> None:
    # Given a member enrolled from the CRM, whose shop customer id the programme has never seen
    member = ledger.enrol("crm-1", email="astrid.lindqvist@example.se", email_consent=True)
    # When they unsubscribe from e-mail in the shop
    assert deliver(applier, "shopify/customers_email_marketing_consent_update.json") == "member profile updated"
    # Then the member's e-mail consent is off
    assert ledger.summary(member).profile.email_consent is False


def test_a_consent_change_of_an_unknown_customer_enrols_no_one(ledger: Ledger, applier: ShopEventApplier) -> None:
    assert deliver(applier, "shopify/customers_email_marketing_consent_update.json").startswith("customer ignored")
    assert ledger.member_for_email("astrid.lindqvist@example.se") is None


def test_refunds_listed_in_a_woocommerce_order_come_with_it_and_are_never_earned_on() -> None:
    # Given the same completed order, and once with a refund of 12.50 already listed
    whole = mapped("woocommerce/order_completed.json")
    listed = mapped("woocommerce/order_completed_with_refunds.json")
    assert isinstance(whole, OrderPaidEvent) and isinstance(listed, OrderPaidEvent)
    # Then the order is as bought, with the refund named (its lines come from the shop's API), and a delivery
    # after a new refund is a new state of the order
    assert listed.order.lines == whole.order.lines and whole.refunds == ()
    assert listed.refunds == (ListedRefund(refund_id="23858", total=Decimal("12.50")),)
    assert listed.dedup_key.endswith(":order:23818:completed:refunds:23858")
    # And where the lines cannot be read, every line is reduced by the whole refund (at most to nothing), its tax
    # in proportion, so no line counts more than could be left of it, however the refund was shared
    kept = kept_after_refunds(listed.order, Decimal("12.50"))
    for before, after in zip(whole.order.lines, kept.lines, strict=True):
        assert after.amount == max(before.amount - Decimal("12.50"), Decimal(0))
        assert after.tax <= before.tax * after.amount / before.amount
    assert sum(line.amount for line in kept.lines) < sum(line.amount for line in whole.order.lines) - Decimal("12.50")


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("woocommerce/order_completed_legacy_api.json", "legacy API"),
        ("woocommerce/order_completed_wp_api_v1.json", "v1"),
    ],
)
def test_other_woocommerce_api_versions_are_answered_with_the_setting_to_change(name: str, version: str) -> None:
    answer, queued = receive(name)
    assert queued == []
    assert answer["status"] == "ignored" and version in answer["reason"] and UPDATE_SETTING in answer["reason"]


def reading_refunds(fakes: Fakes, ledger: Ledger, refunds: InMemoryShopRefunds) -> ShopEventApplier:
    """The ledger writer's applier with the API keys of the WooCommerce shop (it reads refunds' lines)."""
    return ShopEventApplier(
        ledger, fakes.directory, 30, load_offer_rules(), fakes.offer_queue,
        refunds=refunds, reads_refunds={WOO_SHOP}.__contains__,
    )  # fmt: skip


def accrued(applier: ShopEventApplier, ledger: Ledger, name: str, outcome: str = "order accrued") -> tuple[str, Entry]:
    """The member and the accrual of a WooCommerce order payload delivered once, with its outcome."""
    assert deliver(applier, name) == outcome
    member = ledger.member_for_email("aino.virtanen@example.fi")
    assert member is not None
    [accrual] = [e for e in ledger.entries(member) if e.order_key and e.kind.value == "accrual"]
    assert accrual.lines is not None
    return member, accrual


def test_a_woocommerce_refund_is_reversed_by_the_lines_the_shop_took_back(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    clock.advance(days=15)  # the order's days
    shop = WOO_SHOP
    refunds = InMemoryShopRefunds()
    applier = reading_refunds(fakes, ledger, refunds)
    # Given a completed order: 2 units of line 1543 among others
    name = "woocommerce/order_completed.json"
    order = json.loads(raw(name))
    member, accrual = accrued(applier, ledger, name)
    assert accrual.lines is not None
    before = ledger.summary(member).pending
    # When the shop refunds one unit of line 1543 and the order's update lists the refund
    refunds.refunds[(shop, "23817", "23858")] = {"1543": RefundedLine(1, Decimal("10.19"))}
    order["refunds"] = [{"id": 23858, "reason": "Kahvi loppu", "total": "-10.19"}]
    _, (webhook,) = receive(name, json.dumps(order).encode())
    assert applier.deliver(webhook) == "order redelivered: nothing changed; 1 refund(s) applied"
    # Then that unit's points are taken back, exactly, and the same update again takes nothing more
    left = int((Decimal(accrual.lines["1543"]) / 2).to_integral_value(rounding=ROUND_HALF_UP))  # of 2 units, 1
    unit = accrual.lines["1543"] - left
    assert ledger.summary(member).pending == before - unit
    assert applier.deliver(webhook) == "order redelivered: nothing changed"
    assert ledger.summary(member).pending == before - unit


def test_a_woocommerce_order_refunded_before_it_is_first_seen_earns_on_what_is_kept(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    clock.advance(days=15)  # the order's days
    # Given a shop the programme has API keys for, and one it has not
    shop = WOO_SHOP
    refunds = InMemoryShopRefunds({(shop, "23818", "23858"): {"1543": RefundedLine(2, Decimal("20.37"))}})
    exact = reading_refunds(fakes, ledger, refunds)
    name = "woocommerce/order_completed_with_refunds.json"
    member, accrual = accrued(exact, ledger, name, "order accrued; 1 refund(s) applied")
    assert accrual.lines is not None
    # Then line 1543 keeps nothing: both its units were refunded; the other lines all they earned
    assert ledger.summary(member).pending == accrual.pending - accrual.lines["1543"]
    # And where the lines cannot be read, the order earns only on what is certainly kept
    elsewhere = Fakes()
    other = Ledger(elsewhere.ledger_store, ledger.rules, clock=ledger.clock)
    guessing = ShopEventApplier(other, elsewhere.directory, 30, load_offer_rules(), elsewhere.offer_queue)
    assert deliver(guessing, name) == "order accrued"
    kept = other.summary(str(other.member_for_email("aino.virtanen@example.fi"))).pending
    assert 0 < kept < accrual.pending - accrual.lines["1543"]


def test_amounts_refunded_on_lines_unreadable_refunds_and_held_orders(
    fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    clock.advance(days=15)  # the order's days
    refunds = InMemoryShopRefunds()
    applier = reading_refunds(fakes, ledger, refunds)
    name = "woocommerce/order_completed.json"
    order = json.loads(raw(name))
    member, _ = accrued(applier, ledger, name)
    # When one refund takes back 5.00 of line 1545 without a unit (3 units of 10.54 in all: one unit's worth),
    # and the shop cannot give the other refund the order lists
    refunds.refunds[(WOO_SHOP, "23817", "1")] = {"1545": RefundedLine(0, Decimal("5.00"))}
    refunds.failures = [ShopRefusedError("Invalid ID.")]
    order["refunds"] = [{"id": 2, "total": "-1.00"}, {"id": 1, "total": "-5.00"}]
    _, (webhook,) = receive(name, json.dumps(order).encode())
    assert applier.deliver(webhook) == "order redelivered: nothing changed; 1 refund(s) applied"
    [reversal] = [e for e in ledger.entries(member) if e.kind.value == "reversal"]
    assert reversal.lines is not None and set(reversal.lines) == {"1545"}
    # And a guest's order refunded before anyone claims it: the refund waits for the order
    guest = json.loads(raw(name))
    guest.update(id=99001, customer_id=0, refunds=[{"id": 3, "total": "-10.19"}])
    guest["billing"]["email"] = "guest@example.fi"
    refunds.refunds[(WOO_SHOP, "99001", "3")] = {"1543": RefundedLine(1, Decimal("10.19"))}
    _, (held,) = receive(name, json.dumps(guest).encode())
    assert applier.deliver(held) == "guest order held for claiming"
    assert refunds.calls == 3  # read while the order waits, and kept with it (the ledger keeps early refunds)
