"""E-mail and SMS in memory: what was sent, and the refusals a test asks for."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from loyalty.errors import ChannelOptedOutError, ChannelRejectedError, ChannelRetryableError
from loyalty.ports.channels import normalise_phone

_ids = itertools.count(1)


@dataclass
class InMemoryEmail:
    sent: list[dict[str, Any]] = field(default_factory=list)
    rejected: set[str] = field(default_factory=set)  # addresses the service refuses
    throttled: int = 0  # the next this many sends fail for now

    def send(self, to: str, subject: str, html: str, text: str, tags: Mapping[str, str]) -> str:
        if self.throttled:
            self.throttled -= 1
            raise ChannelRetryableError("e-mail: throttled; retry later")
        if to.lower() in self.rejected:
            raise ChannelRejectedError("e-mail: the message was refused")
        message_id = f"email-{next(_ids)}"
        self.sent.append(
            {"to": to, "subject": subject, "html": html, "text": text, "tags": dict(tags), "id": message_id}
        )
        return message_id


@dataclass
class InMemorySms:
    sent: list[dict[str, Any]] = field(default_factory=list)
    opted_out: set[str] = field(default_factory=set)  # E.164 numbers on the carrier's opt-out list
    throttled: int = 0

    def send(self, phone: str, text: str, transactional: bool = False) -> str:
        number = normalise_phone(phone)
        if self.throttled:
            self.throttled -= 1
            raise ChannelRetryableError("sms: throttled; retry later")
        if number in self.opted_out:
            raise ChannelOptedOutError("sms: the number opted out of SMS")
        message_id = f"sms-{next(_ids)}"
        self.sent.append({"to": number, "text": text, "transactional": transactional, "id": message_id})
        return message_id

    def is_opted_out(self, phone: str) -> bool:
        return normalise_phone(phone) in self.opted_out
