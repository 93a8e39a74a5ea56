"""The offer sender on the ports' fakes: consent at send time with its evidence, the frequency cap, quiet hours held
and released, one message per offer, the member's language, and offers that change earning."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from loyalty.consent import EmailFeedback, apply_email_feedback, opt_out
from loyalty.errors import ChannelRejectedError, ChannelRetryableError, OfferInFlightError
from loyalty.fakes import Fakes
from loyalty.jobs import held_sms
from loyalty.ledger.service import Ledger
from loyalty.offers.programme import programme_request
from loyalty.offers.records import SendRecord, Status
from loyalty.offers.requests import (
    ContactSnapshot,
    CrmConsent,
    Offer,
    OfferKind,
    OfferRequest,
    Trigger,
)
from loyalty.offers.rules import OfferRules, load_offer_rules
from loyalty.offers.sending import OfferSender
from loyalty.offers.unsubscribe import unsubscribe_url, valid_unsubscribe
from loyalty.ports.surveys import NpsAnswer
from loyalty.privacy import Privacy
from loyalty.programme.rules import ProgramRules
from tests.conftest import FakeClock
from tests.orders import simple_order

FROM = "loyalty@example.com"
Outbox = list[dict[str, Any]]  # what a fake channel sent
SECRET = "unsubscribe-key"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))  # 11:00 in Stockholm: no quiet hours


@pytest.fixture
def sender(fakes: Fakes, rules: ProgramRules, clock: FakeClock) -> OfferSender:
    fakes.sms.opted_out.add("+46701234599")  # a number on the carrier's opt-out list
    return OfferSender(
        ledger=Ledger(fakes.ledger_store, rules, clock=clock),
        directory=fakes.directory,
        store=fakes.offer_records,
        email=fakes.email,
        sms=fakes.sms,
        rules=load_offer_rules(),
        links=lambda member, channel: unsubscribe_url("https://api.example.com", SECRET, member, channel),
    )


@pytest.fixture
def emails(fakes: Fakes) -> Outbox:
    return fakes.email.sent


@pytest.fixture
def texts(fakes: Fakes) -> Outbox:
    return fakes.sms.sent


def member(sender: OfferSender, member_id: str = "m1", **profile: Any) -> str:
    defaults = {
        "first_name": "Anna",
        "locale": "sv_SE",
        "email_consent": True,
        "sms_consent": True,
        "phone": "+46701234567",
    }
    sender.ledger.enrol(member_id, email=f"{member_id}@example.se", **{**defaults, **profile})
    return member_id


def request(member_id: str, number: int = 1, **changes: Any) -> OfferRequest:
    fields: dict[str, Any] = {
        "request_id": f"salesforce:req-{number}",
        "member_id": member_id,
        "trigger": Trigger.CRM,
        "template_key": "offer_points_multiplier",
        "requested_at": datetime(2026, 11, 20, 9, tzinfo=UTC),
        "offer": Offer(
            code=f"DOUBLE{number}",
            kind=OfferKind.POINTS_MULTIPLIER,
            multiplier="2",
            valid_from=date(2026, 11, 20),
            valid_until=date(2026, 12, 20),
        ),
        "channels": ("email",),
    }
    return OfferRequest(**{**fields, **changes})


def programme_birthday(member_id: str) -> OfferRequest:
    """The programme's own birthday message (nothing to grant)."""
    return OfferRequest(
        request_id="birthday#m1#2026",
        member_id=member_id,
        trigger=Trigger.BIRTHDAY,
        template_key="birthday",
        requested_at=datetime(2026, 11, 20, 2, tzinfo=UTC),
        channels=("email",),
        details={"points": 200},
    )


def record(sender: OfferSender, member_id: str, dedup: str, channel: str) -> SendRecord:
    found = sender.store.find(member_id, dedup, channel)
    assert found is not None, f"no record of {dedup} on {channel}"
    return found


def test_an_offer_is_sent_once_in_the_members_language(sender: OfferSender, emails: Outbox) -> None:
    # Given a Swedish member who agreed to e-mail
    anna = member(sender)
    # When the CRM's request arrives twice (Flow retried, or the queue redelivered it)
    first = sender.handle(request(anna))
    again = sender.handle(request(anna))
    # Then one e-mail, in Swedish, with the offer and a signed unsubscribe link; the repeat sends nothing
    assert first == {"email": "sent"} and again == {"email": "sent"}
    (sent,) = emails
    assert sent["to"] == "m1@example.se"
    assert "Anna" in sent["html"] and "DOUBLE1" in sent["html"] and "/unsubscribe?m=m1" in sent["html"]
    assert record(sender, anna, "DOUBLE1#2026-11-20#2026-12-20", "email").language == "sv"
    assert record(sender, anna, "DOUBLE1#2026-11-20#2026-12-20", "email").task_state == "pending"  # a Task for the CRM


