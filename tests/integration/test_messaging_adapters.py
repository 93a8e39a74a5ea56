"""E-mail through SES v2 and SMS through SNS, on moto; each service error mapped to a retryable, rejected or
opted-out error of our own, with botocore's Stubber and a client that fails like the service."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import SESBackend, ses_backends
from moto.sns.models import SNSBackend, sns_backends

from loyalty.adapters.ses_email import SesEmailSender
from loyalty.adapters.sns_sms import SnsSmsSender
from loyalty.errors import ChannelOptedOutError, ChannelRejectedError, ChannelRetryableError
from tests.conftest import REGION

SENDER = "klubben@example.com"
MEMBER = "anna.lindqvist@example.se"
PHONE = "+46701234567"


@pytest.fixture
def aws() -> Iterator[None]:
    with mock_aws():
        yield


@pytest.fixture
def ses(aws: None) -> SESBackend:
    """moto's SES backend, which SES v2 shares; the sender is a verified identity."""
    boto3.client("sesv2", region_name=REGION).create_email_identity(EmailIdentity=SENDER)
    return ses_backends[DEFAULT_ACCOUNT_ID][REGION]


@pytest.fixture
def sns(aws: None) -> SNSBackend:
    return sns_backends[DEFAULT_ACCOUNT_ID][REGION]


class FailingClient:
    """A boto3 client stand-in whose every call fails as the service would, with the given code and status."""

    def __init__(self, code: str, status: int, message: str = f"Address {MEMBER} / {PHONE} refused") -> None:
        self.error = ClientError(
            {
                "Error": {"Code": code, "Message": message},
                "ResponseMetadata": {"RequestId": "req-1", "HTTPStatusCode": status},
            },
            "Operation",
        )
        self.calls = 0

    def _fail(self, **_: Any) -> Any:
        self.calls += 1
        raise self.error

    send_email = publish = check_if_phone_number_is_opted_out = _fail


class UnreachableClient:
    def _fail(self, **_: Any) -> Any:
        raise EndpointConnectionError(endpoint_url="https://email.eu-north-1.amazonaws.com")

    send_email = publish = check_if_phone_number_is_opted_out = _fail


# --- SES v2 e-mail --------------------------------------------------------------------------------------------


def test_email_lands_in_moto(ses: SESBackend) -> None:
    # Given a sender for the verified address, its client created lazily
    sender = SesEmailSender(f"Klubben <{SENDER}>", configuration_set="loyalty-mail")
    # When an e-mail is sent to a member
    message_id = sender.send(
        MEMBER,
        subject="Dina poäng väntar",
        html="<p>Hej Anna, du har <b>1 200</b> poäng.</p>",
        text="Hej Anna, du har 1 200 poäng.",
        tags={"campaign": "spring-2026", "member_id": "m-000123"},
    )
    # Then moto holds one message with that id, for that recipient, with the subject and the HTML body
    [sent] = ses.sent_messages
    assert sent.id == message_id
    assert sent.source == f"Klubben <{SENDER}>"
    assert sent.destinations == {"ToAddresses": [MEMBER]}
    assert sent.subject == "Dina poäng väntar"
    assert sent.body == "<p>Hej Anna, du har <b>1 200</b> poäng.</p>"  # moto keeps the HTML part only
    # And the client is created once and reused
    client = sender.client
    sender.send(MEMBER, "Again", "<p>again</p>", "again", {})
    assert sender.client is client
    assert len(ses.sent_messages) == 2


def test_unverified_sender_is_rejected_without_naming_addresses(ses: SESBackend) -> None:
    # Given a sender whose address SES has not verified
    sender = SesEmailSender("news@example.org", configuration_set=None)
    # When it sends / Then SES's MessageRejected becomes ChannelRejectedError naming the code, not the address
    with pytest.raises(ChannelRejectedError, match="MessageRejected") as raised:
        sender.send(MEMBER, "Hello", "<p>Hi</p>", "Hi", {})
    assert "@" not in str(raised.value)
    assert raised.value.__cause__ is None
    assert ses.sent_messages == []


