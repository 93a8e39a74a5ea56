"""What only the DynamoDB adapters do, on moto: items stored before a field existed, the release job on the table's
index, the table's stream as crm_sync receives it (a push asked for again included), and seeding the catalogue from
the command line; and, on DynamoDB Local, the summary an accrual computes against the one read after it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from infra.local.event_sources import matches
from infra.local.template import load_template
from infra.seed_catalogue import main as seed_catalogue
from loyalty.adapters.dynamodb.crm_states import DynamoDBCrmStates
from loyalty.adapters.dynamodb.directory import DynamoDBDirectory
from loyalty.adapters.dynamodb.job_runs import DynamoDBJobRuns
from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.adapters.dynamodb.models import (
    CRM_STATE_SK,
    ENTRY_PREFIX,
    MEMBER_SK,
    ORDER_SK,
    CrmStateItem,
    EntryItem,
    HeldOrderItem,
    LoyaltyItem,
    MemberItem,
    NpsAnswerItem,
    OrderItem,
    ReviewHoldItem,
    member_pk,
    order_pk,
    release_due,
)
from loyalty.adapters.dynamodb.offer_records import DynamoDBOfferRecords
from loyalty.adapters.dynamodb.reviews import DynamoDBReviews
from loyalty.adapters.dynamodb.stream import kpi_changes, member_images, stream_changes
from loyalty.adapters.dynamodb.surveys import DynamoDBNpsAnswers
from loyalty.fakes.offers import InMemoryOfferQueue
from loyalty.jobs import ScheduledJobs
from loyalty.ledger.service import Ledger
from loyalty.ledger.state import OfferGrant
from loyalty.offers.records import SendRecord, Status
from loyalty.offers.rules import load_offer_rules
from loyalty.ports.crm import CrmState
from loyalty.ports.directory import HeldForReview
from loyalty.ports.kpis import MemberMove
from loyalty.ports.surveys import NpsAnswer
from loyalty.programme.rules import ProgramRules, load_program
from tests.conftest import FakeClock
from tests.contract.conftest import due
from tests.orders import simple_order
from tests.unit.test_catalogue import WOO_EXPORT


def test_a_member_stored_before_offers_existed_gets_an_offer_too(
    moto_table: str, rules: ProgramRules, clock: FakeClock
) -> None:
    # Given a member item without the offers map (stored before offers existed)
    ledger = Ledger(DynamoDBLedgerStore(), rules, clock=clock)
    anna = ledger.enrol("anna")
    MemberItem(member_pk(anna), MEMBER_SK).update(actions=[MemberItem.offers.remove()])
    # When two offers that double points are granted
    for code in ("DOUBLE1", "DOUBLE2"):
        ledger.grant_offer(anna, OfferGrant(code, date(2026, 11, 20), date(2026, 12, 20), multiplier=Decimal(2)))
    # Then an order inside their validity earns under both
    inside = ledger.accrue(anna, simple_order("in", datetime(2026, 12, 1, 12, tzinfo=UTC)))
    assert inside.entry.offers == ("DOUBLE1", "DOUBLE2")


STREAM_ARN = "arn:aws:dynamodb:eu-north-1:123456789012:table/loyalty/stream/2026-01-01T00:00:00.000"


def test_an_order_stored_before_orders_had_a_version_is_refunded_and_released(
    moto_table: str, rules: ProgramRules, clock: FakeClock
) -> None:
    # Given a pending order as stored before orders carried their version and release day apart from the index,
    # and before the index kept pending orders in shards sorted by release day (RELEASE#<day> / the order's key)
    ledger = Ledger(DynamoDBLedgerStore(), rules, clock=clock)
    member = ledger.enrol("m1")
    ledger.accrue(member, simple_order("1001", clock.now, [("1", 1, "60.00"), ("2", 1, "40.00")]))
    pk = order_pk("shopify:demo#1001")
    release_day = date.fromisoformat(OrderItem.get(pk, ORDER_SK).release_on)
    OrderItem(pk, ORDER_SK).update(
        actions=[
            OrderItem.version.remove(),
            OrderItem.release_on.remove(),
            OrderItem.due_pk.set(f"RELEASE#{release_day}"),
            OrderItem.due_sk.set(pk),
        ]
    )
    # Then the release job finds it on its release day
    job_runs = DynamoDBJobRuns()
    assert [work.order_id for work in due(job_runs, job_runs.releases_due_by(release_day))] == ["1001"]
    # When one of its lines is refunded
    ledger.reverse("shopify:demo", "1001", "r1", {"2": 1})
    # Then the order keeps its release day, now on the index as every pending order is, found from that day on
    refunded = OrderItem.get(pk, ORDER_SK)
    assert (refunded.due_pk, refunded.due_sk, refunded.version) == (*release_due("shopify:demo#1001", release_day), 1)
    later = release_day + timedelta(days=100)
    assert [work.order_id for work in due(job_runs, job_runs.releases_due_by(later))] == ["1001"]
    # And the release job releases what is left
    released = ledger.release("shopify:demo", "1001")
    assert released is not None and released.entry.points == 60
    assert ledger.check_invariants(member) == []
    assert due(job_runs, job_runs.releases_due_by(later)) == []


def test_the_release_job_on_the_table_releases_orders_however_old(
    moto_table: str, rules: ProgramRules, clock: FakeClock
) -> None:
    # Given orders placed 40, 90 and 400 days before the job runs, more than a page of them, one of them stored
    # as before the index had shards (under its release day's partition, that day still in the catch-up window)
    ledger = Ledger(DynamoDBLedgerStore(), rules, clock=clock)
    run_day = date(2027, 6, 15)
    placed = {f"{days}-{n}": days for days in (400, 90, 40, 33) for n in range(2)}
    for order_id, days in placed.items():
        clock.now = datetime.combine(run_day - timedelta(days=days), datetime.min.time(), UTC) + timedelta(hours=12)
        ledger.enrol(f"m{order_id}")
        ledger.accrue(f"m{order_id}", simple_order(order_id, clock.now))
    pk = order_pk("shopify:demo#33-0")
    release_day = OrderItem.get(pk, ORDER_SK).release_on
    OrderItem(pk, ORDER_SK).update(actions=[OrderItem.due_pk.set(f"RELEASE#{release_day}"), OrderItem.due_sk.set(pk)])
    # When the release job runs, three orders a page
    clock.now = datetime.combine(run_day, datetime.min.time(), UTC) + timedelta(hours=3)
    jobs = ScheduledJobs(
        ledger, DynamoDBReviews(), DynamoDBJobRuns(), InMemoryOfferQueue(), load_offer_rules(), DynamoDBOfferRecords(),
        page_size=3,
    )  # fmt: skip
    report = jobs.run("release", run_day)
    # Then every order is released: its points available, none pending, every invariant holding
    assert report.complete and report.changed == len(placed)
    for order_id in placed:
        summary = ledger.summary(f"m{order_id}")
        assert (summary.available, summary.pending) == (100, 0), order_id
        assert ledger.check_invariants(f"m{order_id}") == []
    # And a run on the next day finds nothing left to do
    clock.now += timedelta(days=1)
    again = jobs.run("release", run_day + timedelta(days=1))
    assert (again.processed, again.changed) == (0, 0)


def stream_event(*items: Any) -> dict[str, Any]:
    """The table's stream records of ``items`` as Lambda delivers them (NEW_AND_OLD_IMAGES)."""
    records = []
    for number, item in enumerate(items):
        image = item.serialize()
        keys = {"pk": image["pk"], "sk": image["sk"]}
        records.append(
            {
                "eventID": f"e{number}",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "eu-north-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1796000000,
                    "Keys": keys,
                    "NewImage": image,
                    "SequenceNumber": str(100 + number),
                    "SizeBytes": 200,
                    "StreamViewType": "NEW_AND_OLD_IMAGES",
                },
                "eventSourceARN": STREAM_ARN,
            }
        )
    return {"Records": records}