def test_every_language_is_chosen_by_locale_with_english_as_fallback(sender: OfferSender) -> None:
    expected = {"fi_FI": "fi", "nb_NO": "nb", "da_DK": "da", "de_DE": "en"}
    for number, (locale, language) in enumerate(expected.items()):
        who = member(sender, f"m{number}", locale=locale)
        sender.handle(request(who, number))
        assert record(sender, who, f"DOUBLE{number}#2026-11-20#2026-12-20", "email").language == language


def test_refused_consent_sends_nothing_and_records_why(sender: OfferSender, emails: Outbox, texts: Outbox) -> None:
    # Given a member who opted out of e-mail, and the CRM's flag says no to SMS
    anna = member(sender, email_consent=False)
    ask = request(anna, channels=("email", "sms"), crm_consent=CrmConsent(email=True, sms=False))
    # When the offer is requested
    assert sender.handle(ask) == {"email": "refused", "sms": "refused"}
    # Then nothing is sent, and the record says which flag, its value, when and from where
    assert emails == [] and texts == []
    email = record(sender, anna, "DOUBLE1#2026-11-20#2026-12-20", "email")
    assert email.reason == "no email consent (the member's latest consent says no)"
    evidence = email.evidence or {}
    assert evidence["programme"]["flag"] == "email_consent" and evidence["programme"]["value"] is False
    assert evidence["programme"]["as_of"] and evidence["crm"]["value"] is True
    sms = record(sender, anna, "DOUBLE1#2026-11-20#2026-12-20", "sms")
    assert sms.reason == "no sms consent (the CRM's consent flag says no)"


def test_marketing_needs_a_yes_but_an_expiry_warning_only_no_no(sender: OfferSender) -> None:
    # Given a member who never said yes or no to e-mail
    who = member(sender, email_consent=None)
    assert sender.handle(request(who)) == {"email": "refused"}
    warning = OfferRequest(
        request_id="expiry_warning#m1#2027-03-31",
        member_id=who,
        trigger=Trigger.EXPIRY_WARNING,
        template_key="expiry_warning",
        requested_at=datetime(2026, 11, 20, 9, tzinfo=UTC),
        channels=("email",),
        details={"points": 70, "expires_on": "2027-03-31"},
    )
    assert sender.handle(warning) == {"email": "sent"}


def test_the_frequency_cap_counts_marketing_and_service_apart(
    sender: OfferSender, clock: FakeClock, emails: Outbox
) -> None:
    anna = member(sender)
    # Given two marketing e-mails this week
    assert sender.handle(request(anna, 1)) == {"email": "sent"}
    clock.advance(days=2)
    assert sender.handle(request(anna, 2)) == {"email": "sent"}
    # When a third comes within 7 days, it is capped (recorded, not sent); a service message still goes
    clock.advance(days=2)
    assert sender.handle(request(anna, 3)) == {"email": "capped"}
    assert (
        record(sender, anna, "DOUBLE3#2026-11-20#2026-12-20", "email").reason
        == "marketing cap: 2 email messages in 7 days reached"
    )
    notice = request(
        anna,
        9,
        trigger=Trigger.EXPIRY_WARNING,
        template_key="expiry_warning",
        offer=None,
        request_id="expiry_warning#m1#2027-01-31",
        details={"points": 5, "expires_on": "2027-01-31"},
    )
    assert sender.handle(notice) == {"email": "sent"}
    # And a week after the first, marketing may go again
    clock.advance(days=4)
    assert sender.handle(request(anna, 4)) == {"email": "sent"}
    assert len(emails) == 4


