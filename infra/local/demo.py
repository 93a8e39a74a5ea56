"""`make demo`: a year of a small shop through the embedded stack, as signed Shopify webhooks over HTTP.

The catalogue, customers, orders, partial refunds, refunds that overtake their orders and redeliveries go
to the webhook gateway; the real handlers queue them and apply them to the ledger on DynamoDB Local. The
programme's clock follows the simulated year (the shop's events are applied week by week), and each
simulated day ends with the scheduled jobs, run through their function as their schedules run them: release
pending points, expire due lots, warn of expiring points, pay birthday bonuses, and review tiers and
segments, and end reward codes left unused. Members spend points on rewards through the member API as a
rewards page would; their codes are made in the emulated Shopify store and used in their next order. The
emulated org knows a quarter of the customers as Contacts, and its users enter their birthdays.
At each quarter's end the demo shows members by tier and by segment; then a summary: points outstanding and
pending, entries written, what the jobs did, redemptions by reward and what became of their codes, the
redemption rate, what the points outstanding are worth, the ledger invariants checked for every member (tier and
segment recomputed from the ledger included), and Contacts as a CRM user sees them, checked against the ledger.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3
import urllib3
from tqdm import tqdm

from infra.local.demo_figures import SentEvents, order_values, twelve_months
from infra.local.dynamodb_local import free_port
from infra.local.instances import SharedClock
from infra.local.outbox import as_text, sent
from infra.local.processes import interrupt_on_stop_signals, run_in_own_session
from infra.local.shop_emulator import ShopifyStore, customer_payload, order_payload, product_payload, refund_payload
from infra.local.simulation import (
    PRODUCTS,
    Enrol,
    Happening,
    Midday,
    OrderPaid,
    Redeem,
    Refer,
    Refund,
    in_time_order,
    simulate_year,
)
from infra.local.stack import LOCAL_TIME_SCALE, Ports, Stack
from infra.report import write
from loyalty.adapters.dynamodb.kpis import DynamoDBKpiStore
from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.adapters.dynamodb.models import bind_table
from loyalty.adapters.dynamodb.offer_records import DynamoDBOfferRecords
from loyalty.clock import use_clock
from loyalty.crm.fields import SEGMENTS
from loyalty.jobs import JOBS
from loyalty.kpis.figures import KpiFigures
from loyalty.kpis.flows import ACTIVE_MONTHS, is_activity, is_ledger_figure, recount, shift_month
from loyalty.kpis.report import programme_rows
from loyalty.ledger.model import Entry, EntryKind, MemberSummary
from loyalty.ledger.service import Ledger
from loyalty.ports.kpis import PROGRAMME
from loyalty.programme.rewards import load_rewards
from loyalty.programme.rules import load_program
from loyalty.programme.tiers import month_key

LOCALES = ("sv_SE", "nb_NO", "da_DK", "fi_FI", "en_GB")


class Demo:
    def __init__(self, stack: Stack, clock: SharedClock) -> None:
        self.stack = stack
        self.clock = clock
        self.store = ShopifyStore(stack.gateway_url, stack.secrets["SHOPIFY_WEBHOOK_SECRET"])
        bind_table(stack.names["LoyaltyTable"])
        self.ledger = Ledger(DynamoDBLedgerStore(), load_program(), clock=clock)
        self.counts: Counter[str] = Counter()
        self.emails: dict[str, str] = {}
        self.pool = ThreadPoolExecutor(max_workers=4)
        self.sent: list[Future[int]] = []
        self.redemptions: list[Redeem | Refer] = []  # through the member API, as a rewards page or app would
        self.catalogue = load_rewards(self.ledger.rules)
        self.http = urllib3.PoolManager(maxsize=4)
        self.codes: dict[str, tuple[str, date]] = {}  # member -> latest reward code and its last day
        self.birthdays: list[tuple[str, dict[str, object]]] = []  # (Contact id, what a CRM user enters later)
        self.birthday_contacts: dict[tuple[int, int], list[str]] = {}  # (month, day) -> Contact ids
        self.contacts: dict[str, str] = {}  # simulated member -> Contact id
        self.member_ids: dict[str, str] = {}  # simulated member -> the programme's member id
        self.quarters: list[tuple[str, Counter[str], Counter[str]]] = []  # (quarter end, tiers, segments)
        self.week: tuple[int, int] | None = None
        self.month: str | None = None  # the programme's local month the clock is in
        self.events = SentEvents()  # what was sent and granted, for the figures' independent recomputation
        self.payloads: dict[str, dict[str, object]] = {}  # order id -> its webhook, for the shop's redeliveries
        self.spent: dict[str, float] = {}  # seconds of the year's wall time, by what the driver waited on

    @contextmanager
    def timed(self, what: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.spent[what] = self.spent.get(what, 0.0) + time.monotonic() - started

    def send(self, topic: str, payload: dict[str, object], webhook_id: str | None = None) -> None:
        self.counts[f"webhooks sent: {topic}"] += 1
        self.sent.append(self.pool.submit(self.store.send, topic, payload, webhook_id))

    def settle(self) -> None:
        """Wait for every webhook to be answered and every queued event to be applied, then redeem."""
        if not self.sent and not self.redemptions:
            return
        with self.timed("webhooks answered"):
            for future in self.sent:
                if future.result() != 200:
                    self.counts["webhooks refused"] += 1
            self.sent.clear()
        with self.timed("waiting for the pipeline"):
            self.stack.wait_idle(timeout=300)
        if self.birthdays:  # CRM users enter birthdays; the org's Outbound Messages carry them to the programme
            self.clock.set(self.clock.now + timedelta(minutes=5))  # a little later (the org keeps milliseconds)
            with self.timed("CRM users' edits and their Outbound Messages"):
                for contact_id, fields in self.birthdays:
                    self.stack.salesforce.update_contact_as_user(contact_id, fields)
                self.counts["birthdays entered in the CRM"] += len(self.birthdays)
                self.birthdays.clear()
                self.stack.salesforce.wait_for_outbound(timeout=60)
                self.stack.wait_idle(timeout=300)
        with self.timed("redemptions through the member API"):
            self.redeem_all()

    def redeem_all(self) -> None:
        """The week's redemptions and referrals: each member's in the order they made them, different members' at
        the same time (as members use their pages at the same time)."""
        by_member: dict[str, list[Redeem | Refer]] = {}
        for redemption in self.redemptions:
            by_member.setdefault(redemption.member_id, []).append(redemption)
        for counted in self.pool.map(self.redeem_in_turn, by_member.values()):
            self.counts.update(counted)
        self.redemptions.clear()

    def redeem_in_turn(self, redemptions: list[Redeem | Refer]) -> Counter[str]:
        """One member's redemptions and referrals, one after the other; what became of them."""
        counted: Counter[str] = Counter()
        for redemption in redemptions:
            member_id = self.member_id(redemption.member_id)
            if isinstance(redemption, Refer):
                if member_id is not None:
                    self.ledger.bonus(member_id, "referral", redemption.referral_id)
                    counted["referral bonuses"] += 1
            elif member_id is None:
                counted["redemptions refused (not enrolled yet)"] += 1
            else:
                counted[self.redeem(redemption, member_id)] += 1
        return counted

    def redeem(self, redemption: Redeem, member_id: str) -> str:
        """The dearest reward the member's target buys (a code made in the shop, or a donation), through the member
        API; what became of it."""
        rewards = self.catalogue.rewards
        affordable = [r for r in rewards if r.cost <= redemption.points]
        reward = max(affordable, key=lambda r: r.cost) if affordable else min(rewards, key=lambda r: r.cost)
        response = self.http.request(
            "POST",
            f"{self.stack.gateway_url}/members/{member_id}/redemptions",
            body=json.dumps({"rewardId": reward.id, "shop": self.store.domain}).encode(),
            headers={"Content-Type": "application/json", "Idempotency-Key": redemption.redemption_id},
        )
        answer = json.loads(response.data or b"{}")
        if response.status == 201:
            self.events.redemption(redemption.member_id, self.local_month(self.clock.now))
            if answer.get("code"):
                self.codes[redemption.member_id] = (answer["code"], date.fromisoformat(answer["validUntil"]))
            return f"redemptions: {reward.id}"
        if response.status == 409:
            return f"redemptions refused ({answer.get('rule')})"
        return f"redemptions failed: {response.status}"

    def local_month(self, moment: datetime) -> str:
        return month_key(self.ledger.rules.local_date(moment))

    def happen(self, happening: Happening) -> None:
        week, month = happening.at.isocalendar()[:2], self.local_month(happening.at)
        if self.week is not None and (week != self.week or month != self.month):
            self.settle()  # the clock moves on to a new week or month only when the last one's events are in
        if self.month is not None and month != self.month:
            with self.timed("waiting for the pipeline"):  # the month's last redemptions counted before its close
                self.stack.wait_idle(timeout=300)
            with self.timed("job kpi_close"):  # the month just ended: its closing figures
                self.stack.run_job("kpi_close", day=self.ledger.rules.local_date(happening.at).isoformat())
        self.week, self.month = week, month
        self.clock.set(happening.at)
        if isinstance(happening, Enrol):
            self.emails[happening.member_id] = happening.email
            number = int(happening.member_id.rsplit("-", 1)[1])
            if number % 4 == 0:  # the CRM already knows a quarter of them
                with self.timed("Contacts created in the CRM"):
                    contact_id = self.stack.salesforce.create_contact_as_user(
                        {"FirstName": "Member", "LastName": happening.member_id, "Email": happening.email}
                    )
                self.contacts[happening.member_id] = contact_id
                born = date(1960 + number % 40, 1 + number % 12, 1 + number % 28)
                self.birthday_contacts.setdefault((born.month, born.day), []).append(contact_id)
                fields: dict[str, object] = {  # entered by a CRM user once the member exists
                    "Birthdate": born.isoformat(),
                    "Loyalty_Locale__c": LOCALES[number // 4 % len(LOCALES)],
                    "MobilePhone": f"+4670{number:07d}",
                    "Loyalty_SMS_Opt_In__c": number % 8 == 0,
                }
                self.birthdays.append((contact_id, fields))
                self.counts["contacts already in the CRM"] += 1
            self.events.joined_in(happening.member_id, month)
            customer = customer_payload(happening)
            self.stack.shopify.add_customer(self.store.domain, int(str(customer["id"])), happening.email)
            self.send("customers/create", customer)
        elif isinstance(happening, OrderPaid) and happening.redelivered:  # the same webhook again, as shops do
            payload = self.payloads[happening.order_id]
            self.send("orders/paid", payload, webhook_id=f"order-{happening.order_id}")
            self.counts["redeliveries"] += 1
        elif isinstance(happening, OrderPaid):
            email = self.emails[happening.member_id]
            code, last_day = self.codes.pop(happening.member_id, ("", date.min))
            if code and happening.at.date() <= last_day:  # used at checkout
                happening = replace(happening, discount_code=code)
                self.counts["orders using a reward code"] += 1
            payload = self.payloads[happening.order_id] = order_payload(happening, email)
            self.send("orders/paid", payload, webhook_id=f"order-{happening.order_id}")
            self.events.order(happening.member_id, month, [line_id for line_id, _, _ in happening.lines], payload)
        elif isinstance(happening, Refund):
            self.send("refunds/create", refund_payload(happening))
            self.events.refund(str(int(happening.order_id)), month, happening.lines)
            self.counts["refunds that overtook their order"] += happening.before_order
        elif isinstance(happening, Redeem | Refer):
            self.redemptions.append(happening)
        elif isinstance(happening, Midday):
            with self.timed("birthday Flows"):
                flows = self.birthday_flows(happening.day)
            with self.timed("job release_held"):
                released = self.stack.run_job("release_held")["changed"]
            self.counts["held SMS released after quiet hours"] += released
            if flows or released:
                with self.timed("waiting for the pipeline"):
                    self.stack.wait_idle(timeout=300)  # sent at midday, before the simulated day moves on
        else:
            today = happening.day.isoformat()
            for job in JOBS:  # as the hourly schedules run them, for the simulated day
                with self.timed(f"job {job}"):
                    self.counts[f"job {job}: items changed"] += self.stack.run_job(job, day=today)["changed"]
            if (happening.day + timedelta(days=1)).day == 1 and happening.day.month % 3 == 0:
                self.settle()
                with self.timed("quarter's snapshot"):
                    self.snapshot(today)

    def birthday_flows(self, day: date) -> int:
        """The org's birthday Flow: a voucher for each Contact whose birthday it is, asked of the programme."""
        asked = 0
        for contact_id in self.birthday_contacts.get((day.month, day.day), []):
            contact = self.stack.salesforce.contact(contact_id)
            if not contact.get("Loyalty_Member_Id__c") or not contact.get("Birthdate"):
                continue
            body = {
                "schemaVersion": 1,
                "type": "offer.requested",
                "requestId": f"bday-{contact_id}-{day.year}",
                "orgId": self.stack.salesforce.organization_id,
                "requestedAt": self.clock().isoformat(),
                "source": {"flowApiName": "Loyalty_Birthday_Offer", "requestedByUserId": "0055g00000B2rQsAAJ"},
                "contact": {
                    "id": contact_id,
                    "loyaltyMemberId": contact["Loyalty_Member_Id__c"],
                    "firstName": contact.get("FirstName"),
                    "email": contact.get("Email"),
                    "mobilePhone": contact.get("MobilePhone"),
                    "locale": contact.get("Loyalty_Locale__c"),
                },
                "offer": {
                    "code": f"BDAY{day.year}",
                    "kind": "voucher",
                    "validFrom": day.isoformat(),
                    "validUntil": (day + timedelta(days=30)).isoformat(),
                    "channels": ["email", "sms"],
                    "templateKey": "birthday",
                },
                "consent": {
                    "email": not contact.get("HasOptedOutOfEmail"),
                    "sms": bool(contact.get("Loyalty_SMS_Opt_In__c")),
                },
            }
            status, answer = self.stack.salesforce.send_flow_callout(
                f"{self.stack.gateway_url}/webhooks/salesforce/flow",
                body,
                self.stack.secrets["SALESFORCE_CALLOUT_SECRET"],
            )
            asked += 1
            if status == 202:
                self.counts["birthday Flows from the CRM"] += 1
            else:
                self.counts[f"birthday Flow refused: {status} {answer.get('message', '')}"[:46]] += 1
        return asked

    def member_id(self, simulated: str) -> str | None:
        """The programme's member id of a simulated member, once enrolled (looked up by e-mail, then remembered)."""
        found = self.member_ids.get(simulated)
        if found is None:
            found = self.ledger.member_for_email(self.emails[simulated])
            if found is not None:
                self.member_ids[simulated] = found
        return found

    def enrolled(self) -> list[str]:
        return sorted({m for m in map(self.member_id, self.emails) if m})

    def summaries(self) -> list[MemberSummary]:
        """Every enrolled member's summary (tier and segment: no lots), read a hundred at a time."""
        member_ids = self.enrolled()
        pages = [member_ids[n : n + 100] for n in range(0, len(member_ids), 100)]
        found = self.pool.map(lambda page: self.ledger.summaries(page, expiry=False), pages)
        return [summary for page in found for summary in page.values()]

    def snapshot(self, day: str) -> None:
        """Members by tier and by segment at a quarter's end."""
        summaries = self.summaries()
        self.quarters.append(
            (
                day,
                Counter(summary.tier for summary in summaries),
                Counter(summary.segment or "(not reviewed yet)" for summary in summaries),
            )
        )

    def dead_letters(self) -> int:
        attributes = boto3.client("sqs").get_queue_attributes(
            QueueUrl=self.stack.queue_url("LedgerDeadLetterQueue"), AttributeNames=["ApproximateNumberOfMessages"]
        )
        return int(attributes["Attributes"]["ApproximateNumberOfMessages"])


def print_time_spent(demo: Demo, took: float) -> None:
    """Where the year's wall time went, as the driver saw it (the rest: sending the webhooks, moving the clock)."""
    print("Where the year's time went")
    rest = took - sum(demo.spent.values())
    for what, seconds in [
        *sorted(demo.spent.items(), key=lambda kv: -kv[1]),
        ("the rest (sending webhooks, moving the clock)", rest),
    ]:
        print(f"  {what:<46} {seconds:>7.1f} s {seconds / took:>6.1%}")


def print_calls(calls: Counter[str], events: int) -> None:
    """The AWS calls the year made (to DynamoDB Local and moto), by function and by operation."""
    by_function: dict[str, Counter[str]] = {}
    for key, count in calls.items():
        function, _, operation = key.partition("|")
        by_function.setdefault(function, Counter())[operation] += count
    total = sum(calls.values())
    print(f"AWS calls during the year: {total:,}, {total / max(1, events):.1f} an event")
    for function, operations in sorted(by_function.items(), key=lambda item: -item[1].total()):
        top = ", ".join(f"{operation} {count:,}" for operation, count in operations.most_common(3))
        print(f"  {function:<32} {operations.total():>8,}  {top}")


def print_quarters(demo: Demo) -> None:
    """Members by tier and by segment at each quarter's end: how the programme moved over the year."""
    if not demo.quarters:
        return
    header = "".join(f"{day:>12}" for day, _, _ in demo.quarters)
    print(f"\nMembers by tier at each quarter's end\n  {'':<28}{header}")
    for tier in demo.ledger.rules.tiers:
        print(f"  {tier.display_name:<28}" + "".join(f"{tiers[tier.name]:>12,}" for _, tiers, _ in demo.quarters))
    print(f"\nMembers by segment at each quarter's end\n  {'':<28}{header}")
    names = [*SEGMENTS, "(not reviewed yet)"]
    for name in names:
        row = [segments[name] for _, _, segments in demo.quarters]
        if any(row):
            print(f"  {SEGMENTS.get(name, name):<28}" + "".join(f"{count:>12,}" for count in row))


def print_summary(demo: Demo) -> bool:
    ledger = demo.ledger
    member_ids = demo.enrolled()
    available = pending = entries = earned = 0
    kinds: Counter[str] = Counter()
    broken: list[str] = []
    written: list[Entry] = []
    joined: list[datetime] = []
    for member_id in tqdm(member_ids, desc="checking invariants", unit="member", file=sys.stdout):
        summary = ledger.summary(member_id)
        joined.append(summary.enrolled_at)
        available += summary.available
        pending += summary.pending
        earned += summary.lifetime
        for entry in ledger.entries(member_id):
            written.append(entry)
            entries += 1
            if entry.tier_reached:
                kinds["tiers reached at once (upgrades)"] += 1
            elif entry.kind is EntryKind.TIER:
                kinds["qualification periods decided"] += 1
            elif entry.kind is EntryKind.EXPIRY:
                kinds["expiry entries"] += 1
            elif entry.source_key.startswith("bonus#birthday#"):
                kinds["birthday bonuses"] += 1
        broken += [f"{member_id}: {problem}" for problem in ledger.check_invariants(member_id)]
    print("\nThe year in numbers")
    for name, count in sorted({**demo.counts, **kinds}.items()):
        print(f"  {name:<46} {count:>8,}")
    print(f"  {'events in the dead-letter queue':<46} {demo.dead_letters():>8,}")
    print_quarters(demo)
    print_offers(demo, member_ids)
    print("\nPoints")
    print(f"  {'outstanding (available)':<46} {available:>8,}")
    print(f"  {'pending (inside the return window)':<46} {pending:>8,}")
    print(f"  {'ledger entries written':<46} {entries:>8,}")
    print_rewards(demo, member_ids, available, earned)
    broken += print_months(demo, written, joined)
    print("\nInvariants")
    if len(member_ids) != len(demo.emails):
        broken.append(f"{len(demo.emails) - len(member_ids)} customers were not enrolled")
    if broken:
        print(f"  VIOLATED ({len(broken)}):")
        for line in broken[:20]:
            print(f"    {line}")
        return False
    print(
        "  balance = sum of entries, no negative balance, lot stream intact, tier and segment recomputed from the "
        f"ledger: OK for all {len(member_ids):,} members"
    )
    return print_contacts(demo)


MONTH_COLUMNS = (
    ("members_enrolled", "Joined"),
    ("orders", "Orders"),
    ("purchasers", "Buyers"),
    ("points_issued", "Issued"),
    ("points_released", "Released"),
    ("points_redeemed", "Redeemed"),
    ("points_returned", "Returned"),
    ("points_expired", "Expired"),
)


def print_months(demo: Demo, written: list[Entry], joined: list[datetime]) -> list[str]:
    """The programme's figures by month as the stream counted them, each checked against a recount from the
    ledger; the 12-month table, checked against a recomputation from what the demo sent; the report written.
    What differs."""
    recounted = recount(demo.ledger.rules, written, joined)
    store = DynamoDBKpiStore()
    print("\nThe months in figures (counted from the table's stream; points)")
    print("  " + "".join(f"{title:>12}" for title in ("Month", *(title for _, title in MONTH_COLUMNS))))
    differ = []
    months = sorted(month for month in recounted if month <= demo.month)  # (active members lapse months ahead)
    for month in sorted(recounted):
        counted = {  # the ledger's figures (offers and members' moves count from their own records)
            name: value for name, value in store.month(month).get(PROGRAMME, {}).items() if is_ledger_figure(name)
        }
        if counted != recounted[month]:
            differ.append(f"the figures of {month} differ from the ledger's: {counted} against {recounted[month]}")
    for month in months:
        counted = store.month(month).get(PROGRAMME, {})
        print("  " + f"{month:>12}" + "".join(f"{counted.get(name, 0):>12,}" for name, _ in MONTH_COLUMNS))
    if not differ:
        print(f"  each month's figures equal a recount of the {len(written):,} ledger entries and enrolments: OK")
    figures = KpiFigures(store, demo.catalogue)
    bought = [month for month in months if store.month(month).get(PROGRAMME, {}).get("orders")]
    year = [month for month in months if month <= bought[-1]][-12:] if bought else months[-12:]
    answers = figures.answers(year[0], year[-1], ("segment", "tier"))
    by_segment, by_tier = answers["segment"], answers["tier"]
    differ += print_twelve_months(by_segment, twelve_months(demo.events, year))
    if months:
        differ += check_group_stocks(demo, figures, written, months[-1])
    differ += name_differing_orders(demo, written, [line.split(":")[0] for line in differ if line[:4].isdigit()])
    print_offer_lift(by_segment)
    write_report(by_segment, by_tier, [tier.name for tier in demo.ledger.rules.tiers])
    return differ


def check_group_stocks(demo: Demo, figures: KpiFigures, written: list[Entry], month: str) -> list[str]:
    """Each tier's and segment's members, active members and points outstanding at the month's end, as GET /kpis
    answers them (counted from the stream, carried along as members moved), against the members' items and
    entries: their earned tier, segment and points, and their last order or redemption. What differs."""
    members = demo.ledger.store.members(demo.enrolled())
    lowest = demo.ledger.rules.tiers[0].name
    last_active: dict[str, str] = {}
    for entry in written:
        if is_activity(entry):
            at = demo.local_month(entry.created_at)
            last_active[entry.member_id] = max(at, last_active.get(entry.member_id, at))
    expected: dict[str, list[int]] = {}
    for member_id, member in members.items():
        active = int(member_id in last_active and shift_month(last_active[member_id], ACTIVE_MONTHS) > month)
        for group in (f"tier#{member.tier or lowest}", f"segment#{member.segment or 'none'}"):
            kept = expected.setdefault(group, [0, 0, 0])
            for index, value in enumerate((1, active, member.available + member.pending)):
                kept[index] += value
    answers = figures.answers(month, month, ("segment", "tier"))
    shown = {
        row["group"]: [row["members"] or 0, row["activeMembers"], row["pointsOutstanding"]]
        for by in ("segment", "tier")
        for row in answers[by]["months"]
        if row["group"] != PROGRAMME
    }
    shown = {group: stocks for group, stocks in shown.items() if any(stocks) or group in expected}
    print(f"\nEach tier and segment at the end of {month} (members, active, points outstanding)")
    for group in sorted(set(shown) | set(expected)):
        print(f"  {group:<28}{'  '.join(f'{value:>10,}' for value in shown.get(group, [0, 0, 0]))}")
    if shown == expected:
        print("  equal to the members' items and entries (their tier, segment, points, last activity): OK")
        return []
    return [f"{group} at the end of {month}: GET /kpis says {shown.get(group)}, the members {expected.get(group)}"
            for group in sorted(set(shown) | set(expected)) if shown.get(group) != expected.get(group)]  # fmt: skip


def print_twelve_months(answer: dict[str, Any], recomputed: dict[str, dict[str, Any]]) -> list[str]:
    """The 12-month table as GET /kpis answers it, checked against the recomputation from the events sent."""
    print("\nThe 12-month table (GET /kpis)")
    print(f"  {'Month':<10}{'Returning customers':>22}{'Average order (SEK)':>22}{'Active members':>18}")
    differ = []
    for row in programme_rows(answer):
        returning, active = row["returningShare"], row["activeShare"]
        print(
            f"  {row['month']:<10}{_percent(returning):>22}{row['averageOrderValue'].get('SEK', '-'):>22}"
            f"{_percent(active):>18}"
        )
        shown = {name: row[name] for name in ("returningShare", "averageOrderValue", "activeShare")}
        if shown != recomputed[row["month"]]:
            differ.append(f"{row['month']}: GET /kpis says {shown}, the events sent {recomputed[row['month']]}")
    if not differ:
        print("  equal to a recomputation from the orders, refunds, redemptions and members the demo sent: OK")
    return differ


def name_differing_orders(demo: Demo, written: list[Entry], months: list[str]) -> list[str]:
    """For each month whose table differs: the orders whose value there differs between the ledger's entries and
    the events sent (to find where an order or a refund was applied)."""
    found = []
    for month in months:
        ledger: dict[str, Decimal] = {}
        for entry in written:
            if entry.value is not None and entry.order_key and demo.local_month(entry.created_at) == month:
                order_id = entry.order_key.rsplit("#", 1)[1]
                ledger[order_id] = ledger.get(order_id, Decimal(0)) + entry.value
        sent = order_values(demo.events, month)
        for order_id in sorted(set(ledger) | set(sent)):
            if ledger.get(order_id, Decimal(0)) != sent.get(order_id, Decimal(0)):
                of_order = [e for e in written if (e.order_key or "").endswith(f"#{order_id}")]
                at = [(e.kind.value, e.created_at.isoformat(), str(e.value)) for e in of_order]
                found.append(f"  {month} order {order_id}: ledger {ledger.get(order_id)}, events {sent.get(order_id)}")
                found.append(f"    its entries {at}")
    return found


def print_offer_lift(answer: dict[str, Any]) -> None:
    """The programme's offers against their holdout over the year: purchase rate and revenue a member in each arm,
    and the lift with its 95 % confidence interval."""
    print("\nOffers against their holdout (an order within the conversion window; 95 % confidence intervals)")
    if not answer["offers"]:
        print("  no offer measured against a holdout this year")
    for offer in answer["offers"]:
        offered, held, lift = offer["offered"], offer["holdout"], offer["lift"]
        print(
            f"  {offer['trigger']:<18} offered {offered['members']:>5,} bought {_percent(offered['purchaseRate']):>6}"
            f"   held out {held['members']:>4,} bought {_percent(held['purchaseRate']):>6}"
        )
        rate, revenue = lift["purchaseRate"], lift["revenuePerMember"]
        if rate is not None:
            print(f"  {'':<18} purchase rate lift {100 * rate['difference']:+.1f} pp "
                  f"({100 * rate['low']:+.1f} to {100 * rate['high']:+.1f})")  # fmt: skip
        if revenue is not None:
            print(f"  {'':<18} revenue a member lift {revenue['difference']} {answer['reportingCurrency']} "
                  f"({revenue['low']} to {revenue['high']})")  # fmt: skip
    roi = answer["roi"]
    ratio = "-" if roi["ratio"] is None else f"{roi['ratio']:.1%}"
    print(f"  incremental revenue {roi['incrementalRevenue']} against points redeemed worth {roi['pointsCost']}: "
          f"ROI {ratio}")  # fmt: skip


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def write_report(by_segment: dict[str, Any], by_tier: dict[str, Any], tiers: list[str]) -> None:
    """The HTML report and its CSV files, as `make report` writes them."""
    report = write(Path("report"), by_segment, by_tier, tiers)
    print(f"\nThe report: {report.resolve()} (and its CSV files beside it)")


def print_rewards(demo: Demo, member_ids: list[str], available: int, earned: int) -> None:
    """Redemptions by reward and what became of their codes, the redemption rate, and what the points
    outstanding are worth."""
    statuses: Counter[str] = Counter()
    spent = 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        found = list(pool.map(demo.ledger.redemptions, member_ids))
    for redemptions in found:
        for redemption in redemptions:
            statuses[f"{redemption.reward_id}: {redemption.status.value}"] += 1
            if redemption.status.value not in ("cancelled", "expired", "refused"):
                spent += redemption.points
    print("\nRewards (codes made in the emulated Shopify store)")
    for name, count in sorted(statuses.items()):
        print(f"  {name:<46} {count:>8,}")
    rate = spent / earned if earned else 0
    print(f"  {'redemption rate (points spent / points earned)':<46} {rate:>8.1%}")
    for currency, value in demo.catalogue.money(available).items():
        print(f"  {'outstanding points worth, ' + currency:<46} {value:>11,.2f}")


def print_offers(demo: Demo, member_ids: list[str]) -> None:
    """What the programme and the CRM asked to send, what was decided per channel, and one e-mail and one SMS."""
    store = DynamoDBOfferRecords()
    decided: Counter[tuple[str, str, str]] = Counter()
    for member_id in member_ids:
        for record in store.sent(member_id):
            decided[(record.trigger, record.channel, record.status.value)] += 1
    print("\nOffers (per channel: sent, held, capped, refused for consent, held out to measure against)")
    for (trigger, channel, status), count in sorted(decided.items()):
        print(f"  {trigger + ' by ' + channel + ': ' + status:<46} {count:>8,}")
    emails, texts = sent(demo.stack.moto_url)
    print(f"  {'e-mails in moto (SES v2)':<46} {len(emails):>8,}\n  {'SMS in moto (SNS)':<46} {len(texts):>8,}")
    birthday = [e for e in emails if "BDAY" in e.get("body", "")]
    shown = next((e for e in birthday if 'lang="en"' not in e.get("body", "")), birthday[-1] if birthday else None)
    if shown is not None:
        print(f'\nAn e-mail as sent: to {shown["destinations"]["ToAddresses"][0]}, "{shown["subject"]}"')
        print("    " + as_text(shown["body"]).replace("\n", "\n    "))
    if texts:
        sms = texts[-1]
        print(f"\nAn SMS as sent: to {sms['phone_number']}\n    {sms['message']}")


CONTACT_COLUMNS = (
    ("LastName", "Contact"),
    ("Loyalty_Points__c", "Points"),
    ("Loyalty_Pending_Points__c", "Pending"),
    ("Loyalty_Tier__c", "Tier"),
    ("Loyalty_Points_To_Next_Tier__c", "To next"),
    ("Loyalty_Tier_Expires_On__c", "Tier until"),
    ("Loyalty_Segment__c", "Segment"),
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
    """Contacts as a CRM user sees them, and whether every linked Contact agrees with the ledger."""
    contacts = [c for c in demo.stack.salesforce.contacts() if c.get("Loyalty_Member_Id__c")]
    rules = demo.ledger.rules
    disagreeing = []
    for contact in contacts:
        summary = demo.ledger.summary(contact["Loyalty_Member_Id__c"])
        shown = (contact["Loyalty_Points__c"], contact["Loyalty_Tier__c"], contact.get("Loyalty_Segment__c"))
        expected = (summary.available, rules.tier(summary.tier).display_name, SEGMENTS.get(summary.segment or ""))
        if shown != expected:
            disagreeing.append(f"{contact['LastName']} shows {shown}, the ledger {expected}")
    print(f"\nSalesforce ({demo.stack.salesforce.url}): {len(contacts):,} Contacts linked to members")
    widths = [14, 9, 9, 10, 9, 12, 22, 10, 12]
    print("  " + "".join(f"{title:<{w}}" for (_, title), w in zip(CONTACT_COLUMNS, widths, strict=True)))
    for contact in sorted(contacts, key=lambda c: -(c["Loyalty_Points__c"] or 0))[:8]:
        cells = [_shown(contact.get(field)) for field, _ in CONTACT_COLUMNS]
        print("  " + "".join(f"{cell:<{w}}" for cell, w in zip(cells, widths, strict=True)))
    journal: Counter[str] = Counter(r["Member_Id__c"] for r in demo.stack.salesforce.records("Loyalty_Transaction__c"))
    for contact in contacts:
        member_id = contact["Loyalty_Member_Id__c"]
        written = len(demo.ledger.entries(member_id))
        if journal[member_id] != written:
            disagreeing.append(f"{contact['LastName']}'s journal: {journal[member_id]} entries, the ledger {written}")
    kpis = demo.stack.salesforce.records("Loyalty_Programme_KPI__c")
    months = sorted({record["Month__c"] for record in kpis})
    if disagreeing:
        print(f"  {len(disagreeing)} Contacts disagree with the ledger:")
        for line in disagreeing[:5]:
            print(f"    {line}")
        return False
    print("  every linked Contact shows the ledger's points, tier and segment")
    print(f"  and its transaction journal every ledger entry: {sum(journal.values()):,} Loyalty_Transaction__c records")
    print(f"  {len(kpis):,} Loyalty_Programme_KPI__c records: {months[0] if months else '-'} to "
          f"{months[-1] if months else '-'}, the programme's and each segment's and tier's")  # fmt: skip
    return True


def run(members: int) -> bool:
    quiet = {"POWERTOOLS_METRICS_DISABLED": "true", "POWERTOOLS_LOG_LEVEL": "WARNING"}  # the bar stays readable
    os.environ.update(quiet)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    clock = SharedClock(datetime(2025, 1, 1, tzinfo=UTC))  # the simulated year's, in every function instance too
    use_clock(clock)
    ports = Ports(gateway=free_port(), dynamodb=free_port(), moto=free_port(), salesforce=free_port())
    with Stack(ports=ports, time_scale=LOCAL_TIME_SCALE, clock=clock, environment=quiet) as stack:
        logging.getLogger("loyalty").setLevel(logging.WARNING)  # the demo's own ledger calls log too
        demo = Demo(stack, clock)
        try:
            happenings = in_time_order(simulate_year(members=members))
            print(
                f"Embedded stack: gateway {stack.gateway_url}, DynamoDB Local {stack.dynamodb_url}, "
                f"moto {stack.moto_url}"
            )
            print(f"A year of a Shopify store, {members:,} members, as signed webhooks ({len(happenings):,} events)")
            first = happenings[0].at
            for product_id in PRODUCTS:
                demo.send("products/create", product_payload(product_id, first))
            started, calls_before = time.monotonic(), stack.calls_made()
            # the bar shows events a second and the time left (averaged over the last few hundred events)
            bar = tqdm(happenings, desc="simulating the year", unit="event", smoothing=0.02, file=sys.stdout)
            for happening in bar:
                demo.happen(happening)
            demo.settle()
            demo.stack.wait_idle(timeout=300)  # what the last redemptions set going, counted in the figures too
        finally:  # interrupted: what waits to be sent is dropped, not sent to a stack that is stopping
            demo.pool.shutdown(cancel_futures=True)
        took = time.monotonic() - started
        print(f"\nThe year took {took // 60:.0f} min {took % 60:.0f} s: {len(happenings):,} events, "
              f"{len(happenings) / took:.1f} a second")  # fmt: skip
        print_time_spent(demo, took)
        print_calls(stack.calls_made() - calls_before, len(happenings))
        return print_summary(demo)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1000)
    args = parser.parse_args(argv)
    interrupt_on_stop_signals()  # SIGTERM stops it like Ctrl-C: the stack's processes stop with the demo
    try:
        return 0 if run(args.members) else 1
    except KeyboardInterrupt:
        print("\nstopped")
        return 130


if __name__ == "__main__":
    raise SystemExit(run_in_own_session(main))
