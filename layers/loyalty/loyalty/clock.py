"""The programme's notion of now. Always the real time in AWS; the embedded stack's demo moves it through a
simulated year so that return windows, releases and expiry happen on their simulated dates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime


def _real_time() -> datetime:
    return datetime.now(UTC)


_source: Callable[[], datetime] = _real_time


def now() -> datetime:
    return _source()


def use_clock(source: Callable[[], datetime] | None) -> None:
    """Make ``source`` the programme's clock (None: real time again). Only the embedded stack calls this."""
    global _source
    _source = source or _real_time