def test_email_request_has_both_bodies_the_configuration_set_and_sanitised_tags() -> None:
    # Given a client that expects exactly this SendEmail request
    client = boto3.client("sesv2", region_name=REGION)
    sender = SesEmailSender(SENDER, configuration_set="loyalty-mail", client=client)
    with Stubber(client) as stub:
        stub.add_response(
            "send_email",
            {"MessageId": "0107019a-000000"},
            {
                "FromEmailAddress": SENDER,
                "Destination": {"ToAddresses": [MEMBER]},
                "Content": {
                    "Simple": {
                        "Subject": {"Data": "Vår rea", "Charset": "UTF-8"},
                        "Body": {
                            "Html": {"Data": "<p>Rea</p>", "Charset": "UTF-8"},
                            "Text": {"Data": "Rea", "Charset": "UTF-8"},
                        },
                    }
                },
                "ConfigurationSetName": "loyalty-mail",
                "EmailTags": [
                    {"Name": "campaign", "Value": "v_r_rea_2026_spring"},
                    {"Name": "member_id", "Value": "m-000123"},
                    {"Name": "long", "Value": "x" * 256},
                ],
            },
        )
        # When an e-mail is sent with tag values SES would refuse
        message_id = sender.send(
            MEMBER,
            "Vår rea",
            "<p>Rea</p>",
            "Rea",
            {"campaign": "vår rea 2026/spring", "member_id": "m-000123", "long": "x" * 300},
        )
        # Then the request is as expected and the MessageId is returned
        stub.assert_no_pending_responses()
    assert message_id == "0107019a-000000"


def test_email_without_configuration_set_leaves_it_out() -> None:
    # Given a sender with no configuration set, and a client that expects a request without one
    client = boto3.client("sesv2", region_name=REGION)
    sender = SesEmailSender(SENDER, configuration_set=None, client=client)
    body = {"Html": {"Data": "<p>h</p>", "Charset": "UTF-8"}, "Text": {"Data": "t", "Charset": "UTF-8"}}
    expected = {
        "FromEmailAddress": SENDER,
        "Destination": {"ToAddresses": [MEMBER]},
        "Content": {"Simple": {"Subject": {"Data": "s", "Charset": "UTF-8"}, "Body": body}},
        "EmailTags": [],
    }
    with Stubber(client) as stub:
        stub.add_response("send_email", {"MessageId": "m-2"}, expected)
        # When it sends / Then the Stubber found exactly those parameters (no ConfigurationSetName)
        assert sender.send(MEMBER, "s", "<p>h</p>", "t", {}) == "m-2"
        stub.assert_no_pending_responses()


def test_invalid_tag_name_is_a_programming_error() -> None:
    # Given a tag name SES refuses / When it is sent / Then ValueError names the rule
    sender = SesEmailSender(SENDER, None, client=FailingClient("Unused", 400))
    with pytest.raises(ValueError, match="letters, digits"):
        sender.send(MEMBER, "s", "<p>h</p>", "t", {"ses:campaign": "spring"})


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("TooManyRequestsException", 429),
        ("LimitExceededException", 400),
        ("Throttling", 400),
        ("InternalFailure", 500),
        ("ServiceUnavailable", 503),
    ],
)
def test_ses_throttling_and_service_errors_are_retryable(code: str, status: int) -> None:
    # Given SES answering with a transient error
    sender = SesEmailSender(SENDER, "loyalty-mail", client=FailingClient(code, status))
    # When an e-mail is sent / Then ChannelRetryableError names the code, not the address
    with pytest.raises(ChannelRetryableError, match=code) as raised:
        sender.send(MEMBER, "s", "<p>h</p>", "t", {})
    assert "@" not in str(raised.value)


@pytest.mark.parametrize(
    "code",
    [
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "AccountSuspendedException",
        "SendingPausedException",
        "NotFoundException",
        "BadRequestException",
    ],
)
def test_ses_refusals_are_rejected(code: str) -> None:
    # Given SES refusing the message for good
    status = 404 if code == "NotFoundException" else 400
    sender = SesEmailSender(SENDER, "loyalty-mail", client=FailingClient(code, status))
    # When an e-mail is sent / Then ChannelRejectedError names the code, not the address
    with pytest.raises(ChannelRejectedError, match=code) as raised:
        sender.send(MEMBER, "s", "<p>h</p>", "t", {})
    assert not isinstance(raised.value, ChannelOptedOutError)
    assert "@" not in str(raised.value)


