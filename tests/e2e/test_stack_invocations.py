"""How the embedded stack invokes handlers: as AWS would, one event at a time where Lambda would, in batches
gathered for the event source mappings' windows."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from infra.local.instances import Function
from infra.local.stack import LOCAL_TIME_SCALE, Stack
from tests.e2e.conftest import Shop
from tests.e2e.test_webshop_pipeline import numbers, shopify_order, unique_email


def test_a_function_scales_out_to_instances_that_share_nothing(stack: Stack, shop: Shop) -> None:
    # Powertools keeps a resolver's current request on a class attribute: two requests handled at once in one
    # process would read each other's. Each instance is a process of its own, handling one event at a time.
    function = stack.handlers["MemberApiFunction"]
    assert isinstance(function, Function) and function.concurrency == 2

    def ask(thread: int) -> list[bool]:
        answers = []
        for number in range(10):
            member_id = f"mbr_nobody_{thread}_{number}"
            status, body = shop.get(f"/members/{member_id}")
            answers.append(status == 404 and member_id in json.dumps(body))
        return answers

    # When four callers ask for forty different members at once
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = [answer for thread in pool.map(ask, range(4)) for answer in thread]
    # Then every caller got the answer to its own request, from the function's two instances
    assert answers == [True] * 40
    assert len(function.instances) == 2
    assert len({instance.process.pid for instance in function.instances}) == 2


def test_batching_windows_at_the_templates_values(stack: Stack, shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    # The demo and the other tests run the windows at LOCAL_TIME_SCALE; here they run as in AWS: the ledger
    # queue's 1-second window and the CRM sync's 10-second window.
    invocations: dict[str, list[tuple[float, float, int]]] = {"LedgerWriterFunction": [], "CrmSyncFunction": []}
    for function, calls in invocations.items():
        handler = stack.handlers[function]

        def recorded(event: dict[str, Any], context: Any, handler: Any = handler, calls: Any = calls) -> Any:
            started = time.monotonic()
            try:
                return handler(event, context)
            finally:
                calls.append((started, time.monotonic(), len(event["Records"])))

        monkeypatch.setitem(stack.handlers, function, recorded)
    stack.set_time_scale(1.0)
    try:
        # When five new shoppers' orders arrive within well under a second
        first_sent = time.monotonic()
        for _ in range(5):
            email = unique_email()
            status, _ = shop.shopify("orders/paid", shopify_order(email, customer_id=7_400_000_000_000 + next(numbers)))
            assert status == 200
        stack.wait_idle(timeout=60)
    finally:
        stack.set_time_scale(LOCAL_TIME_SCALE)
    # Then the ledger writer had them in batches gathered for its window (at most one per poller, as each poller
    # waits the window after its first message), not one invocation per message
    writer = invocations["LedgerWriterFunction"]
    assert sum(records for _, _, records in writer) == 5 and len(writer) <= stack.concurrency_of("LedgerWriterFunction")
    assert min(started for started, _, _ in writer) - first_sent >= 0.9
    written = max(ended for _, ended, _ in writer)
    # And the CRM sync had every member's changes in one batch, once its 10-second window had passed
    (crm_started, _, crm_records), *more = invocations["CrmSyncFunction"]
    assert more == [] and crm_records >= 5
    assert 9.0 <= crm_started - written <= 11.0
