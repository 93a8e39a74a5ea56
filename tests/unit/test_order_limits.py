"""Orders beyond sane bounds are held for review, before anyone is enrolled, and listed for the operator;
absurd forms of numbers and dates are refused as malformed."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from infra.held_orders import report
from loyalty.crm.sync import CrmSync
from loyalty.errors import MalformedPayloadError, UnknownCurrencyError
from loyalty.fakes import Fakes
from loyalty.ledger.service import Ledger
from loyalty.offers.rules import load_offer_rules
from loyalty.programme.earning import earn_for_order
from loyalty.shop.applier import ShopEventApplier
from loyalty.shop.events import OrderPaidEvent
from loyalty.shop.webhooks import QueuedWebhook, shop_event
from tests.conftest import FakeClock

EVENTS = Path(__file__).resolve().parents[1] / "events"
SHOPIFY_EMAIL = "astrid.lindqvist@example.se"


@pytest.fixture
def applier(fakes: Fakes, ledger: Ledger, clock: FakeClock) -> ShopEventApplier:
    clock.advance(days=14)  # the day the captured orders were placed
    return ShopEventApplier(ledger, fakes.directory, 30, load_offer_rules(), fakes.offer_queue)


def shopify_order(**changes: object) -> dict:
    body = json.loads((EVENTS / "shopify" / "orders_paid.json").read_text())
    body.update(changes)
    return body


def woocommerce_order(**changes: object) -> dict:
    body = json.loads((EVENTS / "woocommerce" / "order_completed.json").read_text())
    body.update(changes)
    return body


def webhook(platform: str, body: dict, topic: str = "") -> QueuedWebhook:
    return QueuedWebhook(
        platform=platform,  # type: ignore[arg-type]
        topic=topic or ("orders/paid" if platform == "shopify" else "order.updated"),
        shop="fjallvind-outdoor.myshopify.com" if platform == "shopify" else "https://kahvipaahtimo.example.fi",
        webhook_id="wh-1" if platform == "shopify" else None,
        body=json.dumps(body),
    )


def test_the_captured_orders_are_within_the_bounds(applier: ShopEventApplier) -> None:
    assert applier.deliver(webhook("shopify", shopify_order())) == "order accrued"


def absurd_quantity() -> QueuedWebhook:
    body = shopify_order()
    body["line_items"][0]["quantity"] = 10**18
    return webhook("shopify", body)


def test_a_quantity_of_ten_to_the_eighteenth_is_held_and_enrols_no_one(
    fakes: Fakes, ledger: Ledger, applier: ShopEventApplier
) -> None:
    # When a signed order says a line has 10^18 units, and the shop redelivers it
    first = applier.deliver(absurd_quantity())
    again = applier.deliver(absurd_quantity())
    # Then it is held for review, once, and nothing is applied: no member, no points
    assert first == again == "order held for review: a line of 1000000000000000000 units (at most 1000)"
    assert ledger.member_for_email(SHOPIFY_EMAIL) is None
    (held,) = fakes.directory.held_for_review()
    assert held.order.order_id == "5981234567890"
    # And the operator's list shows it, without personal data
    (line,) = report(fakes.directory)
    assert "5981234567890" in line and "10000" in line and "astrid" not in line.lower()


def test_a_woocommerce_total_of_ten_to_the_eighteenth_is_held(fakes: Fakes, applier: ShopEventApplier) -> None:
    body = woocommerce_order()
    body["line_items"][0].update(subtotal="1000000000000000000", total="1000000000000000000")
    outcome = applier.deliver(webhook("woocommerce", body))
    assert outcome.startswith("order held for review: it would earn") and "at most 100000" in outcome
    assert len(fakes.directory.held_for_review()) == 1


@pytest.mark.parametrize(
    ("shift", "reason"), [(timedelta(days=3), "placed in the future"), (-timedelta(days=4000), "days ago")]
)
def test_an_order_placed_in_the_future_or_long_ago_is_held(
    applier: ShopEventApplier, shift: timedelta, reason: str
) -> None:
    placed = applier.ledger.clock() + shift
    body = shopify_order(processed_at=placed.isoformat(), created_at=placed.isoformat())
    assert reason in applier.deliver(webhook("shopify", body))


@pytest.mark.parametrize(
    ("platform", "body"),
    [
        ("woocommerce", woocommerce_order(date_created_gmt=-1)),
        ("shopify", shopify_order(created_at=-1, processed_at=None)),
        ("shopify", {**shopify_order(), "line_items": [{**shopify_order()["line_items"][0], "price": "1_000"}]}),
        ("shopify", {**shopify_order(), "line_items": [{**shopify_order()["line_items"][0], "price": "1e3"}]}),
        ("shopify", shopify_order(id="9" * 101)),
    ],
    ids=["woo-date-as-number", "shopify-date-as-number", "price-1_000", "price-1e3", "id-of-101-digits"],
)
def test_numbers_and_dates_in_absurd_forms_are_malformed(platform: str, body: dict) -> None:
    with pytest.raises(MalformedPayloadError):
        shop_event(webhook(platform, body))


def test_a_held_order_of_a_member_with_a_contact_is_an_open_task_on_the_contact(
    fakes: Fakes, ledger: Ledger, applier: ShopEventApplier, clock: FakeClock
) -> None:
    # Given a customer who is a member with a Contact, and one who is a member without
    assert applier.deliver(webhook("shopify", shopify_order())) == "order accrued"
    member = ledger.member_for_email(SHOPIFY_EMAIL)
    assert member is not None
    contact = fakes.org.add_contact(LastName="Lindqvist", Email=SHOPIFY_EMAIL)
    fakes.directory.link_contact(member, contact)
    stranger = {**shopify_order()["customer"], "id": 7212345670000, "email": "no.contact@example.se"}
    other = shopify_order(id=5981234567899, email="no.contact@example.se", customer=stranger)
    assert applier.deliver(webhook("shopify", other)) == "order accrued"
    sync = CrmSync(ledger, fakes.org, fakes.crm_states, fakes.directory, fakes.offer_records, clock=clock)
    # When both send an order beyond the bounds, and the stream brings the holds to crm_sync (twice: a retry)
    for body in (shopify_order(id=5981234567800), shopify_order(id=5981234567801, customer=stranger)):
        body["line_items"][0]["quantity"] = 5000
        assert applier.deliver(webhook("shopify", body)).startswith("order held for review")
    pending = fakes.directory.review_tasks_pending()
    assert len(pending) == 2
    report = sync.sync(set(), [], pending)
    sync.sync(set(), [], pending)
    # Then the member with a Contact has one open Task naming the order and why; the other none, and nothing waits
    (task,) = fakes.org.tasks()
    assert task["WhoId"] == contact and task["Status"] == "Not Started"
    assert "5981234567800" in task["Subject"] and "5000 units" in task["Description"]
    assert (report.tasks, report.tasks_not_recorded) == (1, 1)
    assert fakes.directory.review_tasks_pending() == []


def test_an_order_in_a_currency_the_programme_has_no_rate_for_fails_before_anyone_is_enrolled(
    ledger: Ledger, applier: ShopEventApplier
) -> None:
    with pytest.raises(UnknownCurrencyError):  # to the dead-letter queue, to be replayed once the rate is added
        applier.deliver(webhook("shopify", shopify_order(currency="USD", presentment_currency="USD")))
    assert ledger.member_for_email(SHOPIFY_EMAIL) is None


def test_a_members_order_earns_by_the_catalogue_and_brings_their_review_forward_once(
    fakes: Fakes, ledger: Ledger, applier: ShopEventApplier, clock: FakeClock
) -> None:
    # Given a customer who is a member, next reviewed in a month, and a catalogue that knows a product as shoes
    assert applier.deliver(webhook("shopify", shopify_order())) == "order accrued"
    member = ledger.member_for_email(SHOPIFY_EMAIL)
    assert member is not None
    fakes.memory.reviews[member] = ledger.rules.local_date(clock.now) + timedelta(days=30)
    fakes.directory.save_product("shopify:fjallvind-outdoor.myshopify.com", "8123456789012", "Boot", ("shoes",),
                                 clock.now)  # fmt: skip
    # When the customer's next order is delivered, and then delivered again
    second = webhook("shopify", shopify_order(id=5981234567811))
    assert applier.deliver(second) == "order accrued"
    tomorrow = ledger.rules.local_date(clock.now) + timedelta(days=1)
    fakes.memory.reviews[member] = tomorrow - timedelta(days=1)  # meanwhile brought forward further
    assert applier.deliver(second) == "order redelivered: nothing changed"
    # Then its shoes earn double, the review was brought forward to tomorrow, and the redelivery moved nothing
    first_entry, second_entry = (e for e in ledger.entries(member) if e.kind == "accrual")
    assert second_entry.categories == ("shoes",) and first_entry.categories == ()
    assert second_entry.pending > first_entry.pending
    assert fakes.memory.reviews[member] == tomorrow - timedelta(days=1)
    assert ledger.check_invariants(member) == []


def test_an_order_beyond_the_bounds_by_its_catalogue_categories_is_held_with_its_member(
    fakes: Fakes, ledger: Ledger, applier: ShopEventApplier
) -> None:
    # Given a customer who is a member, and a product the catalogue knows as shoes (they earn double)
    assert applier.deliver(webhook("shopify", shopify_order())) == "order accrued"
    member = ledger.member_for_email(SHOPIFY_EMAIL)
    fakes.directory.save_product("shopify:fjallvind-outdoor.myshopify.com", "8123456789012", "Boot", ("shoes",),
                                 ledger.clock())  # fmt: skip
    # When they order 700 of it: within the bounds at the base rate, beyond them as shoes
    body = shopify_order(id=5981234567822)
    body["line_items"][0].update(quantity=700, price="1250.00")
    event = shop_event(webhook("shopify", body))
    assert isinstance(event, OrderPaidEvent)
    assert earn_for_order(ledger.rules, event.order, "bronze").points <= ledger.rules.order_limits.max_order_points
    outcome = applier.deliver(webhook("shopify", body))
    # Then it is held for review, by its points, with the member named, and nothing is earned
    assert outcome.startswith("order held for review: it would earn")
    (held,) = fakes.directory.held_for_review()
    assert held.member_id == member and held.order.lines[0].categories == ("shoes",)
    assert len([e for e in ledger.entries(member or "") if e.kind == "accrual"]) == 1
