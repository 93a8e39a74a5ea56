"""`make serve`: the embedded stack in the foreground until Ctrl-C or SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import threading

from infra.local.processes import PortInUseError
from infra.local.stack import DEV_SECRETS, LOCAL_TIME_SCALE, Stack


def main() -> int:
    for name, default in DEV_SECRETS.items():
        if name not in os.environ:
            print(f"{name} not set: using the development default {default!r}")
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stack = Stack(quiet=False, time_scale=LOCAL_TIME_SCALE)
    try:
        stack.start()
    except PortInUseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        routes = "\n".join(f"    {route.route_key}" for route in stack.routes)
        print(
            f"ready: gateway {stack.gateway_url}  dynamodb {stack.dynamodb_url}  moto {stack.moto_url}  "
            f"salesforce {stack.salesforce_url} (org {stack.salesforce.organization_id})\n"
            f"  routes:\n{routes}\n"
            f"  scheduled jobs: POST {stack.gateway_url}/_local/jobs/<job>[?day=YYYY-MM-DD]\n"
            f"  what was sent (e-mail, SMS): make outbox\n  Ctrl-C stops it.",
            flush=True,
        )
        stopped.wait()
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
