"""SES feedback through SNS: bounces and complaints in both of SES's formats, one per recipient; the rest ignored."""

import copy
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parser.models import SnsModel

from loyalty.errors import MalformedPayloadError
from loyalty.offers.ses_feedback import EmailFeedback, parse_ses_notification

EVENTS = Path(__file__).resolve().parents[1] / "events" / "ses"


def text(name: str) -> str:
    return (EVENTS / name).read_text(encoding="utf-8")


def payload(name: str) -> Any:
    return json.loads(text(name))


def test_permanent_bounce_from_event_publishing() -> None:
    # Given a configuration-set Bounce event for one recipient, written in mixed case
    message = text("event_bounce_permanent.json")
    # When it is parsed
    feedback = parse_ses_notification(message)
    # Then it is one permanent bounce for the lower-cased address, with SES's ids, time and tags
    assert feedback == [
        EmailFeedback(
            email="anna.lindqvist@example.se",
            kind="bounce",
            permanent=True,
            at=datetime(2026, 3, 2, 9, 14, 5, 123000, tzinfo=UTC),
            feedback_id="0107019a3b8e2c1d-4f2a9c7e-8d1b-4e6f-a3c5-2b9d7e1f4a6c-000000:anna.lindqvist@example.se",
            message_id="0107019a3b8e1a2b-7c3d5e9f-1a2b-4c6d-8e0f-9a1b3c5d7e9f-000000",
            tags={
                "ses:configuration-set": "loyalty-mail",
                "ses:source-ip": "192.0.2.10",
                "ses:from-domain": "example.com",
                "ses:caller-identity": "loyalty-offer-sender",
                "ses:outgoing-ip": "198.51.100.24",
                "campaign": "spring-2026",
                "member_id": "m-000123",
            },
        )
    ]
    assert feedback[0].at.utcoffset() is not None


def test_complaint_from_event_publishing_is_permanent() -> None:
    # Given a configuration-set Complaint event
    message = text("event_complaint.json")
    # When it is parsed
    [feedback] = parse_ses_notification(message)
    # Then it is a complaint, always permanent, timed by the complaint (not the mail)
    assert feedback.kind == "complaint"
    assert feedback.permanent is True
    assert feedback.email == "erik.svensson@example.com"
    assert feedback.at == datetime(2026, 3, 3, 18, 2, 41, tzinfo=UTC)
    assert (
        feedback.feedback_id == "0107019a4c2d3e4f-5a6b7c8d-9e0f-4a1b-8c2d-3e4f5a6b7c8d-000000:erik.svensson@example.com"
    )
    assert feedback.message_id == "0107019a4b9f8e7d-6c5b4a39-2817-4f6e-9d5c-4b3a29180f7e-000000"
    assert feedback.tags["campaign"] == "double-points-weekend"
    assert feedback.tags["member_id"] == "m-000456"


def test_transient_bounce_from_identity_notification_has_no_tags() -> None:
    # Given a classic identity notification about a mailbox that is full
    message = text("notification_bounce_transient.json")
    # When it is parsed
    [feedback] = parse_ses_notification(message)
    # Then it is a transient bounce, without tags (that format has none)
    assert feedback == EmailFeedback(
        email="johan.berg@example.se",
        kind="bounce",
        permanent=False,
        at=datetime(2026, 3, 4, 12, 45, 30, 789000, tzinfo=UTC),
        feedback_id="0107019a5d6e7f80-91a2b3c4-d5e6-4f70-8192-a3b4c5d6e7f8-000000:johan.berg@example.se",
        message_id="0107019a5d6e1122-33445566-7788-499a-abbc-cddeeff00112-000000",
        tags={},
    )


def test_message_of_a_lambda_sns_record_is_parsed() -> None:
    # Given a whole Lambda SNS event, as Powertools' parser reads it
    event = SnsModel.model_validate(payload("sns_record_bounce.json"))
    # When the record's Sns.Message is parsed
    feedback = [item for record in event.Records for item in parse_ses_notification(str(record.Sns.Message))]
    # Then it is the same bounce as the payload file it carries
    assert feedback == parse_ses_notification(text("event_bounce_permanent.json"))
    assert [item.kind for item in feedback] == ["bounce"]


def test_delivery_gives_no_feedback() -> None:
    # Given a Delivery event / When it is parsed / Then there is nothing to record
    assert parse_ses_notification(text("event_delivery.json")) == []


@pytest.mark.parametrize(
    "body",
    [
        {"eventType": "Send", "mail": {"messageId": "m-1"}, "send": {}},
        {"eventType": "Open", "mail": {"messageId": "m-1"}, "open": {"timestamp": "2026-03-02T10:00:00Z"}},
        {"eventType": "Reject", "mail": {"messageId": "m-1"}, "reject": {"reason": "Bad content"}},
        {"notificationType": "Delivery", "mail": {"messageId": "m-1"}, "delivery": {}},
        {"notificationType": "AmazonSnsSubscriptionSucceeded", "message": "You have successfully subscribed"},
    ],
)
def test_other_event_types_give_no_feedback(body: dict[str, Any]) -> None:
    # Given an event that is neither a bounce nor a complaint / When it is parsed / Then it gives nothing
    assert parse_ses_notification(json.dumps(body)) == []