def test_what_the_member_asked_for_is_never_capped(sender: OfferSender, emails: Outbox) -> None:
    anna = member(sender)

    def service(trigger: Trigger, number: int, details: dict[str, Any]) -> OfferRequest:
        key = trigger.value
        return request(
            anna,
            number,
            trigger=trigger,
            template_key=key,
            offer=None,
            request_id=f"{key}#m1#{number}",
            details=details,
        )

    # Given the service cap used up by expiry warnings (4 in 7 days)
    for number in range(1, 6):
        warning = service(Trigger.EXPIRY_WARNING, number, {"points": number, "expires_on": "2027-01-31"})
        assert sender.handle(warning) == {"email": "sent" if number <= 4 else "capped"}
    # When the member redeems rewards and asks for a link to spend points, they get each e-mail all the same
    for number in range(6, 9):
        code = service(
            Trigger.REWARD_REDEEMED,
            number,
            {"reward": "50 off", "code": f"LOY-AAAA-BBB{number}", "expires_on": "2027-01-31"},
        )
        assert sender.handle(code) == {"email": "sent"}
    link = service(Trigger.REDEEM_LINK, 9, {"link": "https://loyalty.example/apps/loyalty?m=m1&n=1", "minutes": 15})
    assert sender.handle(link) == {"email": "sent"}
    assert len(emails) == 4 + 3 + 1


def test_sms_in_quiet_hours_is_held_and_sent_when_they_end(
    sender: OfferSender, clock: FakeClock, texts: Outbox
) -> None:
    # Given 22:30 in Stockholm
    anna = member(sender)
    clock.now = datetime(2026, 11, 20, 21, 30, tzinfo=UTC)
    # When an SMS offer is requested
    assert sender.handle(request(anna, channels=("sms",))) == {"sms": "held"}
    # Then nothing is sent yet: it is held, not dropped, until 08:00 local time
    assert texts == []
    held = record(sender, anna, "DOUBLE1#2026-11-20#2026-12-20", "sms")
    assert held.hold_until == datetime(2026, 11, 21, 7, 0, tzinfo=UTC)
    assert list(sender.store.held_due(clock.now)) == []
    # When the quiet hours are over, the release job finds it and the sender sends it, once
    clock.now = datetime(2026, 11, 21, 7, 15, tzinfo=UTC)
    (due,) = sender.store.held_due(clock.now)
    assert sender.handle(held_sms(due.request)) == {"sms": "sent"}
    assert sender.handle(held_sms(due.request)) == {"sms": "sent"}
    ((phone, text),) = [(sms["to"], sms["text"]) for sms in texts]
    assert phone == "+46701234567" and len(text) <= 160 and "DOUBLE1" in text


def email_fails(sender: OfferSender, monkeypatch: pytest.MonkeyPatch, error: Exception) -> Callable[[], None]:
    """Make sending e-mail raise ``error``; returns what makes it work again."""
    send = sender.email.send

    def fail(*args: Any) -> str:
        raise error

    monkeypatch.setattr(sender.email, "send", fail)
    return lambda: monkeypatch.setattr(sender.email, "send", send)


def test_a_failure_worth_retrying_gives_the_offer_back_for_the_next_delivery(
    sender: OfferSender, monkeypatch: pytest.MonkeyPatch, emails: Outbox
) -> None:
    anna = member(sender)
    # When SES throttles the first delivery, the delivery fails (the queue redelivers it)
    recover = email_fails(sender, monkeypatch, ChannelRetryableError("TooManyRequestsException"))
    with pytest.raises(ChannelRetryableError):
        sender.handle(request(anna, 1))
    # Then the redelivery sends it, once, and the failed try took no cap slot (2 per 7 days)
    recover()
    assert sender.handle(request(anna, 1)) == {"email": "sent"}
    assert sender.handle(request(anna, 2)) == {"email": "sent"}
    assert sender.handle(request(anna, 3)) == {"email": "capped"}
    assert len(emails) == 2


def test_a_number_the_provider_rejects_fails_without_using_the_cap(
    sender: OfferSender, monkeypatch: pytest.MonkeyPatch
) -> None:
    anna = member(sender)
    recover = email_fails(sender, monkeypatch, ChannelRejectedError("MessageRejected"))
    assert sender.handle(request(anna, 1)) == {"email": "failed"}
    assert record(sender, anna, "DOUBLE1#2026-11-20#2026-12-20", "email").reason == "MessageRejected"
    recover()
    assert sender.handle(request(anna, 2)) == {"email": "sent"}
    assert sender.handle(request(anna, 3)) == {"email": "sent"}


