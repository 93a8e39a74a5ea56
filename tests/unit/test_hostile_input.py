"""What hostile callers found: each answered with a clear refusal, never an unhandled error."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from loyalty.crm.inbound import CrmInbound
from loyalty.crm.outbound_messages import MAX_NOTIFICATIONS, parse_outbound_message
from loyalty.errors import MalformedPayloadError
from loyalty.fakes import Fakes
from loyalty.ledger.service import Ledger
from loyalty.offers.unsubscribe import unsubscribe_token, valid_unsubscribe
from loyalty.shop.intake import shopify_message, woocommerce_message
from loyalty.wire_json import MAX_DEPTH, load_json
from tests.conftest import FakeClock

EVENTS = Path(__file__).resolve().parents[1] / "events"
ORG = "00D5g000004abcdEAA"
TOKEN = "outbound-token"


def nested(depth: int) -> bytes:
    return b'{"id": 1, "note_attributes": ' + b"[" * depth + b"]" * depth + b"}"


@pytest.mark.parametrize("depth", [MAX_DEPTH, 1_000, 100_000])
def test_a_body_nested_beyond_sanity_is_refused_by_the_receiver(depth: int) -> None:
    # Given a signed body whose objects and arrays nest far deeper than any shop's
    for receive in (
        lambda body: shopify_message("orders/paid", "shop.myshopify.com", "wh-1", body),
        lambda body: woocommerce_message("order.updated", "https://shop.example.com", body),
    ):
        # When the receiver reads it / Then it is refused naming the problem (a 400), not a RecursionError
        with pytest.raises(MalformedPayloadError, match="nested more than"):
            receive(nested(depth))


def test_a_body_as_deep_as_the_limit_is_read() -> None:
    assert load_json(nested(MAX_DEPTH - 2), "body")["id"] == 1


@pytest.mark.parametrize("token", ["é", "\udcff", "", "x" * 10_000, "é" * 32])
def test_an_unsubscribe_token_of_any_text_is_simply_wrong(token: str) -> None:
    assert valid_unsubscribe("secret", "m1", "email", token) is False


def test_the_right_unsubscribe_token_still_works() -> None:
    assert valid_unsubscribe("secret", "m1", "email", unsubscribe_token("secret", "m1", "email"))


def outbound_with(notifications: int) -> bytes:
    body = (EVENTS / "salesforce" / "outbound_contact.xml").read_text()
    first = re.search(r"<Notification>.*?</Notification>", body, re.S)
    assert first is not None
    many = "".join(first.group(0).replace("04l5g00000QmT7bAAF", f"04l5g{n:013d}") for n in range(notifications))
    return re.sub(r"<Notification>.*</Notification>", lambda _: many, body, flags=re.S).encode()


def test_an_outbound_message_holds_at_most_the_hundred_notifications_salesforce_sends() -> None:
    assert len(parse_outbound_message(outbound_with(MAX_NOTIFICATIONS)).notifications) == MAX_NOTIFICATIONS
    with pytest.raises(MalformedPayloadError, match="at most 100"):
        parse_outbound_message(outbound_with(MAX_NOTIFICATIONS + 1))


@pytest.fixture
def inbound(fakes: Fakes, ledger: Ledger, clock: FakeClock) -> CrmInbound:
    return CrmInbound(
        ledger, fakes.directory, fakes.crm_states, fakes.offer_queue, ORG, lambda: "s", lambda: TOKEN, clock=clock
    )


def test_a_change_dated_in_the_future_is_refused_and_later_changes_still_apply(
    ledger: Ledger, inbound: CrmInbound, clock: FakeClock
) -> None:
    member = ledger.enrol("LM-000123", email="anna.lindqvist@example.se")
    clock.advance(minutes=15)  # the captured message's changes were made a quarter of an hour ago
    body = (EVENTS / "salesforce" / "outbound_contact.xml").read_text()
    # Given a message claiming its change was made on 9999-12-31
    forged = body.replace("2026-03-02T09:14:03.000Z", "9999-12-31T23:59:59.000Z").encode()
    # When it arrives / Then it is refused and nothing is applied
    with pytest.raises(MalformedPayloadError, match="LastModifiedDate"):
        inbound.outbound_message(forged, TOKEN)
    assert ledger.summary(member).profile.birthdate is None
    # And a genuine change made now still applies (a few minutes ahead is a clock's difference, allowed)
    soon = (clock.now + timedelta(minutes=4)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    inbound.outbound_message(body.replace("2026-03-02T09:14:03.000Z", soon).encode(), TOKEN)
    assert ledger.summary(member).profile.birthdate is not None
