"""SMS through Amazon SNS (`Publish` to a phone number). The only module that knows SNS's SMS API.

Each message carries the alphanumeric sender id and the SMS type (`Promotional` for offers, `Transactional`
when asked) as `AWS.SNS.SMS.*` message attributes. Phone numbers must be E.164 (`+`, then 8 to 15 digits, the
first not 0); spaces and dashes are dropped first.

Errors: throttling, SNS internal errors, 429 and 5xx raise ChannelRetryableError; an opted-out number raises
ChannelOptedOutError; an invalid parameter and any other client error raise ChannelRejectedError. SNS reports
its errors by short codes on the wire (`Throttled`, `InternalError`, `InvalidParameter`); botocore's exception
names (`ThrottledException`, ...) are accepted too. Messages name the code, never the number.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import boto3
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from loyalty.errors import ChannelOptedOutError, ChannelRejectedError, ChannelRetryableError
from loyalty.ports.channels import normalise_phone

SmsType = Literal["Promotional", "Transactional"]

_SENDER_ID = re.compile(r"(?=.*[A-Za-z])[A-Za-z0-9]{1,11}")

RETRYABLE_CODES = frozenset(
    {
        "Throttled",
        "ThrottledException",
        "Throttling",
        "ThrottlingException",
        "InternalError",
        "InternalErrorException",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
    }
)
OPTED_OUT_CODES = frozenset({"OptedOut", "OptedOutException"})


class SnsSmsSender:
    def __init__(self, sender_id: str, sms_type: SmsType = "Promotional", client: Any | None = None) -> None:
        if not _SENDER_ID.fullmatch(sender_id):
            raise ValueError("SMS sender_id: 1 to 11 ASCII letters and digits, at least one letter (no spaces)")
        if sms_type not in ("Promotional", "Transactional"):
            raise ValueError("SMS sms_type: 'Promotional' or 'Transactional'")
        self.sender_id = sender_id
        self.sms_type: SmsType = sms_type
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("sns")
        return self._client

    def send(self, phone: str, text: str, transactional: bool = False) -> str:
        """Send `text` to `phone` (E.164); returns the SNS MessageId."""
        number = normalise_phone(phone)
        sms_type = "Transactional" if transactional else self.sms_type
        try:
            response = self.client.publish(
                PhoneNumber=number,
                Message=text,
                MessageAttributes={
                    "AWS.SNS.SMS.SenderID": {"DataType": "String", "StringValue": self.sender_id},
                    "AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": sms_type},
                },
            )
        except ClientError as error:
            raise _channel_error("Publish", error) from None
        except (BotocoreConnectionError, HTTPClientError) as error:
            raise ChannelRetryableError(f"SNS Publish did not answer: {type(error).__name__}") from error
        return str(response["MessageId"])

    def is_opted_out(self, phone: str) -> bool:
        """True if SNS will not send SMS to `phone` (E.164) because its owner opted out."""
        number = normalise_phone(phone)
        try:
            response = self.client.check_if_phone_number_is_opted_out(phoneNumber=number)
        except ClientError as error:
            raise _channel_error("CheckIfPhoneNumberIsOptedOut", error) from None
        except (BotocoreConnectionError, HTTPClientError) as error:
            raise ChannelRetryableError(
                f"SNS CheckIfPhoneNumberIsOptedOut did not answer: {type(error).__name__}"
            ) from error
        return bool(response["isOptedOut"])


def _channel_error(operation: str, error: ClientError) -> ChannelRetryableError | ChannelRejectedError:
    """Our error for an SNS error: named by its code and request id only (SNS messages may quote the number)."""
    code = str(error.response.get("Error", {}).get("Code", "") or "unknown")
    metadata = error.response.get("ResponseMetadata", {})
    status = int(metadata.get("HTTPStatusCode") or 0)
    where = f"SNS {operation}: {code} (HTTP {status}, request id {metadata.get('RequestId', '?')})"
    if code in RETRYABLE_CODES or status == 429 or status >= 500:
        return ChannelRetryableError(f"{where}; retry later")
    if code in OPTED_OUT_CODES:
        return ChannelOptedOutError(f"{where}; the number opted out of SMS")
    return ChannelRejectedError(f"{where}; the message was refused")