def test_a_claim_left_by_a_sender_that_died_is_taken_over_later(
    sender: OfferSender, clock: FakeClock, monkeypatch: pytest.MonkeyPatch, emails: Outbox
) -> None:
    anna = member(sender)
    # Given a sender that died after claiming the offer and counting it against the cap (nothing given back)
    recover = email_fails(sender, monkeypatch, TimeoutError("the function timed out"))
    monkeypatch.setattr(sender.store, "release", lambda record: None)
    monkeypatch.setattr(sender, "_release_cap", lambda *args: None)
    with pytest.raises(TimeoutError):
        sender.handle(request(anna, 1))
    recover()
    # When a redelivery comes at once, it leaves the claim alone (another sender may still be deciding) and fails,
    # so the queue delivers it again later
    with pytest.raises(OfferInFlightError):
        sender.handle(request(anna, 1))
    assert emails == []
    # When it comes again after the queue's visibility timeout, it takes over, sends once, counted once on the cap
    clock.advance(minutes=3)
    assert sender.handle(request(anna, 1)) == {"email": "sent"}
    assert sender.handle(request(anna, 2)) == {"email": "sent"}
    assert sender.handle(request(anna, 3)) == {"email": "capped"}
    assert len(emails) == 2


def test_a_number_on_the_sns_opt_out_list_is_refused_and_the_opt_out_recorded(
    sender: OfferSender, texts: Outbox
) -> None:
    # moto reports numbers ending in 99 as opted out
    anna = member(sender, phone="+46701234599")
    assert sender.handle(request(anna, channels=("sms",))) == {"sms": "refused"}
    assert texts == []
    assert sender.ledger.summary(anna).profile.sms_consent is False


def test_one_birthday_message_a_year_whoever_asks_first(sender: OfferSender, emails: Outbox) -> None:
    anna = member(sender)
    programme = programme_birthday(anna)
    crm = request(anna, template_key="birthday", offer=request(anna).offer.model_copy(update={"code": "BDAY"}))  # type: ignore[union-attr]
    assert sender.handle(programme) == {"email": "sent"}
    assert sender.handle(crm) == {"email": "sent"}  # decided already: no second birthday e-mail
    assert len(emails) == 1


def test_a_granted_multiplier_changes_earning_within_its_validity(sender: OfferSender, clock: FakeClock) -> None:
    # Given a member sent a double-points offer valid 20 November to 20 December
    anna = member(sender)
    sender.handle(request(anna))
    ledger = sender.ledger
    # When they order inside and after the validity
    inside = ledger.accrue(anna, simple_order("in", datetime(2026, 12, 1, 12, tzinfo=UTC)))
    outside = ledger.accrue(anna, simple_order("out", datetime(2026, 12, 21, 12, tzinfo=UTC)))
    # Then only the order inside earns double, and its entry says which offer did it
    assert (inside.entry.pending, outside.entry.pending) == (200, 100)
    assert inside.entry.offers == ("DOUBLE1",) and outside.entry.offers == ()
    assert "offers DOUBLE1" in inside.entry.reason
    assert ledger.check_invariants(anna) == []


def test_a_bonus_offer_pays_once(sender: OfferSender) -> None:
    anna = member(sender)
    bonus = Offer(
        code="B200",
        kind=OfferKind.BONUS_POINTS,
        bonus_points=200,
        valid_from=date(2026, 11, 20),
        valid_until=date(2026, 12, 31),
    )
    sender.handle(request(anna, offer=bonus))
    first = sender.ledger.accrue(anna, simple_order("a", datetime(2026, 11, 25, tzinfo=UTC)))
    second = sender.ledger.accrue(anna, simple_order("b", datetime(2026, 11, 26, tzinfo=UTC)))
    assert (first.entry.pending, second.entry.pending) == (300, 100)


def test_bounces_complaints_and_unsubscribe_links_turn_consent_off(sender: OfferSender, clock: FakeClock) -> None:
    anna, bo = member(sender, "anna"), member(sender, "bo")
    at = clock.now + timedelta(minutes=5)
    notices = [
        EmailFeedback("anna@example.se", "bounce", True, at, "f1", "m1", {}),
        EmailFeedback("bo@example.se", "bounce", False, at, "f2", "m2", {}),  # transient: nothing changes
    ]
    assert apply_email_feedback(sender.ledger.member_for_email, sender.directory, notices) == 1
    assert sender.ledger.summary(anna).profile.email_consent is False
    assert sender.ledger.summary(bo).profile.email_consent is True
    # An unsubscribe link is valid only for its member and channel
    link = unsubscribe_url("https://api.example.com", SECRET, bo, "sms")
    token = link.rsplit("t=", 1)[1]
    assert valid_unsubscribe(SECRET, bo, "sms", token)
    assert not valid_unsubscribe(SECRET, bo, "email", token) and not valid_unsubscribe(SECRET, anna, "sms", token)
    assert opt_out(sender.directory, bo, "sms", at, "unsubscribe link")
    assert sender.ledger.summary(bo).profile.sms_consent is False