def test_ses_error_mapping_through_the_stubber() -> None:
    # Given a real client whose service answers TooManyRequests, then MessageRejected
    client = boto3.client("sesv2", region_name=REGION)
    sender = SesEmailSender(SENDER, None, client=client)
    with Stubber(client) as stub:
        stub.add_client_error("send_email", "TooManyRequestsException", "Too many requests", 429)
        stub.add_client_error("send_email", "MessageRejected", f"Email address is not verified: {MEMBER}", 400)
        # When it sends twice / Then the first is retryable, the second rejected
        with pytest.raises(ChannelRetryableError):
            sender.send(MEMBER, "s", "<p>h</p>", "t", {})
        with pytest.raises(ChannelRejectedError) as raised:
            sender.send(MEMBER, "s", "<p>h</p>", "t", {})
    assert MEMBER not in str(raised.value)


def test_ses_unreachable_is_retryable() -> None:
    # Given no connection to SES / When an e-mail is sent / Then it is retried later
    with pytest.raises(ChannelRetryableError, match="EndpointConnectionError"):
        SesEmailSender(SENDER, None, client=UnreachableClient()).send(MEMBER, "s", "<p>h</p>", "t", {})


# --- SNS SMS -------------------------------------------------------------------------------------------------


def test_sms_lands_in_moto(sns: SNSBackend) -> None:
    # Given an SMS sender with an alphanumeric sender id
    sender = SnsSmsSender("Klubben")
    # When an SMS is sent to a number written with spaces and dashes
    message_id = sender.send("+46 70-123 45 67", "Dina 1 200 poäng går ut 31/3.")
    # Then moto holds it, for the E.164 number, with the text
    assert sns.sms_messages == {message_id: (PHONE, "Dina 1 200 poäng går ut 31/3.")}
    # And the client is created once and reused
    client = sender.client
    sender.send(PHONE, "again")
    assert sender.client is client
    assert len(sns.sms_messages) == 2


@pytest.mark.parametrize(
    ("transactional", "sms_type", "expected"),
    [
        (False, "Promotional", "Promotional"),
        (True, "Promotional", "Transactional"),
        (False, "Transactional", "Transactional"),
    ],
)
def test_sms_request_carries_sender_id_and_type(transactional: bool, sms_type: Any, expected: str) -> None:
    # Given a client that expects exactly this Publish request
    client = boto3.client("sns", region_name=REGION)
    sender = SnsSmsSender("Klubben", sms_type=sms_type, client=client)
    with Stubber(client) as stub:
        stub.add_response(
            "publish",
            {"MessageId": "sns-1"},
            {
                "PhoneNumber": PHONE,
                "Message": "Din kod: 4711",
                "MessageAttributes": {
                    "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": "Klubben"},
                    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": expected},
                },
            },
        )
        # When an SMS is sent / Then the request is as expected and the MessageId is returned
        assert sender.send(PHONE, "Din kod: 4711", transactional=transactional) == "sns-1"
        stub.assert_no_pending_responses()


@pytest.mark.parametrize(
    "phone",
    ["0701234567", "46701234567", "+4670", "+46 70 123 45 67 89 01 23", "+46(70)1234567", "+0701234567", "", "+"],
)
def test_bad_phone_is_rejected_without_naming_it(sns: SNSBackend, phone: str) -> None:
    # Given a number that is not E.164 / When an SMS is sent to it
    with pytest.raises(ChannelRejectedError, match=r"E\.164") as raised:
        SnsSmsSender("Klubben").send(phone, "hello")
    # Then nothing was sent, and the error does not quote the number
    assert sns.sms_messages == {}
    assert len(phone) <= 1 or phone not in str(raised.value)


@pytest.mark.parametrize("sender_id", ["", "Klubben12345", "Fjäll", "My Club", "12345", "Klubb-en"])
def test_bad_sender_id_is_refused_at_construction(sender_id: str) -> None:
    # Given a sender id that is not 1-11 letters and digits with at least one letter / When / Then
    with pytest.raises(ValueError, match="1 to 11"):
        SnsSmsSender(sender_id)


