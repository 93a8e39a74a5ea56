"""Offer sender benchmark on the official DynamoDB Local: DynamoDB requests per offer request, over a mix of
offers sent by e-mail and SMS, refused for consent, capped, held through quiet hours and redelivered."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta

from loyalty.adapters.dynamodb.directory import DynamoDBDirectory
from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.adapters.dynamodb.offer_records import DynamoDBOfferRecords
from loyalty.fakes.channels import InMemoryEmail, InMemorySms
from loyalty.ledger.service import Ledger
from loyalty.offers.requests import Offer, OfferKind, OfferRequest, Trigger
from loyalty.offers.rules import Holdout, load_offer_rules
from loyalty.offers.sending import OfferSender
from loyalty.programme.rules import ProgramRules
from tests.bench.conftest import Figures
from tests.bench.test_ledger_bench import DynamoDBCalls
from tests.conftest import FakeClock
from tests.unit.test_offer_sender import request

BLOCKS = 20  # of 10 requests each


def _crm_offer(member_id: str, number: int, channels: tuple[str, ...] = ("email",)) -> OfferRequest:
    return request(member_id, number, request_id=f"salesforce:{member_id}-{number}", channels=channels)


def _programme(
    trigger: Trigger, member_id: str, details: dict[str, str | int], offer: Offer | None = None
) -> OfferRequest:
    return OfferRequest(
        request_id=f"{trigger.value}#{member_id}#2026",
        member_id=member_id,
        trigger=trigger,
        template_key=trigger.value,
        requested_at=datetime(2026, 11, 20, 2, tzinfo=UTC),
        offer=offer,
        channels=("email", "sms"),
        details=details,
    )


def _block(number: int) -> list[OfferRequest]:
    """Ten requests to a member who says yes, one who says no to both channels, and one who says yes to SMS only:
    sent by e-mail, by SMS and on both, capped, refused for consent on one channel or both, and redelivered."""
    yes, no, sms = f"yes{number}", f"no{number}", f"sms{number}"
    win_back = Offer(
        code="WELCOMEBACK",
        kind=OfferKind.BONUS_POINTS,
        bonus_points=200,
        valid_from=date(2026, 11, 20),
        valid_until=date(2026, 12, 20),
    )
    birthday = _programme(Trigger.BIRTHDAY, sms, {"points": 200})
    first = _crm_offer(yes, 1)
    return [
        first,  # sent by e-mail (and the multiplier granted)
        _crm_offer(yes, 2),  # sent by e-mail
        _crm_offer(yes, 3),  # capped: 2 marketing e-mails in 7 days
        _programme(Trigger.EXPIRY_WARNING, yes, {"points": 70, "expires_on": "2027-03-31"}),  # e-mail and SMS
        _crm_offer(no, 1),  # refused: no e-mail consent
        _programme(Trigger.WIN_BACK, no, {}, win_back),  # refused on both channels (the bonus granted)
        birthday,  # refused on e-mail, sent by SMS
        first,  # a redelivery: decided already
        birthday,  # a redelivery on both channels
        _crm_offer(sms, 4, ("sms",)),  # sent by SMS
    ]


def test_dynamodb_requests_per_offer_request(local_table: str, rules: ProgramRules, figures: Figures) -> None:
    # Given members who agreed to e-mail and SMS, to neither, and to SMS only, at 11:00 in Stockholm
    clock = FakeClock(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    ledger = Ledger(DynamoDBLedgerStore(), rules, clock=clock)
    sender = OfferSender(
        ledger=ledger,
        directory=DynamoDBDirectory(),
        store=DynamoDBOfferRecords(),
        email=InMemoryEmail(),
        sms=InMemorySms(),
        rules=load_offer_rules().model_copy(update={"holdout": Holdout()}),  # every win-back decided on its channels
        links=lambda member, channel: f"https://api.example.com/unsubscribe?m={member}&c={channel}",
    )
    for number in range(BLOCKS):
        profile = {"first_name": "Anna", "locale": "sv_SE", "phone": "+46701234567"}
        ledger.enrol(f"yes{number}", email=f"yes{number}@example.se", email_consent=True, sms_consent=True, **profile)
        ledger.enrol(f"no{number}", email=f"no{number}@example.se", email_consent=False, sms_consent=False, **profile)
        ledger.enrol(f"sms{number}", email=f"sms{number}@example.se", email_consent=False, sms_consent=True, **profile)
    calls = DynamoDBCalls()
    outcomes: Counter[str] = Counter()
    requests = 0
    # When the mix is sent through the sender
    for number in range(BLOCKS):
        clock.now = datetime(2026, 11, 20, 10, 0, tzinfo=UTC) + timedelta(minutes=number)
        for offer in _block(number):
            for channel, status in sender.handle(offer).items():
                outcomes[f"{channel} {status}"] += 1
            requests += 1
    print(f"\noutcomes of {requests} offer requests: {dict(sorted(outcomes.items()))}")
    print(f"requests: {dict(calls.requests)}")
    # Then the figure: DynamoDB requests (reads, writes, transactions) per offer request
    figures.record(
        "offer_requests_dynamodb_requests_per_offer",
        sum(calls.requests.values()) / requests,
        "<= 3.6 (half the 7.2 of before)",
    )
    assert outcomes == {
        "email sent": 4 * BLOCKS,  # the redelivered one counted again
        "email capped": BLOCKS,
        "email refused": 4 * BLOCKS,
        "sms sent": 4 * BLOCKS,
        "sms refused": BLOCKS,
    }