@pytest.mark.parametrize("name", ["event_bounce_permanent.json", "notification_bounce_transient.json"])
def test_two_recipients_give_two_feedbacks_with_distinct_ids(name: str) -> None:
    # Given one bounce notice about two recipients
    body = payload(name)
    body["bounce"]["bouncedRecipients"].append({"emailAddress": "Second.Person@example.com", "status": "5.1.1"})
    # When it is parsed
    feedback = parse_ses_notification(json.dumps(body))
    # Then each recipient gets its own feedback, with its own id, about the same message
    assert [item.email for item in feedback][1] == "second.person@example.com"
    assert len(feedback) == 2
    assert feedback[0].feedback_id != feedback[1].feedback_id
    assert {item.message_id for item in feedback} == {body["mail"]["messageId"]}


def test_complaint_time_falls_back_to_the_mail() -> None:
    # Given a complaint without its own timestamp
    body = payload("event_complaint.json")
    del body["complaint"]["timestamp"]
    # When it is parsed / Then it is timed by the mail
    [feedback] = parse_ses_notification(json.dumps(body))
    assert feedback.at == datetime(2026, 3, 3, 7, 30, 12, 345000, tzinfo=UTC)


@pytest.mark.parametrize("message", ["", "not json", "<xml/>", "[1, 2]", '"Bounce"', "{}", '{"eventType": 1}'])
def test_garbage_is_malformed(message: str) -> None:
    # Given something that is not an SES notification / When it is parsed / Then it is refused
    with pytest.raises(MalformedPayloadError, match="SES notification"):
        parse_ses_notification(message)


def _without(body: dict[str, Any], path: str) -> dict[str, Any]:
    body = copy.deepcopy(body)
    *parents, last = path.split(".")
    node: Any = body
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    del node[int(last) if last.isdigit() else last]
    return body


@pytest.mark.parametrize(
    ("name", "path", "named"),
    [
        ("event_bounce_permanent.json", "bounce", "bounce"),
        ("event_bounce_permanent.json", "mail", "mail"),
        ("event_bounce_permanent.json", "mail.messageId", "mail.messageId"),
        ("event_bounce_permanent.json", "bounce.bounceType", "bounce.bounceType"),
        ("event_bounce_permanent.json", "bounce.feedbackId", "bounce.feedbackId"),
        ("event_bounce_permanent.json", "bounce.bouncedRecipients", "bounce.bouncedRecipients"),
        ("event_bounce_permanent.json", "bounce.bouncedRecipients.0.emailAddress", "bouncedRecipients[0].emailAddress"),
        ("event_complaint.json", "complaint.complainedRecipients", "complaint.complainedRecipients"),
        ("event_complaint.json", "complaint.feedbackId", "complaint.feedbackId"),
        ("notification_bounce_transient.json", "bounce.bounceType", "bounce.bounceType"),
    ],
)
def test_missing_field_is_named_without_the_address(name: str, path: str, named: str) -> None:
    # Given a bounce or complaint lacking a required field
    body = _without(payload(name), path)
    # When it is parsed
    with pytest.raises(MalformedPayloadError) as raised:
        parse_ses_notification(json.dumps(body))
    # Then the error names the field and none of the addresses in the notice
    message = str(raised.value)
    assert named in message
    assert "@" not in message


def test_no_recipients_and_no_time_are_malformed_without_the_address() -> None:
    # Given a bounce listing nobody, and one with neither its own nor the mail's timestamp
    nobody = payload("event_bounce_permanent.json")
    nobody["bounce"]["bouncedRecipients"] = []
    timeless = _without(_without(payload("event_bounce_permanent.json"), "bounce.timestamp"), "mail.timestamp")
    # When they are parsed / Then each is refused, naming the field and not the address
    for body, named in [(nobody, "bounce.bouncedRecipients"), (timeless, "bounce.timestamp")]:
        with pytest.raises(MalformedPayloadError, match=named) as raised:
            parse_ses_notification(json.dumps(body))
        assert "@" not in str(raised.value)


@pytest.mark.parametrize("bad", ["", "   ", 42, None])
def test_bad_recipient_address_is_malformed_without_the_value(bad: Any) -> None:
    # Given a bounce whose recipient address is empty or not a string
    body = payload("event_bounce_permanent.json")
    body["bounce"]["bouncedRecipients"][0]["emailAddress"] = bad
    # When it is parsed / Then it is refused, naming the field path
    with pytest.raises(MalformedPayloadError, match=r"bouncedRecipients\[0\]\.emailAddress"):
        parse_ses_notification(json.dumps(body))


def test_naive_timestamp_is_malformed() -> None:
    # Given a bounce whose timestamp has no time zone
    body = payload("event_bounce_permanent.json")
    body["bounce"]["timestamp"] = "2026-03-02T09:14:05"
    # When it is parsed / Then it is refused, naming the field
    with pytest.raises(MalformedPayloadError, match=r"bounce\.timestamp"):
        parse_ses_notification(json.dumps(body))
