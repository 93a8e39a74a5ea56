"""`make serve`: the embedded stack in the foreground until Ctrl-C or SIGTERM.

The stack runs in a process of its own session (infra/local/processes.py): Ctrl-C or SIGTERM to this process, or to
its whole process group, stops it within seconds, however busy, and nothing it started outlives it."""

from __future__ import annotations

import os
import sys
import threading

from infra.local.processes import PortInUseError, interrupt_on_stop_signals, run_in_own_session


def main() -> int:
    from infra.local.stack import DEV_SECRETS, LOCAL_TIME_SCALE, Stack  # in the stack's process only

    interrupt_on_stop_signals()
    for name, default in DEV_SECRETS.items():
        if name not in os.environ:
            print(f"{name} not set: using the development default {default!r}")
    stack = Stack(quiet=False, time_scale=LOCAL_TIME_SCALE)
    try:
        stack.start()  # stops what it started if interrupted
    except PortInUseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    try:
        routes = "\n".join(f"    {route.route_key}" for route in stack.routes)
        print(
            f"ready: gateway {stack.gateway_url}  dynamodb {stack.dynamodb_url}  moto {stack.moto_url}  "
            f"salesforce {stack.salesforce_url} (org {stack.salesforce.organization_id})  "
            f"shopify {stack.shopify.url}  woocommerce {stack.woocommerce.url}\n"
            f"  routes:\n{routes}\n"
            f"  scheduled jobs: POST {stack.gateway_url}/_local/jobs/<job>[?day=YYYY-MM-DD]\n"
            f"  what was sent (e-mail, SMS): make outbox\n  Ctrl-C stops it.",
            flush=True,
        )
        threading.Event().wait()  # until Ctrl-C or SIGTERM
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(run_in_own_session(main))
