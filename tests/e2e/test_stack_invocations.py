"""How the embedded stack invokes handlers: as AWS would, one event at a time where Lambda would."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from infra.local.stack import Stack


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
