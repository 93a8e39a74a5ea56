"""`make serve`: the embedded stack in the foreground until Ctrl-C or SIGTERM.

The stack runs in a process of its own session (infra/local/processes.py): Ctrl-C or SIGTERM to this process, or to
its whole process group, stops it within seconds, however busy, and nothing it started outlives it."""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING

from infra.local.processes import PortInUseError, interrupt_on_stop_signals, run_in_own_session

if TYPE_CHECKING:
    from infra.local.stack import Stack

DEMO_EMAIL = "member@example.com"
DEMO_POINTS = 1000


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
        page = demo_member(stack)
        routes = "\n".join(f"    {route.route_key}" for route in stack.routes)
        print(
            f"ready: gateway {stack.gateway_url}  dynamodb {stack.dynamodb_url}  moto {stack.moto_url}  "
            f"salesforce {stack.salesforce_url} (org {stack.salesforce.organization_id})  "
            f"shopify {stack.shopify.url}  woocommerce {stack.woocommerce.url}\n"
            f"  routes:\n{routes}\n"
            f"  scheduled jobs: POST {stack.gateway_url}/_local/jobs/<job>[?day=YYYY-MM-DD]\n"
            f"  what was sent (e-mail, SMS): make outbox\n"
            f"  the monthly report: make report; the figures audited against the ledger: "
            f"LOYALTY_TABLE={stack.names['LoyaltyTable']} AWS_ENDPOINT_URL_DYNAMODB={stack.dynamodb_url} "
            f"python -m infra.kpis_rebuild\n"
            f"  a member's own page (log in to the emulated shop as {DEMO_EMAIL}, {DEMO_POINTS} points): {page}\n"
            f"  Ctrl-C stops it.",
            flush=True,
        )
        threading.Event().wait()  # until Ctrl-C or SIGTERM
    except KeyboardInterrupt:
        pass
    finally:
        print("stopping...", flush=True)
        stack.stop()
    return 0


def demo_member(stack: Stack) -> str:
    """A member to try the page with: a customer of the demo shop, enrolled as the shop tells the programme, given
    points by a goodwill adjustment; where to click (the storefront's login, then its App Proxy to the page)."""
    from datetime import UTC, datetime

    from infra.local.shop_emulator import ShopifyStore, customer_payload
    from infra.local.simulation import Enrol
    from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
    from loyalty.adapters.dynamodb.models import bind_table
    from loyalty.ledger.service import Ledger
    from loyalty.programme.rules import load_program

    store = ShopifyStore(stack.gateway_url, stack.secrets["SHOPIFY_WEBHOOK_SECRET"])
    customer = customer_payload(Enrol(at=datetime.now(UTC), member_id="serve-1", email=DEMO_EMAIL))
    store.send("customers/create", customer)
    stack.wait_idle()
    bind_table(stack.names["LoyaltyTable"])
    ledger = Ledger(DynamoDBLedgerStore(), load_program())
    member_id = ledger.member_for_email(DEMO_EMAIL)
    assert member_id is not None, "the demo customer was not enrolled"
    ledger.adjust(member_id, DEMO_POINTS, "make-serve", "Points to try the page with", "serve-welcome")
    stack.wait_idle()
    return stack.storefronts[store.domain].login_url(int(str(customer["id"])))


if __name__ == "__main__":
    sys.exit(run_in_own_session(main))