def test_the_stream_gives_changed_members_and_sent_offers_waiting_for_their_task(moto_table: str) -> None:
    # Given a member item, a sent offer waiting for its Task, and one whose Task is pushed
    sent = SendRecord(
        member_id="m1",
        dedup="SPRING#2026-03-02#2026-03-31",
        channel="email",
        status=Status.SENT,
        request="{}",
        decided_at=datetime(2026, 3, 2, 9, tzinfo=UTC),
        trigger="crm",
        template_key="offer_voucher",
        offer_code="SPRING",
        subject="Ett erbjudande",
        language="sv",
    )
    records = DynamoDBOfferRecords()
    records.decide(sent, "req-1")
    waiting = records._item(sent, "req-1")
    waiting.task_state = "pending"
    pushed = records._item(sent, "req-1")
    pushed.task_state = "pushed"
    member = MemberItem(member_pk("m1"), MEMBER_SK, member_id="m1", enrolled_at=sent.decided_at)
    # When the stream's batch is read
    members, sends, held, _, _ = stream_changes(stream_event(member, waiting, pushed))
    # Then crm_sync learns the member and the one send it has to record, whole
    assert members == {"m1"}
    assert sends == [sent]
    assert held == []


T_STREAM = datetime(2026, 3, 2, 9, tzinfo=UTC)