def test_erasure_keeps_offer_decisions_and_nps_scores_without_the_persons_data(
    sender: OfferSender, fakes: Fakes
) -> None:
    # Given a member sent an offer whose request carried their contact details, who answered a survey with a comment
    anna = member(sender)
    ask = request(anna).model_copy(
        update={"contact": ContactSnapshot(first_name="Anna", email="anna@example.se", mobile_phone="+46701234567")}
    )
    sender.handle(ask)
    at = datetime(2026, 11, 21, 9, tzinfo=UTC)
    fakes.nps_answers.save(NpsAnswer(anna, "s1", 9, at, "2026-11", None, None, comment="Anna here: great shop"))
    # When the person is erased
    stores = (fakes.nps_answers, fakes.exports, fakes.dead_letters)
    privacy = Privacy(sender.ledger, sender.directory, sender.store, *stores)
    erased = privacy.erase(anna)
    assert (erased.offers, erased.comments) == (1, 1)
    # Then the decision stays, with nothing that identifies the person
    item = record(sender, anna, "DOUBLE1#2026-11-20#2026-12-20", "email")
    assert item.status == "sent" and item.subject is None
    assert "anna@example.se" not in item.request and "+4670" not in item.request and "Anna" not in item.request
    assert sender.ledger.summary(anna).profile.email is None
    # And the answer's score counts still, without its comment
    assert [(a.member_id, a.score, a.comment) for a in fakes.nps_answers.answered_in("2026-11")] == [(anna, 9, None)]


def test_a_repeated_request_still_grants_an_offer_its_first_delivery_did_not(sender: OfferSender) -> None:
    # Given a birthday message sent by the programme (nothing to grant)
    anna = member(sender)
    birthday = programme_birthday(anna)
    assert sender.handle(birthday) == {"email": "sent"}
    # When the CRM's birthday Flow asks too, with a double-points offer
    crm = request(anna, template_key="birthday", offer=request(anna).offer.model_copy(update={"code": "BDAY"}))  # type: ignore[union-attr]
    assert sender.handle(crm) == {"email": "sent"}
    # Then no second message, but the member has the offer
    state = sender.ledger.store.member(anna)
    assert state is not None and [grant.code for grant in state.offers.values()] == ["BDAY"]


def test_a_cap_slot_taken_by_a_concurrent_sender_is_seen_before_anything_is_sent(
    sender: OfferSender, monkeypatch: pytest.MonkeyPatch, emails: Outbox
) -> None:
    anna = member(sender)
    assert sender.handle(request(anna, 1)) == {"email": "sent"}
    # Given another sender that counts its message against the cap between this sender's read and its write
    commit = sender.store.commit

    def concurrent_then_commit(writes: Any, request_id: str) -> bool:
        version, entries = sender.store.cap(anna, "marketing", "email")
        other = "2026-11-20T10:00:01+00:00|DOUBLE9#2026-11-20#2026-12-20#email"
        assert sender.store.save_cap(anna, "marketing", "email", version, [*entries, other])
        monkeypatch.setattr(sender.store, "commit", commit)
        return commit(writes, request_id)

    monkeypatch.setattr(sender.store, "commit", concurrent_then_commit)
    # When this sender's second offer comes, the first write fails: it reads again and finds the cap reached
    assert sender.handle(request(anna, 2)) == {"email": "capped"}
    assert len(emails) == 1


def test_a_delivery_that_loses_the_claim_to_another_sends_nothing(
    sender: OfferSender, monkeypatch: pytest.MonkeyPatch, clock: FakeClock, emails: Outbox
) -> None:
    anna = member(sender)
    ask = request(anna, 1)
    # Given another delivery of the same request that claims it between this delivery's read and its write
    commit = sender.store.commit

    def other_claims_first(writes: Any, request_id: str) -> bool:
        (write,) = writes
        assert commit([write], "other delivery")
        monkeypatch.setattr(sender.store, "commit", commit)
        return commit(writes, request_id)

    monkeypatch.setattr(sender.store, "commit", other_claims_first)
    # When this delivery commits, it finds the claim taken and leaves it to the other (the queue retries it)
    with pytest.raises(OfferInFlightError):
        sender.handle(ask)
    assert emails == []
    assert record(sender, anna, "DOUBLE1#2026-11-20#2026-12-20", "email").status == "sending"


