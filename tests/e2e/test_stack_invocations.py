"""How the embedded stack invokes handlers: as AWS would, one event at a time where Lambda would, in batches
gathered for the event source mappings' windows."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from infra.local.stack import LOCAL_TIME_SCALE, Stack
from tests.e2e.conftest import Shop
from tests.e2e.test_webshop_pipeline import numbers, shopify_order, unique_email


def test_functions_behind_the_http_api_take_turns(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Powertools keeps a resolver's current request in class state shared by every resolver in the process,
    # so two HTTP functions running at once in one process would read each other's requests.
    running, most = 0, 0
    guard = threading.Lock()

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        nonlocal running, most
        with guard:
            running += 1
            most = max(most, running)
        time.sleep(0.02)
        with guard:
            running -= 1
        return {"statusCode": 200, "body": ""}

    http_functions = sorted({route.function for route in stack.routes})
    assert {"WebshopWebhookFunction", "CrmWebhookFunction"} <= set(http_functions)
    for function in http_functions:
        monkeypatch.setitem(stack.handlers, function, handler)
    # When every HTTP function is invoked from several threads at once
    threads = [
        threading.Thread(target=lambda f=function: [stack.invoke(f, {}) for _ in range(5)])
        for function in http_functions
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then no two ran at the same time
    assert most == 1


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
        for _ in range(5):
            email = unique_email()
            status, _ = shop.shopify("orders/paid", shopify_order(email, customer_id=7_400_000_000_000 + next(numbers)))
            assert status == 200
        stack.wait_idle(timeout=60)
    finally:
        stack.set_time_scale(LOCAL_TIME_SCALE)
    # Then the ledger writer had them in one batch, its window gathering what came after the first
    assert [records for _, _, records in invocations["LedgerWriterFunction"]] == [5]
    written = invocations["LedgerWriterFunction"][0][1]
    # And the CRM sync had every member's changes in one batch, once its 10-second window had passed
    (crm_started, _, crm_records), *more = invocations["CrmSyncFunction"]
    assert more == [] and crm_records >= 5
    assert 9.0 <= crm_started - written <= 11.0