def crm_sync_filters() -> list[dict[str, Any]]:
    """The patterns template.yaml gives crm_sync's stream event source (the embedded stack applies the same)."""
    events = load_template()["Resources"]["CrmSyncFunction"]["Properties"]["Events"]
    return [json.loads(f["Pattern"]) for f in events["MemberChanges"]["Properties"]["FilterCriteria"]["Filters"]]


def test_a_push_asked_for_again_reaches_crm_sync_on_the_stream_and_its_own_save_does_not(moto_table: str) -> None:
    # Given a member listed as stale
    states = DynamoDBCrmStates()
    states.save({"m1": CrmState(pushed={"Loyalty_Points__c": 10}, status="stale", reason="down")}, T_STREAM)
    saved = stream_event(CrmStateItem.get(member_pk("m1"), CRM_STATE_SK))["Records"][0]
    assert not any(matches(pattern, saved) for pattern in crm_sync_filters())  # crm_sync's saves never echo back
    # When a job asks for the member's push again
    states.request_push(["m1"], T_STREAM)
    # Then the change passes crm_sync's filter, and crm_sync learns the member
    asked = stream_event(CrmStateItem.get(member_pk("m1"), CRM_STATE_SK))
    assert any(matches(pattern, asked["Records"][0]) for pattern in crm_sync_filters())
    assert stream_changes(asked) == ({"m1"}, [], [], [], [])
    # And the push's next save drops the mark, so that save does not pass the filter
    states.save({"m1": CrmState(pushed={"Loyalty_Points__c": 20})}, T_STREAM)
    pushed = stream_event(CrmStateItem.get(member_pk("m1"), CRM_STATE_SK))["Records"][0]
    assert not any(matches(pattern, pushed) for pattern in crm_sync_filters())


