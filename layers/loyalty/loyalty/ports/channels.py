"""E-mail and SMS: how a message reaches a member.

Implemented by loyalty.adapters.ses_email, loyalty.adapters.sns_sms and loyalty.fakes.channels. Errors:
ChannelRetryableError (try again later), ChannelRejectedError (refused for good), ChannelOptedOutError (SMS: the
number opted out).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Protocol

from loyalty.errors import ChannelRejectedError

_E164 = re.compile(r"\+[1-9][0-9]{7,14}")
_SEPARATORS = re.compile(r"[ \-]")


def normalise_phone(phone: str) -> str:
    """``phone`` in E.164 without spaces or dashes, as every SMS channel takes it; ChannelRejectedError (not naming
    the number) if it is not E.164."""
    number = _SEPARATORS.sub("", phone.strip())
    if not _E164.fullmatch(number):
        raise ChannelRejectedError("phone number is not E.164: '+' then 8 to 15 digits, the first not 0")
    return number


class EmailChannel(Protocol):
    def send(self, to: str, subject: str, html: str, text: str, tags: Mapping[str, str]) -> str:
        """Send one e-mail; returns the message id."""
        ...


class SmsChannel(Protocol):
    def send(self, phone: str, text: str, transactional: bool = False) -> str:
        """Send one SMS to an E.164 number (spaces and dashes allowed); returns the message id."""
        ...

    def is_opted_out(self, phone: str) -> bool:
        """True if the number's owner opted out of SMS at the carrier."""
        ...
