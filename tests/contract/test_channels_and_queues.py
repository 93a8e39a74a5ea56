"""The contracts of the e-mail and SMS channels and of the queues, on their fakes and on their AWS adapters (moto)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import boto3
import pytest
from moto import mock_aws

from loyalty.errors import ChannelRejectedError
from loyalty.fakes.channels import InMemoryEmail, InMemorySms
from loyalty.fakes.offers import InMemoryOfferQueue
from loyalty.fakes.queues import InMemoryLedgerQueue
from loyalty.offers.records import OfferQueue
from loyalty.offers.requests import OfferRequest, Trigger
from loyalty.ports.channels import EmailChannel, SmsChannel
from loyalty.ports.queues import LedgerQueue
from tests.conftest import REGION

SENDER = "klubben@example.com"
OPTED_OUT = "+46701234599"  # moto reports numbers ending in 99 as opted out; the fake is told so


@pytest.fixture(params=["memory", "aws"])
def channels(request: pytest.FixtureRequest) -> Iterator[tuple[EmailChannel, SmsChannel]]:
    if request.param == "memory":
        yield InMemoryEmail(), InMemorySms(opted_out={OPTED_OUT})
        return
    from loyalty.adapters.ses_email import SesEmailSender
    from loyalty.adapters.sns_sms import SnsSmsSender

    with mock_aws():
        boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=SENDER)
        yield SesEmailSender(SENDER, configuration_set=None), SnsSmsSender("Klubben")


def test_each_message_gets_its_own_id(channels: tuple[EmailChannel, SmsChannel]) -> None:
    email, sms = channels
    ids = {
        email.send("anna@example.se", "Dina poäng", "<p>Hej</p>", "Hej", {"template": "birthday"}),
        email.send("bo@example.se", "Dina poäng", "<p>Hej</p>", "Hej", {}),
        sms.send("+46 70 123 45 67", "Hej Anna!"),
        sms.send("+46-70-123-45-68", "Hej Bo!", transactional=True),
    }
    assert len(ids) == 4 and all(ids)


@pytest.mark.parametrize("phone", ["070-123 45 67", "+0701234567", "+46 70", "tel:+46701234567x"])
def test_a_number_that_is_not_e164_is_refused_without_naming_it(
    channels: tuple[EmailChannel, SmsChannel], phone: str
) -> None:
    _, sms = channels
    for call in (lambda: sms.send(phone, "Hej"), lambda: sms.is_opted_out(phone)):
        with pytest.raises(ChannelRejectedError) as refused:
            call()
        assert phone not in str(refused.value)


def test_the_carriers_opt_out_list_is_read(channels: tuple[EmailChannel, SmsChannel]) -> None:
    _, sms = channels
    assert sms.is_opted_out("+46 70 123 45 99") is True
    assert sms.is_opted_out("+46701234567") is False


@dataclass
class Queues:
    ledger: LedgerQueue
    offers: OfferQueue
    ledger_received: Callable[[], list[str]]
    offers_received: Callable[[], list[str]]


@pytest.fixture(params=["memory", "aws"])
def queues(request: pytest.FixtureRequest) -> Iterator[Queues]:
    if request.param == "memory":
        ledger, offers = InMemoryLedgerQueue(), InMemoryOfferQueue()
        yield Queues(ledger, offers, lambda: ledger.messages, lambda: [r.model_dump_json() for r in offers.requests])
        return
    from loyalty.adapters.sqs import SqsLedgerQueue
    from loyalty.adapters.sqs_offers import SqsOfferQueue

    with mock_aws():
        sqs = boto3.client("sqs", region_name=REGION)
        urls = [sqs.create_queue(QueueName=name)["QueueUrl"] for name in ("ledger", "offers")]

        def received(url: str) -> Callable[[], list[str]]:
            def drain() -> list[str]:
                bodies: list[str] = []
                while batch := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
                    bodies += [message["Body"] for message in batch]
                return bodies

            return drain

        yield Queues(SqsLedgerQueue(urls[0]), SqsOfferQueue(urls[1]), received(urls[0]), received(urls[1]))


def test_a_ledger_message_arrives_as_sent(queues: Queues) -> None:
    message = '{"platform": "shopify", "body": "{\\"id\\": 1, \\"name\\": \\"Åsa\\"}"}'
    queues.ledger.send(message)
    assert queues.ledger_received() == [message]


def test_offer_requests_arrive_whole_however_many_are_sent(queues: Queues) -> None:
    requests = [
        OfferRequest(
            request_id=f"expiry_warning#m{number}#2026-12-31",
            member_id=f"m{number}",
            trigger=Trigger.EXPIRY_WARNING,
            template_key="expiry_warning",
            requested_at=datetime(2026, 12, 1, tzinfo=UTC),
            details={"points": number},
        )
        for number in range(23)
    ]
    queues.offers.send(requests)
    received = sorted(queues.offers_received(), key=lambda body: OfferRequest.model_validate_json(body).member_id)
    expected = sorted(requests, key=lambda request: request.member_id)
    assert [OfferRequest.model_validate_json(body) for body in received] == expected