def test_the_catalogue_is_seeded_from_the_command_line(
    moto_table: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = tmp_path / "products.csv"
    export.write_text(WOO_EXPORT, encoding="utf-8")
    monkeypatch.setenv("LOYALTY_TABLE", moto_table)
    monkeypatch.setattr("infra.seed_catalogue.bind_table", lambda name: None)  # moto_table bound it already
    assert seed_catalogue(["--shop", "woocommerce:shop.example", str(export)]) == 0
    found = DynamoDBDirectory().categories_for("woocommerce:shop.example", ["101", "102"])
    assert found == {"101": ("shoes", "running", "outdoor", "trail", "new-arrivals"), "102": ("accessories",)}


def test_an_order_held_for_review_reaches_crm_sync_for_its_task_once(moto_table: str) -> None:
    # Given an order held for review whose customer is a member, and one whose customer is not
    directory = DynamoDBDirectory()
    member_order, stranger_order = simple_order("big-1", T_STREAM), simple_order("big-2", T_STREAM)
    directory.hold_for_review(member_order, "a line of 5000 units (at most 1000)", T_STREAM, "m1")
    directory.hold_for_review(stranger_order, "a line of 5000 units (at most 1000)", T_STREAM)
    items = {item.sk.rsplit("#", 1)[1]: item for item in ReviewHoldItem.query("REVIEW_HOLD")}
    # When the stream brings their items / Then only the member's passes crm_sync's filter, whole
    records = {order_id: stream_event(item)["Records"][0] for order_id, item in items.items()}
    assert any(matches(pattern, records["big-1"]) for pattern in crm_sync_filters())
    assert not any(matches(pattern, records["big-2"]) for pattern in crm_sync_filters())
    members, sends, held, _, _ = stream_changes(stream_event(items["big-1"]))
    assert (members, sends) == (set(), [])
    assert held == [HeldForReview(member_order, "a line of 5000 units (at most 1000)", T_STREAM, "m1")]
    # And once its Task is recorded, the item's change no longer passes the filter
    directory.mark_review_task(held[0], "pushed")
    (after,) = [item for item in ReviewHoldItem.query("REVIEW_HOLD") if item.sk.endswith("#big-1")]
    assert not any(matches(pattern, stream_event(after)["Records"][0]) for pattern in crm_sync_filters())


def test_the_summary_after_an_accrual_is_what_the_table_reads_after_it(
    local_table: str, rules: ProgramRules, clock: FakeClock
) -> None:
    # Given a member on DynamoDB Local with a bonus offer (it pays once) and the catalogue knowing a product
    ledger = Ledger(DynamoDBLedgerStore(), rules, clock=clock)
    member = ledger.enrol("m1", email="m1@example.com", first_name="Anna")
    ledger.grant_offer(member, OfferGrant("BONUS50", date(2026, 3, 1), date(2026, 3, 31), bonus_points=50))
    DynamoDBDirectory().save_product("shopify:demo", "p-1", "Shoe", ("shoes",), clock.now)
    for number, amount in enumerate(["80.00", "450.00", "900.00"]):  # shoes earn double: silver, then gold
        # When an order is prepared, accrued with the review brought forward, and then delivered again
        order = simple_order(f"10{number}", clock.now, [("1", 1, amount), ("2", 1, "10.00")])
        accrual = ledger.accrue_prepared(ledger.prepare_accrual(member, order), review_on=date(2026, 3, 3))
        again = ledger.accrue_prepared(ledger.prepare_accrual(member, order), review_on=date(2026, 3, 3))
        # Then the summary computed from the read and the change is the one the table gives after it
        assert accrual.summary == ledger.summary(member, expiry=False) == again.summary
        assert again.result.duplicate and again.result.entry == accrual.result.entry
        clock.advance(hours=1)
    assert ledger.summary(member).tier == "gold" and ledger.check_invariants(member) == []
    entries = [entry for entry in ledger.entries(member) if entry.kind == "accrual"]
    assert [entry.offers for entry in entries] == [("BONUS50",), (), ()]
    assert [entry.tier_reached for entry in entries] == [None, "silver", "gold"]
    assert all(entry.categories == ("shoes",) for entry in entries)


def test_a_linked_shop_customer_is_on_the_members_item_and_its_stream_image(moto_table: str) -> None:
    # Given a member linked to a customer in each of two shops (and once more: nothing doubles)
    directory = DynamoDBDirectory()
    MemberItem(member_pk("m1"), MEMBER_SK, member_id="m1", enrolled_at=T_STREAM, tier="silver").save()
    for shop, customer in (("shopify:demo-shop.myshopify.com", "42"), ("woocommerce:kahvila.example.fi", "17")):
        directory.link_customer(shop, customer, "m1")
    directory.link_customer("shopify:demo-shop.myshopify.com", "42", "m1")
    # When the member's item comes on the stream
    [change] = member_images(stream_event(MemberItem.get(member_pk("m1"), MEMBER_SK)))
    # Then shop_customers learns both customers with the tier
    assert change.after.tier == "silver"
    assert change.after.customers == {
        ("shopify:demo-shop.myshopify.com", "42"),
        ("woocommerce:kahvila.example.fi", "17"),
    }
    # and a customer linked to a member who does not exist leaves no half member behind
    directory.link_customer("shopify:demo-shop.myshopify.com", "99", "m-none")
    assert directory.member_for_customer("shopify:demo-shop.myshopify.com", "99") == "m-none"
    with pytest.raises(MemberItem.DoesNotExist):
        MemberItem.get(member_pk("m-none"), MEMBER_SK)


def test_the_stream_gives_the_kpis_new_members_entries_and_nps_answers_with_the_one_replaced(moto_table: str) -> None:
    # Given a member enrolled with a signup bonus, and their answer to a survey, answered again later
    ledger = Ledger(DynamoDBLedgerStore(), load_program(), clock=FakeClock(T_STREAM))
    ledger.enrol("m1")
    bonus = ledger.bonus("m1", "signup", "m1").entry
    answers = DynamoDBNpsAnswers()
    first = NpsAnswer("m1", "s1", 6, T_STREAM, "2026-03", None, "bronze", "slow")
    again = NpsAnswer("m1", "s1", 9, T_STREAM + timedelta(days=40), "2026-04", "new", "bronze")
    assert answers.save(first)
    first_item = NpsAnswerItem.get(member_pk("m1"), "NPS#s1")
    assert answers.save(again)
    entry_items = EntryItem.query(member_pk("m1"), EntryItem.sk.startswith(ENTRY_PREFIX))
    member, answer = MemberItem.get(member_pk("m1"), MEMBER_SK), NpsAnswerItem.get(member_pk("m1"), "NPS#s1")
    event = stream_event(member, *entry_items, answer)
    replaced = event["Records"][-1]
    replaced["eventName"], replaced["dynamodb"]["OldImage"] = "MODIFY", first_item.serialize()
    # When the KPI counting's filter and reading see the batch
    kpi_filters = load_template()["Resources"]["KpiFunction"]["Properties"]["Events"]["NewEntries"]["Properties"]
    patterns = [json.loads(f["Pattern"]) for f in kpi_filters["FilterCriteria"]["Filters"]]
    assert all(any(matches(pattern, record) for pattern in patterns) for record in event["Records"])
    changes = kpi_changes(event)
    # Then it learns the member who joined, the entry written, and the answer with the one it replaced, whole
    assert changes.enrolled == [("m1", ledger.summary("m1").enrolled_at)]
    assert changes.entries == [bonus]
    assert changes.answers == [(again, first)]


def test_the_stream_gives_the_kpis_offers_decided_and_not_those_being_sent(moto_table: str) -> None:
    # Given a win-back offer held out on e-mail, and one being sent (claimed, not decided yet) then sent
    records = DynamoDBOfferRecords()
    decided = {"decided_at": T_STREAM, "trigger": "win_back", "template_key": "win_back", "request": "{}"}
    held_out = SendRecord("m1", "win_back#2026-03-02", "email", Status.HOLDOUT, **decided)  # type: ignore[arg-type]
    sending = SendRecord("m2", "win_back#2026-03-02", "email", Status.SENDING, **decided)  # type: ignore[arg-type]
    sent = SendRecord("m2", "win_back#2026-03-02", "email", Status.SENT, **decided)  # type: ignore[arg-type]
    tasked = records._item(sent, "req-1")
    tasked.task_state = "pushed"  # later: its CRM Task recorded, the decision unchanged
    event = stream_event(*(records._item(record, "req-1") for record in (held_out, sending, sent)), tasked)
    event["Records"][2]["eventName"] = "MODIFY"
    event["Records"][2]["dynamodb"]["OldImage"] = records._item(sending, "req-1").serialize()
    event["Records"][3]["eventName"] = "MODIFY"
    event["Records"][3]["dynamodb"]["OldImage"] = records._item(sent, "req-1").serialize()
    # When the KPI counting's filter and reading see the batch
    kpi_filters = load_template()["Resources"]["KpiFunction"]["Properties"]["Events"]["NewEntries"]["Properties"]
    patterns = [json.loads(f["Pattern"]) for f in kpi_filters["FilterCriteria"]["Filters"]]
    passed = [r for r in event["Records"] if any(matches(pattern, r) for pattern in patterns)]
    # Then the decisions reach it, whole; the one being sent and the Task's change after the decision do not
    assert kpi_changes({"Records": passed}).offers == [held_out, sent]


def test_the_stream_gives_the_kpis_members_moving_between_tiers_and_segments(moto_table: str) -> None:
    # Given a member's item before and after a review that put them in a segment and a tier they reached
    at = T_STREAM + timedelta(days=3)
    before = MemberItem(member_pk("m1"), MEMBER_SK, member_id="m1", enrolled_at=T_STREAM, segment=None)
    after = MemberItem(member_pk("m1"), MEMBER_SK, member_id="m1", enrolled_at=T_STREAM, segment="new", segment_at=at,
                       tier="silver", tier_changed_at=at)  # fmt: skip
    balance_only = MemberItem(member_pk("m2"), MEMBER_SK, member_id="m2", enrolled_at=T_STREAM)
    event = stream_event(after, balance_only)
    for record, old in zip(event["Records"], (before, balance_only), strict=True):
        record["eventName"], record["dynamodb"]["OldImage"] = "MODIFY", old.serialize()
    # When the KPI counting's filter and reading see the batch
    kpi_filters = load_template()["Resources"]["KpiFunction"]["Properties"]["Events"]["NewEntries"]["Properties"]
    patterns = [json.loads(f["Pattern"]) for f in kpi_filters["FilterCriteria"]["Filters"]]
    passed = [r for r in event["Records"] if any(matches(pattern, r) for pattern in patterns)]
    # Then the reviewed member's change passes (a balance change of a member never reviewed does not), as two moves
    assert len(passed) == 1
    untyped = {"dynamodb": {"NewImage": {"segment_at": [{"exists": True}]}}}  # exists matches leaves only
    assert not matches(untyped, passed[0])
    assert kpi_changes({"Records": passed}).moves == [
        MemberMove("m1", f"tier#{at.isoformat()}", at, False, None, "silver", "new", "new"),
        MemberMove("m1", f"segment#{at.isoformat()}", at, False, "silver", "silver", None, "new"),
    ]


def test_the_stream_gives_the_kpis_guest_orders_held_for_claiming(moto_table: str) -> None:
    # Given a guest's order held for claiming, as the webshop pipeline holds it
    order = simple_order("guest-1", T_STREAM, currency="SEK")
    DynamoDBDirectory().hold_guest_order("Guest@Example.se", order, T_STREAM + timedelta(days=30))
    (held,) = [item for item in LoyaltyItem.scan() if isinstance(item, HeldOrderItem)]
    event = stream_event(held)
    # When the KPI counting's filter and reading see it
    kpi_filters = load_template()["Resources"]["KpiFunction"]["Properties"]["Events"]["NewEntries"]["Properties"]
    patterns = [json.loads(f["Pattern"]) for f in kpi_filters["FilterCriteria"]["Filters"]]
    assert all(any(matches(pattern, record) for pattern in patterns) for record in event["Records"])
    # Then it learns the order and the shopper by their hashed e-mail, never the address
    ((buyer, found),) = kpi_changes(event).guest_orders
    assert found == order and "@" not in buyer and buyer == held.pk.removeprefix("HELD#")


def test_a_transaction_connection_follows_the_endpoint_the_environment_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from loyalty.adapters.dynamodb.models import bind_table, table_connection

    bind_table("loyalty-endpoints", region="eu-north-1", host=None)
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    without = table_connection()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:1")
    with_endpoint = table_connection()
    # a client keeps the endpoint it was made with: the one made without an endpoint is not handed out again
    assert with_endpoint is not without and with_endpoint.host == "http://127.0.0.1:1"