def test_a_retryable_failure_on_e_mail_gives_back_the_sms_claim_of_the_same_request_too(
    sender: OfferSender, monkeypatch: pytest.MonkeyPatch, emails: Outbox, texts: Outbox
) -> None:
    anna = member(sender)
    ask = request(anna, 1, channels=("email", "sms"))
    # When SES throttles the e-mail of a request on both channels, before its SMS went
    recover = email_fails(sender, monkeypatch, ChannelRetryableError("TooManyRequestsException"))
    with pytest.raises(ChannelRetryableError):
        sender.handle(ask)
    assert texts == [] and sender.store.sent(anna) == []  # neither claim is left behind
    # Then the redelivery sends both at once, each counted once on its channel's cap (2 marketing per 7 days)
    recover()
    assert sender.handle(ask) == {"email": "sent", "sms": "sent"}
    assert sender.handle(request(anna, 2, channels=("email", "sms"))) == {"email": "sent", "sms": "sent"}
    assert sender.handle(request(anna, 3, channels=("email", "sms"))) == {"email": "capped", "sms": "capped"}
    assert len(emails) == len(texts) == 2


def test_a_channel_asked_for_twice_is_decided_once(sender: OfferSender, emails: Outbox) -> None:
    anna = member(sender)
    assert sender.handle(request(anna, channels=("email", "email"))) == {"email": "sent"}
    assert len(emails) == 1


def test_a_held_out_member_gets_no_message_and_no_offer_and_is_recorded_so(sender: OfferSender, fakes: Fakes) -> None:
    rules = sender.rules
    candidates = [f"member-{n:03d}" for n in range(60)]
    held = next(m for m in candidates if rules.holdout.holds_out(win_back(rules, m), date(2026, 11, 20)))
    receiver = next(m for m in candidates if not rules.holdout.holds_out(win_back(rules, m), date(2026, 11, 20)))
    for member_id in (held, receiver):
        member(sender, member_id)
    # When each is sent the win-back offer (bonus points with a code), twice
    outcomes = [sender.handle(win_back(rules, member_id)) for member_id in (held, receiver, held)]
    # Then the held-out member is recorded as held out on each channel, sent nothing and granted nothing
    assert outcomes[0] == outcomes[2] == {"email": "holdout", "sms": "holdout"}
    assert outcomes[1] == {"email": "sent", "sms": "sent"}
    assert [message["to"] for message in fakes.email.sent] == [f"{receiver}@example.se"]
    record = sender.store.find(held, win_back(rules, held).dedup_key, "email")
    assert record is not None and record.status is Status.HOLDOUT and "holdout" in (record.reason or "")
    held_state, receiver_state = fakes.ledger_store.member(held), fakes.ledger_store.member(receiver)
    assert held_state is not None and receiver_state is not None
    assert held_state.offers == {} and len(receiver_state.offers) == 1
    # And the holdout takes no slot of the frequency cap: a CRM offer still reaches them
    crm = win_back(rules, held).model_copy(update={"trigger": Trigger.CRM, "request_id": "salesforce:r1"})
    assert sender.handle(crm)["email"] == "sent"


def win_back(rules: OfferRules, member_id: str, at: datetime = datetime(2026, 11, 20, 10, tzinfo=UTC)) -> OfferRequest:
    return programme_request(rules, Trigger.WIN_BACK, member_id, "2026-05-01", at.date(), at, {"reason": "120 days"})


def test_a_holdout_stands_when_the_offer_is_asked_again_in_another_period(sender: OfferSender, fakes: Fakes) -> None:
    # Given a member held out of the win-back offer in the fourth quarter, who would not be in the first
    rules, january = sender.rules, datetime(2027, 1, 4, 10, tzinfo=UTC)
    candidates = [f"member-{n:03d}" for n in range(200)]
    held = next(
        m for m in candidates
        if rules.holdout.holds_out(win_back(rules, m), date(2026, 11, 20))
        and not rules.holdout.holds_out(win_back(rules, m, january), january.date())
    )  # fmt: skip
    member(sender, held)
    assert sender.handle(win_back(rules, held)) == {"email": "holdout", "sms": "holdout"}
    # When the same request is asked again in January (a review rerun after a crash)
    again = sender.handle(win_back(rules, held, january))
    # Then it is still held out: no message, and no points granted without one
    assert again == {"email": "holdout", "sms": "holdout"} and fakes.email.sent == []
    state = fakes.ledger_store.member(held)
    assert state is not None and state.offers == {}
