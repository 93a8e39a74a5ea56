"""`make demo`: a year of a small shop through the embedded stack, as signed Shopify webhooks over HTTP.

The catalogue, customers, orders, partial refunds, refunds that overtake their orders and redeliveries go
to the webhook gateway; the real handlers queue them and apply them to the ledger on DynamoDB Local. The
programme's clock follows the simulated year (the shop's events are applied week by week), and each
simulated day ends with the jobs that release pending points and expire due lots. The emulated org knows a
quarter of the customers as Contacts. Then a summary: members by tier, points outstanding and pending,
entries written, the ledger invariants checked for every member, and a few Contacts as a CRM user sees them.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import boto3
from tqdm import tqdm

from infra.local.dynamodb_local import free_port
from infra.local.shop_emulator import ShopifyStore, customer_payload, order_payload, product_payload, refund_payload
from infra.local.simulation import PRODUCTS, DayEnds, Enrol, OrderPaid, Redeem, Refund, in_time_order, simulate_year
from infra.local.stack import Ports, Stack
from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.adapters.dynamodb_models import bind_table
from loyalty.clock import use_clock
from loyalty.errors import InsufficientPointsError
from loyalty.program import load_program


class SimulatedClock:
    """The programme's clock during the demo: set to each happening's time, a microsecond apart."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def set(self, moment: datetime) -> None:
        self.now = max(self.now, moment)

    def __call__(self) -> datetime:
        self.now += timedelta(microseconds=1)
        return self.now


class Demo:
    def __init__(self, stack: Stack, clock: SimulatedClock) -> None:
        self.stack = stack
        self.clock = clock
        self.store = ShopifyStore(stack.gateway_url, stack.secrets["SHOPIFY_WEBHOOK_SECRET"])
        bind_table(stack.names["LoyaltyTable"])
        self.ledger = Ledger(load_program(), clock=clock)
        self.counts: Counter[str] = Counter()
        self.emails: dict[str, str] = {}
        self.pool = ThreadPoolExecutor(max_workers=4)
        self.sent: list[Future[int]] = []
        self.redemptions: list[Redeem] = []
        self.week: tuple[int, int] | None = None

    def send(self, topic: str, payload: dict[str, object], webhook_id: str | None = None) -> None:
        self.counts[f"webhooks sent: {topic}"] += 1
        self.sent.append(self.pool.submit(self.store.send, topic, payload, webhook_id))

    def settle(self) -> None:
        """Wait for every webhook to be answered and every queued event to be applied, then redeem."""
        if not self.sent and not self.redemptions:
            return
        for future in self.sent:
            if future.result() != 200:
                self.counts["webhooks refused"] += 1
        self.sent.clear()
        self.stack.wait_idle(timeout=300)
        for redemption in self.redemptions:
            member_id = self.ledger.member_for_email(self.emails[redemption.member_id])
            try:
                if member_id is None:
                    raise InsufficientPointsError("not enrolled yet")
                self.ledger.redeem(member_id, redemption.points, redemption.redemption_id, "reward voucher")
                self.counts["redemptions"] += 1
            except InsufficientPointsError:
                self.counts["redemptions refused (not enough points)"] += 1
        self.redemptions.clear()

    def happen(self, happening: Enrol | OrderPaid | Refund | Redeem | DayEnds) -> None:
        week = happening.at.isocalendar()[:2]
        if self.week is not None and week != self.week:
            self.settle()  # the programme's clock moves on to a new week only when last week's events are in
        self.week = week
        self.clock.set(happening.at)
        if isinstance(happening, Enrol):
            self.emails[happening.member_id] = happening.email
            if int(happening.member_id.rsplit("-", 1)[1]) % 4 == 0:  # the CRM already knows a quarter of them
                self.stack.salesforce.create_contact_as_user(
                    {"FirstName": "Member", "LastName": happening.member_id, "Email": happening.email}
                )
                self.counts["contacts already in the CRM"] += 1
            self.send("customers/create", customer_payload(happening))
        elif isinstance(happening, OrderPaid):
            email = self.emails[happening.member_id]
            self.send("orders/paid", order_payload(happening, email), webhook_id=f"order-{happening.order_id}")
            if happening.redelivered:
                self.counts["redeliveries"] += 1
        elif isinstance(happening, Refund):
            self.send("refunds/create", refund_payload(happening))
            self.counts["refunds that overtook their order"] += happening.before_order
        elif isinstance(happening, Redeem):
            self.redemptions.append(happening)
        else:
            self.counts["orders released"] += self.ledger.release_due(happening.day)
            self.counts["lots expired"] += self.ledger.expire_due(happening.day)

    def dead_letters(self) -> int:
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=self.stack.queue_url("LedgerDeadLetterQueue"), AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def print_summary(demo: Demo) -> bool:
    ledger = demo.ledger
    member_ids = sorted({m for m in (ledger.member_for_email(e) for e in demo.emails.values()) if m})
    tiers: Counter[str] = Counter()
    available = pending = entries = 0
    broken: list[str] = []
    for member_id in tqdm(member_ids, desc="checking invariants", unit="member", file=sys.stdout):
        summary = ledger.summary(member_id)
        tiers[summary.tier] += 1
        available += summary.available
        pending += summary.pending
        entries += sum(1 for _ in ledger.entries(member_id))
        broken += [f"{member_id}: {problem}" for problem in ledger.check_invariants(member_id)]
    print("\nThe year in numbers")
    for name, count in sorted(demo.counts.items()):
        print(f"  {name:<46} {count:>8,}")
    print(f"  {'events in the dead-letter queue':<46} {demo.dead_letters():>8,}")
    print("\nMembers by tier")
    for tier in ledger.rules.tiers:
        print(f"  {tier.display_name:<46} {tiers[tier.name]:>8,}")
    print("\nPoints")
    print(f"  {'outstanding (available)':<46} {available:>8,}")
    print(f"  {'pending (inside the return window)':<46} {pending:>8,}")
    print(f"  {'ledger entries written':<46} {entries:>8,}")
    print("\nInvariants")
    if len(member_ids) != len(demo.emails):
        broken.append(f"{len(demo.emails) - len(member_ids)} customers were not enrolled")
    if broken:
        print(f"  VIOLATED ({len(broken)}):")
        for line in broken[:20]:
            print(f"    {line}")
        return False
    print(f"  balance = sum of entries, no negative balance, lot stream intact: OK for all {len(member_ids):,} members")
    return print_contacts(demo)


