"""A member under review, blocked by a CRM user's Flow, on the ports' fakes: their orders are recorded earning
nothing, with the reason; they cannot redeem nor get a bonus; lifting the block lets them earn again; the
member API shows it. And a member who leaves: earning stops, the points can be spent during the notice, then
what is left is forfeited and the personal data erased."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import pytest

from loyalty.crm.fields import contact_fields
from loyalty.crm.inbound import CrmInbound
from loyalty.errors import MalformedPayloadError, MemberBlockedError, RedemptionRefusedError
from loyalty.fakes import Fakes
from loyalty.ledger.member_view import member_view
from loyalty.ledger.service import Ledger
from tests.conftest import FakeClock
from tests.orders import simple_order

EVENTS = Path(__file__).resolve().parents[1] / "events" / "salesforce"
SECRET = "flow-secret"


@pytest.fixture
def inbound(fakes: Fakes, ledger: Ledger, clock: FakeClock) -> CrmInbound:
    return CrmInbound(
        ledger, fakes.directory, fakes.crm_states, fakes.offer_queue, "00D5g000004abcdEAA", lambda: SECRET,
        lambda: "token", clock=clock,
    )  # fmt: skip


def send(inbound: CrmInbound, clock: FakeClock, **changes: Any) -> dict[str, Any]:
    sent = json.loads((EVENTS / "flow_member_erase.json").read_text()) | changes
    raw = json.dumps(sent).encode()
    t = str(int(clock.now.timestamp()))
    signature = hmac.new(SECRET.encode(), t.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return inbound.flow_callout(raw, {"x-loyalty-signature": f"t={t},v1={signature}"})


def test_a_blocked_member_earns_and_spends_nothing_until_the_block_is_lifted(
    inbound: CrmInbound, ledger: Ledger, clock: FakeClock
) -> None:
    member_id = ledger.enrol("LM-000123", email="anna.lindqvist@example.se")
    ledger.bonus(member_id, "signup", member_id)
    # When a CRM user blocks the member (Flow may send it twice)
    block = {"type": "member.block", "requestId": "block-1", "reason": "Unusual refunds"}
    assert send(inbound, clock, **block)["duplicate"] is False
    assert send(inbound, clock, **block)["duplicate"] is True
    # Then an order is recorded earning nothing, with the reason; redeeming and bonuses are refused
    entry = ledger.accrue(member_id, simple_order("o1", clock.now)).entry
    assert (entry.pending, entry.qualifying) == (0, 0)
    assert "no points while the membership is blocked: Unusual refunds" in entry.reason
    with pytest.raises(RedemptionRefusedError) as refused:
        ledger.redeem(member_id, 10, "r1", "voucher")
    assert refused.value.rule == "blocked"
    with pytest.raises(MemberBlockedError):
        ledger.bonus(member_id, "birthday", "2026")
    shown = member_view(ledger, member_id)
    assert shown["blocked"]["reason"].startswith("Unusual refunds (salesforce-user:")
    status = contact_fields(ledger.summary(member_id), ledger.rules)["Loyalty_Status__c"]
    assert status.startswith("Blocked (under review): Unusual refunds")  # what a CRM user sees on the Contact
    # When the block is lifted, the next order earns
    send(inbound, clock, type="member.unblock", requestId="unblock-1")
    assert ledger.accrue(member_id, simple_order("o2", clock.now)).entry.pending > 0
    assert member_view(ledger, member_id)["blocked"] is None
    assert contact_fields(ledger.summary(member_id), ledger.rules)["Loyalty_Status__c"] == "Active"
    assert ledger.redeem(member_id, 10, "r2", "voucher").entry.points == -10
    assert ledger.check_invariants(member_id) == []


def test_blocking_needs_a_reason(inbound: CrmInbound, ledger: Ledger, clock: FakeClock) -> None:
    ledger.enrol("LM-000123", email="anna.lindqvist@example.se")
    with pytest.raises(MalformedPayloadError, match="reason"):
        send(inbound, clock, type="member.block", reason=" ")


def test_a_member_who_leaves_spends_during_the_notice_then_forfeits_and_is_erased(
    inbound: CrmInbound, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    from datetime import UTC, datetime, timedelta

    from loyalty.jobs import ScheduledJobs
    from loyalty.offers.rules import load_offer_rules
    from loyalty.privacy import Privacy

    privacy = Privacy(ledger, fakes.directory, fakes.offer_records, fakes.nps_answers, fakes.exports,
                      fakes.dead_letters)  # fmt: skip
    jobs = ScheduledJobs(
        ledger, fakes.reviews, fakes.job_runs, fakes.offer_queue, load_offer_rules(), fakes.offer_records,
        erase_member=privacy.erase,
    )  # fmt: skip
    member_id = ledger.enrol("LM-000123", email="anna.lindqvist@example.se", first_name="Anna")
    ledger.bonus(member_id, "signup", member_id)
    earned = ledger.accrue(member_id, simple_order("o1", clock.now)).entry.pending
    # When the CRM says the member leaves (Flow may send it twice: the first notice stands)
    answer = send(inbound, clock, type="member.leave", requestId="leave-1")
    leaving_on = ledger.rules.local_date(clock.now) + timedelta(days=ledger.rules.enrolment.leave_notice_days)
    assert answer["leavingOn"] == leaving_on.isoformat()
    clock.advance(days=1)
    assert send(inbound, clock, type="member.leave", requestId="leave-1")["leavingOn"] == leaving_on.isoformat()
    # Then an order earns nothing, while the points they have can still be spent
    later = ledger.accrue(member_id, simple_order("o2", clock.now)).entry
    assert later.pending == 0 and f"leaves the programme on {leaving_on}" in later.reason
    assert ledger.redeem(member_id, 40, "r1", "voucher").entry.points == -40
    assert member_view(ledger, member_id)["leavingOn"] == leaving_on.isoformat()
    shown_on_contact = contact_fields(ledger.summary(member_id), ledger.rules)["Loyalty_Status__c"]
    assert shown_on_contact == f"Leaving the programme on {leaving_on.isoformat()}"
    # When their review falls due on the day they leave (the first order's points released by then)
    ledger.release("shopify:demo", "o1")
    assert ledger.summary(member_id).available == 60 + earned
    clock.now = datetime(leaving_on.year, leaving_on.month, leaving_on.day, 3, tzinfo=UTC)
    jobs.review(member_id, leaving_on)
    # Then what they had is forfeited by the programme and their personal data erased
    summary = ledger.summary(member_id)
    assert (summary.available, summary.profile.email, summary.profile.first_name) == (0, None, None)
    forfeited = [e for e in ledger.entries(member_id) if e.source_key == f"adjustment#leave#{leaving_on}"]
    assert [(e.points, e.actor) for e in forfeited] == [(-(60 + earned), "programme")]
    assert ledger.check_invariants(member_id) == []
