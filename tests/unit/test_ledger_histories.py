"""A thousand random ledger histories on the in-memory store, every invariant checked after every step.

The in-memory store passes the same contract tests as the DynamoDB store (tests/contract/test_ledger_store.py);
tests/integration/test_ledger_histories.py runs the same histories on the official DynamoDB Local."""

from __future__ import annotations

import os

from loyalty.fakes import Fakes
from loyalty.programme.rules import ProgramRules
from tests.ledger_histories import Backend, run_histories

EXAMPLES = int(os.environ.get("LOYALTY_HYPOTHESIS_EXAMPLES_MEMORY", "1000"))


def in_memory() -> Backend:
    fakes = Fakes()
    return fakes.ledger_store, fakes.job_runs, lambda: None


def test_random_histories_keep_every_invariant_in_memory(rules: ProgramRules) -> None:
    # Given / When hypothesis drives random histories / Then every invariant holds after every step
    run_histories(rules, in_memory, EXAMPLES)
