"""The rebuild for audit (python -m infra.kpis_rebuild) on the table (moto): the months' programme figures
recomputed from the ledger's entries, the members and the NPS answers equal what the counting added; a figure
that drifted is named, and --write puts the ledger's back and closes the months again."""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime
from decimal import Decimal

from infra.kpis_rebuild import main as rebuild
from loyalty.adapters.dynamodb.kpis import DynamoDBKpiStore, scan_ledger
from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
from loyalty.adapters.dynamodb.offer_records import DynamoDBOfferRecords
from loyalty.adapters.dynamodb.surveys import DynamoDBNpsAnswers
from loyalty.kpis.closing import KpiClosing
from loyalty.kpis.counting import KpiCounting
from loyalty.ledger.service import Ledger
from loyalty.offers.records import SendRecord, Status
from loyalty.ports.surveys import NpsAnswer
from loyalty.programme.rules import load_program
from tests.conftest import FakeClock
from tests.orders import simple_order


def run(*argv: str) -> tuple[int, str]:
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        code = rebuild(list(argv))
    return code, printed.getvalue()


def test_the_rebuild_finds_the_counted_figures_equal_and_puts_a_drifted_one_back(moto_table: str) -> None:
    # Given two months of members, orders, a redemption and an NPS answer, counted as the stream counts them
    clock = FakeClock(datetime(2026, 3, 2, 9, tzinfo=UTC))
    ledger = Ledger(DynamoDBLedgerStore(), load_program(), clock=clock)
    store = DynamoDBKpiStore()
    counting = KpiCounting(ledger, store, measured=("win_back",), conversion_days=14, rates={"SEK": Decimal(1)})
    for member in ("m1", "m2"):
        ledger.enrol(member)
        counting.count_enrolments([(member, clock.now)])
        ledger.bonus(member, "signup", member)
        ledger.accrue(member, simple_order(f"{member}-o1", clock.now, [("1", 2, "150.00")], currency="SEK"))
    # And a win-back offer in April: m1 held out, m2 sent it and ordering within its window
    clock.now = datetime(2026, 4, 1, 9, tzinfo=UTC)
    records = DynamoDBOfferRecords()
    decided = {"decided_at": clock.now, "trigger": "win_back", "template_key": "win_back", "request": "{}"}
    offers = [
        SendRecord(m, "win_back#2026-04-01", "email", s, **decided)
        for m, s in (("m1", Status.HOLDOUT), ("m2", Status.SENT))
    ]  # type: ignore[arg-type]
    for record in offers:
        records.decide(record, "req-1")
    counting.count_offers(offers)
    clock.now = datetime(2026, 4, 7, 9, tzinfo=UTC)
    ledger.redeem("m1", 40, "r1", "voucher")
    ledger.accrue("m2", simple_order("m2-o2", clock.now))
    answer = NpsAnswer("m1", "s1", 9, clock.now, "2026-04", None, "bronze")
    DynamoDBNpsAnswers().save(answer)
    counting.count_answers([(answer, None)])
    counting.count(ledger.entries("m1") + ledger.entries("m2"))
    KpiClosing(store).close("2026-03")
    found = scan_ledger(segments=2)
    assert (len(found.entries), len(found.enrolled), found.answers) == (
        len(ledger.entries("m1") + ledger.entries("m2")),
        2,
        [answer],
    )
    assert len(found.offers) == 2 and sorted(e.arm for e in found.exposures) == ["holdout", "offered"]
    assert store.month("2026-04")["programme"]["offer_converted#win_back#offered"] == 1  # m2's order in the window
    # When the rebuild recomputes them: they are equal
    code, printed = run("--table", moto_table)
    assert code == 0 and "equal the ledger's: OK" in printed
    # When a figure drifts (a counter added to by hand), the rebuild names the month and the figure
    store.add("by-hand", "2026-03", ("programme",), {"orders": 5, "members_enrolled": 1})
    code, printed = run("--table", moto_table, "--from", "2026-01", "--to", "2026-06")
    assert code == 1 and "2026-03: members_enrolled 3 (recomputed 2), orders 7 (recomputed 2)" in printed
    # And --write puts the ledger's figures back, and March's close with them
    assert run("--table", moto_table, "--write")[0] == 1
    assert run("--table", moto_table)[0] == 0
    assert store.month("2026-03")["close"]["members"] == 2
