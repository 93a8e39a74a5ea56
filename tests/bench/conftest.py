"""Benchmarks report figures (a printed table and .bench/results.json); they do not pass or fail on time."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parents[2] / ".bench" / "results.json"


class Figures:
    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str]] = []

    def record(self, name: str, value: float, target: str) -> None:
        self.rows.append((name, value, target))


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    collected = Figures()
    yield collected
    if not collected.rows:
        return
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    previous.update({name: value for name, value, _ in collected.rows})
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(previous, indent=2, sort_keys=True) + "\n")
    print(f"\n\n{'figure':<45} {'value':>12}  target")
    for name, value, target in collected.rows:
        print(f"{name:<45} {value:>12.3f}  {target}")
    print(f"\nwritten to {RESULTS}")
