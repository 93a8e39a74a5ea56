"""Each function's settings, read from the environment on first use and checked: how they are declared and read,
and the webhook receiver's (the other functions' are in loyalty.wiring.settings, so the receiver's cold start
does not build them).

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


def text(min_length: int = 1, max_length: int | None = None, pattern: str | None = None) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if len(value) < min_length:
            raise ValueError(f"must be at least {min_length} characters")
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"must be at most {max_length} characters")
        if pattern is not None and not re.match(pattern, value):
            raise ValueError(f"must match {pattern}")
        return value

    return parse


def optional_text(value: str) -> str | None:
    return value or None


def whole_number(minimum: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise ValueError("must be a whole number") from None
        if number < minimum:
            raise ValueError(f"must be at least {minimum}")
        return number

    return parse


def flag(value: str) -> bool:
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


def setting(name: str, parse: Callable[[str], Any], default: Any = _REQUIRED) -> Any:
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
    table: str = setting("LOYALTY_TABLE", text(min_length=3))


class WebhookSettings(Settings):
    queue_url: str = setting("LEDGER_QUEUE_URL", text())
    shopify_secret_name: str = setting("SHOPIFY_SECRET_NAME", text())
    woocommerce_secret_name: str = setting("WOOCOMMERCE_SECRET_NAME", text())
    max_body_bytes: int = setting("MAX_BODY_BYTES", whole_number(1), 1_048_576)
    secret_max_age_seconds: int = setting("SECRET_MAX_AGE_SECONDS", whole_number(0), 300)


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
