"""E-mail through Amazon SES v2 (`SendEmail`, simple content). The only module that knows SES's sending API.

One recipient per call, HTML and text bodies in UTF-8, the configuration set (when given) so SES publishes
bounces and complaints for the message, and message tags for those events (`mail.tags`). SES allows tag names
and values of ASCII letters, digits, `_` and `-`, at most 256 characters: values are sanitised (other
characters become `_`, then cut to 256); a name that breaks the rule is a programming error (ValueError).

Errors: throttling, sending quotas and 5xx raise ChannelRetryableError; a refused message or address, an
unverified MAIL FROM domain, a suspended or paused account and a missing configuration set raise
ChannelRejectedError. Messages name the SES error code and request id, never an address.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

from loyalty.errors import ChannelRejectedError, ChannelRetryableError

TAG_MAX = 256
_TAG_NAME = re.compile(r"[A-Za-z0-9_-]{1,256}")
_NOT_TAG_CHARACTER = re.compile(r"[^A-Za-z0-9_-]")

RETRYABLE_CODES = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "Throttling",
        "ThrottlingException",
        "InternalFailure",
        "ServiceUnavailable",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
REJECTED_CODES = frozenset(
    {
        "MessageRejected",
        "MailFromDomainNotVerifiedException",
        "AccountSuspendedException",
        "SendingPausedException",
        "NotFoundException",
        "BadRequestException",
    }
)


def sanitise_tag_value(value: str) -> str:
    """`value` with every character SES refuses in a tag replaced by `_`, cut to 256 characters."""
    return _NOT_TAG_CHARACTER.sub("_", value)[:TAG_MAX]


class SesEmailSender:
    def __init__(self, from_address: str, configuration_set: str | None, client: Any | None = None) -> None:
        self.from_address = from_address
        self.configuration_set = configuration_set
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            self._client = boto3.client("sesv2")
        return self._client

    def send(self, to: str, subject: str, html: str, text: str, tags: Mapping[str, str]) -> str:
        """Send one e-mail to `to`; returns the SES MessageId."""
        request: dict[str, Any] = {
            "FromEmailAddress": self.from_address,
            "Destination": {"ToAddresses": [to]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": subject, "Charset": "UTF-8"},
                    "Body": {
                        "Html": {"Data": html, "Charset": "UTF-8"},
                        "Text": {"Data": text, "Charset": "UTF-8"},
                    },
                }
            },
            "EmailTags": _email_tags(tags),
        }
        if self.configuration_set is not None:
            request["ConfigurationSetName"] = self.configuration_set
        try:
            response = self.client.send_email(**request)
        except ClientError as error:
            raise _channel_error(error) from None
        except (BotocoreConnectionError, HTTPClientError) as error:
            raise ChannelRetryableError(f"SES SendEmail did not answer: {type(error).__name__}") from error
        return str(response["MessageId"])


def _email_tags(tags: Mapping[str, str]) -> list[dict[str, str]]:
    for name in tags:
        if not _TAG_NAME.fullmatch(name):
            raise ValueError(f"SES tag name {name!r}: use 1 to {TAG_MAX} ASCII letters, digits, underscores or dashes")
    return [{"Name": name, "Value": sanitise_tag_value(value)} for name, value in tags.items()]


def _channel_error(error: ClientError) -> ChannelRetryableError | ChannelRejectedError:
    """Our error for an SES error: named by its code and request id only (SES messages may quote the address)."""
    code = str(error.response.get("Error", {}).get("Code", "") or "unknown")
    metadata = error.response.get("ResponseMetadata", {})
    status = int(metadata.get("HTTPStatusCode") or 0)
    where = f"SES SendEmail: {code} (HTTP {status}, request id {metadata.get('RequestId', '?')})"
    if code in RETRYABLE_CODES or status == 429 or status >= 500:
        return ChannelRetryableError(f"{where}; retry later")
    if code in REJECTED_CODES:
        return ChannelRejectedError(f"{where}; the message was refused")
    return ChannelRejectedError(f"{where}; the request was refused")
