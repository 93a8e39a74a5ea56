"""Each function's settings, read from the environment on first use and checked.

A missing or invalid variable fails at start with a message that names it (never its value). Nothing is read
at import time. Plain classes rather than pydantic models or dataclasses: the webhook receiver reads its
settings here, and it must start fast, without loading pydantic or building classes at import.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from loyalty.errors import SettingsError

_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_FALSE = frozenset({"0", "false", "f", "no", "n", "off"})


def _text(min_length: int = 1, max_length: int | None = None, pattern: str | None = None) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if len(value) < min_length:
            raise ValueError(f"must be at least {min_length} characters")
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        if pattern is not None and not re.match(pattern, value):
            raise ValueError(f"must match {pattern}")
        return value

    return parse


def _optional_text(value: str) -> str | None:
    return value or None


def _integer(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if number < minimum:
            raise ValueError(f"must be at least {minimum}")
        return number

    return parse


def _flag(value: str) -> bool:
    word = value.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("must be true or false")


_REQUIRED = object()


class _Env:
    """A setting: the environment variable it is read from, how to read it, and its default if it has one."""

    def __init__(self, name: str, parse: Callable[[str], Any], default: Any) -> None:
        self.name, self.parse, self.default = name, parse, default


def _env(name: str, parse: Callable[[str], Any], default: Any = _REQUIRED) -> Any:
    return _Env(name, parse, default)


class Settings:
    """Base of every function's settings: each class attribute names its variable and how to read it.

    An instance holds the values read (as instance attributes, which hide the declarations) and is frozen.
    """

    def __init__(self) -> None:
        raise TypeError(f"{type(self).__name__} is read by load_settings")

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is frozen")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(sorted(vars(self)))})"  # names only: values may be secret


class TableSettings(Settings):
    table: str = _env("LOYALTY_TABLE", _text(min_length=3))


class WebhookSettings(Settings):
    queue_url: str = _env("LEDGER_QUEUE_URL", _text())
    shopify_secret_name: str = _env("SHOPIFY_SECRET_NAME", _text())
    woocommerce_secret_name: str = _env("WOOCOMMERCE_SECRET_NAME", _text())
    max_body_bytes: int = _env("MAX_BODY_BYTES", _integer(1), 1_048_576)
    secret_max_age_seconds: int = _env("SECRET_MAX_AGE_SECONDS", _integer(0), 300)


class LedgerWriterSettings(TableSettings):
    idempotency_table: str = _env("LOYALTY_IDEMPOTENCY_TABLE", _text(min_length=3))
    guest_hold_days: int = _env("GUEST_HOLD_DAYS", _integer(0), 30)
    offer_queue_url: str = _env("OFFER_QUEUE_URL", _text())


class MemberApiSettings(TableSettings):
    pass


class CrmSyncSettings(TableSettings):
    salesforce_secret_name: str = _env("SALESFORCE_SECRET_NAME", _text())
    create_contacts: bool = _env("CRM_CREATE_CONTACTS", _flag, False)
    secret_max_age_seconds: int = _env("SECRET_MAX_AGE_SECONDS", _integer(0), 300)


class CrmWebhookSettings(TableSettings):
    idempotency_table: str = _env("LOYALTY_IDEMPOTENCY_TABLE", _text(min_length=3))
    org_id: str = _env("SALESFORCE_ORG_ID", _text(min_length=15, max_length=18))
    callout_secret_name: str = _env("SALESFORCE_CALLOUT_SECRET_NAME", _text())
    offer_queue_url: str = _env("OFFER_QUEUE_URL", _text())
    max_body_bytes: int = _env("MAX_BODY_BYTES", _integer(1), 1_048_576)
    secret_max_age_seconds: int = _env("SECRET_MAX_AGE_SECONDS", _integer(0), 300)


class ScheduledJobsSettings(TableSettings):
    offer_queue_url: str = _env("OFFER_QUEUE_URL", _text())


class OfferSenderSettings(TableSettings):
    email_from: str = _env("EMAIL_FROM_ADDRESS", _text(min_length=3))
    configuration_set: str | None = _env("SES_CONFIGURATION_SET", _optional_text, None)
    sms_sender_id: str = _env("SMS_SENDER_ID", _text(max_length=11))
    unsubscribe_base_url: str = _env("UNSUBSCRIBE_BASE_URL", _text(pattern=r"https?://"))
    unsubscribe_secret_name: str = _env("UNSUBSCRIBE_SECRET_NAME", _text())
    programme_name: str = _env("PROGRAMME_NAME", _text(), "Loyalty Club")
    secret_max_age_seconds: int = _env("SECRET_MAX_AGE_SECONDS", _integer(0), 300)


class UnsubscribeSettings(TableSettings):
    unsubscribe_secret_name: str = _env("UNSUBSCRIBE_SECRET_NAME", _text())
    programme_name: str = _env("PROGRAMME_NAME", _text(), "Loyalty Club")
    secret_max_age_seconds: int = _env("SECRET_MAX_AGE_SECONDS", _integer(0), 300)


S = TypeVar("S", bound=Settings)


@cache
def load_settings(kind: type[S]) -> S:
    """The settings of ``kind`` from the environment, checked once and cached for the container's life."""
    declared: dict[str, _Env] = {}
    for klass in reversed(kind.__mro__):  # a subclass's declaration, or plain value, replaces its base's
        for attribute, value in vars(klass).items():
            if isinstance(value, _Env):
                declared[attribute] = value
            else:
                declared.pop(attribute, None)
    settings = object.__new__(kind)
    problems: list[str] = []
    for attribute, setting in declared.items():
        raw = os.environ.get(setting.name)
        if raw is None:
            if setting.default is _REQUIRED:
                problems.append(f"{setting.name}: required")
            value = setting.default
        else:
            try:
                value = setting.parse(raw)
            except ValueError as error:
                problems.append(f"{setting.name}: {error}")
                continue
        object.__setattr__(settings, attribute, value)
    if problems:
        raise SettingsError(f"invalid or missing environment variables: {'; '.join(problems)}")
    return settings
