"""The offer sender on DynamoDB Local under concurrent deliveries: what only the real conditional writes and
transactions can show. Each offer goes once per channel, and the frequency cap holds across senders."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from pynamodb.exceptions import TransactWriteError

from loyalty.adapters.dynamodb.directory import DynamoDBDirectory
from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.adapters.dynamodb.offer_records import DynamoDBOfferRecords
from loyalty.errors import OfferInFlightError
from loyalty.fakes.channels import InMemoryEmail, InMemorySms
from loyalty.ledger.service import Ledger
from loyalty.offers.requests import OfferRequest
from loyalty.offers.rules import load_offer_rules
from loyalty.offers.sending import OfferSender
from loyalty.programme.rules import ProgramRules
from tests.conftest import FakeClock
from tests.unit.test_offer_sender import request

pytestmark = pytest.mark.dynamodb_local


@pytest.fixture
def sender(local_table: str, rules: ProgramRules) -> OfferSender:
    clock = FakeClock(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))  # 11:00 in Stockholm: no quiet hours
    ledger = Ledger(DynamoDBLedgerStore(), rules, clock=clock)
    ledger.enrol(
        "anna", email="anna@example.se", first_name="Anna", locale="sv_SE", phone="+46701234567",
        email_consent=True, sms_consent=True,
    )  # fmt: skip
    return OfferSender(
        ledger=ledger,
        directory=DynamoDBDirectory(),
        store=DynamoDBOfferRecords(),
        email=InMemoryEmail(),
        sms=InMemorySms(),
        rules=load_offer_rules(),
        links=lambda member, channel: f"https://api.example.com/unsubscribe?m={member}&c={channel}",
    )


def offer(number: int, channels: tuple[str, ...] = ("email",)) -> OfferRequest:
    return request("anna", number, channels=channels)


def delivered(handle: Callable[[], dict[str, str]]) -> dict[str, str] | None:
    """One delivery: its outcome, or None if it failed for the queue to deliver again (another delivery is
    deciding it, or DynamoDB cancelled a transaction that conflicted with another)."""
    try:
        return handle()
    except (OfferInFlightError, TransactWriteError):  # the adapter lets only a conflict through, not a condition
        return None


def until_decided(sender: OfferSender, request: OfferRequest) -> dict[str, str]:
    for _ in range(20):
        outcome = delivered(lambda: sender.handle(request))
        if outcome is not None:
            return outcome
    raise AssertionError(f"{request.request_id} was never decided")


def test_concurrent_deliveries_of_one_request_send_once_on_each_channel(sender: OfferSender) -> None:
    # When eight deliveries of a request on both channels run at once
    ask = offer(1, ("email", "sms"))
    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(lambda _: delivered(lambda: sender.handle(ask)), range(8)))
    # Then those that decided agree, a later delivery finds it decided, and one message went on each channel
    assert all(outcome == {"email": "sent", "sms": "sent"} for outcome in outcomes if outcome is not None)
    assert until_decided(sender, ask) == {"email": "sent", "sms": "sent"}
    assert len(sender.email.sent) == len(sender.sms.sent) == 1  # type: ignore[attr-defined]


def test_concurrent_offers_to_one_member_keep_to_the_cap(sender: OfferSender) -> None:
    # When six different marketing offers reach the same member at once (the cap: 2 e-mails in 7 days)
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda number: delivered(lambda: sender.handle(offer(number))), range(6)))
    # Then, once every request is decided, two were sent and four capped, and no more than two e-mails went
    outcomes = [until_decided(sender, offer(number))["email"] for number in range(6)]
    assert sorted(outcomes) == ["capped"] * 4 + ["sent"] * 2
    assert len(sender.email.sent) == 2  # type: ignore[attr-defined]