@pytest.mark.parametrize("sender_id", ["K", "Klubben", "Club2026", "ABCDEFGHIJK"])
def test_good_sender_ids_are_accepted(sender_id: str) -> None:
    # Given an alphanumeric sender id / When the sender is built / Then it keeps it
    assert SnsSmsSender(sender_id).sender_id == sender_id


def test_bad_sms_type_is_refused() -> None:
    # Given an SMS type SNS does not know / When / Then
    with pytest.raises(ValueError, match="Promotional"):
        SnsSmsSender("Klubben", sms_type="Marketing")  # type: ignore[arg-type]


def test_opt_out_check_on_moto(sns: SNSBackend) -> None:
    # Given moto, which reports numbers ending in 99 as opted out / When they are checked / Then
    sender = SnsSmsSender("Klubben")
    assert sender.is_opted_out(PHONE) is False
    assert sender.is_opted_out("+46 70 123 45 99") is True


def test_opt_out_check_of_a_bad_phone_is_rejected(sns: SNSBackend) -> None:
    with pytest.raises(ChannelRejectedError, match=r"E\.164"):
        SnsSmsSender("Klubben").is_opted_out("070-123 45 67")


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("Throttled", 429),  # SNS's wire code for ThrottledException
        ("ThrottledException", 429),
        ("InternalError", 500),  # SNS's wire code for InternalErrorException
        ("InternalErrorException", 500),
        ("ServiceUnavailable", 503),
    ],
)
def test_sns_throttling_and_service_errors_are_retryable(code: str, status: int) -> None:
    # Given SNS answering with a transient error
    client = FailingClient(code, status)
    sender = SnsSmsSender("Klubben", client=client)
    # When an SMS is sent, or an opt-out checked / Then ChannelRetryableError names the code, not the number
    for call in (lambda: sender.send(PHONE, "hi"), lambda: sender.is_opted_out(PHONE)):
        with pytest.raises(ChannelRetryableError, match=code) as raised:
            call()
        assert PHONE not in str(raised.value)
    assert client.calls == 2


@pytest.mark.parametrize("code", ["OptedOut", "OptedOutException"])
def test_sns_opted_out_is_its_own_rejection(code: str) -> None:
    # Given SNS refusing a number that opted out / When an SMS is sent / Then ChannelOptedOutError
    sender = SnsSmsSender("Klubben", client=FailingClient(code, 400))
    with pytest.raises(ChannelOptedOutError, match=code) as raised:
        sender.send(PHONE, "hi")
    assert isinstance(raised.value, ChannelRejectedError)
    assert PHONE not in str(raised.value)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("InvalidParameter", 400),  # SNS's wire code for InvalidParameterException
        ("InvalidParameterException", 400),
        ("ParameterValueInvalid", 400),
        ("AuthorizationError", 403),
        ("KMSDisabled", 400),
    ],
)
def test_sns_other_client_errors_are_rejected(code: str, status: int) -> None:
    # Given SNS refusing the request / When an SMS is sent / Then ChannelRejectedError (not opted out)
    sender = SnsSmsSender("Klubben", client=FailingClient(code, status))
    with pytest.raises(ChannelRejectedError, match=code) as raised:
        sender.send(PHONE, "hi")
    assert not isinstance(raised.value, ChannelOptedOutError)
    assert PHONE not in str(raised.value)


def test_sns_error_mapping_through_the_stubber() -> None:
    # Given a real client whose service answers Throttled, then InvalidParameter
    client = boto3.client("sns", region_name=REGION)
    sender = SnsSmsSender("Klubben", client=client)
    with Stubber(client) as stub:
        stub.add_client_error("publish", "Throttled", "Rate exceeded", 429)
        stub.add_client_error("publish", "InvalidParameter", f"Invalid parameter: PhoneNumber {PHONE}", 400)
        # When it sends twice / Then the first is retryable, the second rejected
        with pytest.raises(ChannelRetryableError):
            sender.send(PHONE, "hi")
        with pytest.raises(ChannelRejectedError) as raised:
            sender.send(PHONE, "hi")
    assert PHONE not in str(raised.value)


def test_sns_unreachable_is_retryable() -> None:
    # Given no connection to SNS / When an SMS is sent / Then it is retried later
    with pytest.raises(ChannelRetryableError, match="EndpointConnectionError"):
        SnsSmsSender("Klubben", client=UnreachableClient()).send(PHONE, "hi")
