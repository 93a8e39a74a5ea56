"""The in-memory stand-in for the loyalty table: what every fake reads and writes, under one lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from loyalty.ledger.model import Entry
from loyalty.ledger.state import MemberState, OrderState


@dataclass
class Memory:
    members: dict[str, MemberState] = field(default_factory=dict)
    entries: dict[str, dict[str, Entry]] = field(default_factory=dict)  # member id -> source key -> entry
    orders: dict[str, OrderState] = field(default_factory=dict)  # order key -> state
    emails: dict[str, str] = field(default_factory=dict)  # normalised e-mail -> member id
    reviews: dict[str, date] = field(default_factory=dict)  # member id -> next review
    birthdays: dict[str, tuple[date, date]] = field(default_factory=dict)  # member id -> (birthdate, entered on)
    other: dict[str, dict[Any, Any]] = field(default_factory=dict)  # each fake's own items, by fake
    _lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @contextmanager
    def atomically(self) -> Iterator[None]:
        with self._lock:
            yield

    def items(self, kind: str) -> dict[Any, Any]:
        """A fake's own items (customers, products, job runs, offer records ...), kept apart by kind."""
        return self.other.setdefault(kind, {})