CONTACT_COLUMNS = (
    ("LastName", "Contact"),
    ("Loyalty_Points__c", "Points"),
    ("Loyalty_Pending_Points__c", "Pending"),
    ("Loyalty_Tier__c", "Tier"),
    ("Loyalty_Points_To_Next_Tier__c", "To next"),
    ("Loyalty_Expiring_Points__c", "Expiring"),
    ("Loyalty_Points_Expire_On__c", "On"),
)


def _shown(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value.is_integer():
        return f"{int(value):,}"
    return str(value)


def print_contacts(demo: Demo) -> bool:
    """A few Contacts as a CRM user sees them, and whether every linked Contact agrees with the ledger."""
    contacts = [c for c in demo.stack.salesforce.contacts() if c.get("Loyalty_Member_Id__c")]
    disagreeing = [
        c["LastName"]
        for c in contacts
        if c["Loyalty_Points__c"] != demo.ledger.summary(c["Loyalty_Member_Id__c"]).available
    ]
    print(f"\nSalesforce ({demo.stack.salesforce.url}): {len(contacts):,} Contacts linked to members")
    print("  " + "".join(f"{title:<14}" for _, title in CONTACT_COLUMNS))
    for contact in sorted(contacts, key=lambda c: -(c["Loyalty_Points__c"] or 0))[:5]:
        print("  " + "".join(f"{_shown(contact.get(field)):<14}" for field, _ in CONTACT_COLUMNS))
    if disagreeing:
        print(f"  {len(disagreeing)} Contacts disagree with the ledger: {', '.join(disagreeing[:5])}")
        return False
    print("  every linked Contact shows the ledger's available points")
    return True


def run(members: int) -> bool:
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"  # the handlers' metrics would drown the progress bar
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    clock = SimulatedClock()
    use_clock(clock)
    ports = Ports(gateway=free_port(), dynamodb=free_port(), moto=free_port(), salesforce=free_port())
    with Stack(ports=ports) as stack:
        logging.getLogger("loyalty").setLevel(logging.WARNING)  # the handlers' logs would drown the progress bar
        demo = Demo(stack, clock)
        happenings = in_time_order(simulate_year(members=members))
        print(
            f"Embedded stack: gateway {stack.gateway_url}, DynamoDB Local {stack.dynamodb_url}, moto {stack.moto_url}"
        )
        print(f"A year of a Shopify store, {members:,} members, as signed webhooks ({len(happenings):,} events)")
        first = happenings[0].at
        for product_id in PRODUCTS:
            demo.send("products/create", product_payload(product_id, first))
        for happening in tqdm(happenings, desc="simulating the year", unit="event", file=sys.stdout):
            demo.happen(happening)
        demo.settle()
        demo.pool.shutdown()
        return print_summary(demo)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1000)
    args = parser.parse_args(argv)
    return 0 if run(args.members) else 1


if __name__ == "__main__":
    raise SystemExit(main())
