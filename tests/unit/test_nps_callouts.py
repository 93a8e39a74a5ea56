"""NPS answers from a CRM Flow (`nps.response`): parsed as Flow sends them, kept once per member and survey with the
member's segment and tier at the time, counted in the month they were given, and a repeat changes nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from loyalty.crm.flow_callouts import MAX_COMMENT, NpsResponseCallout, parse_callout
from loyalty.crm.inbound import CrmInbound
from loyalty.errors import MalformedPayloadError, UnknownMemberError
from loyalty.fakes import Fakes
from loyalty.ledger.service import Ledger
from tests.conftest import FakeClock

EVENTS = Path(__file__).resolve().parents[1] / "events" / "salesforce"
ORG = "00D5g000004abcdEAA"
SECRET = "flow-secret"


def body(**changes: Any) -> dict[str, Any]:
    sent: dict[str, Any] = json.loads((EVENTS / "flow_nps_response.json").read_text())
    return sent | changes


def parse(sent: dict[str, Any]) -> NpsResponseCallout:
    callout = parse_callout(json.dumps(sent).encode())
    assert isinstance(callout, NpsResponseCallout)
    return callout


def test_the_answer_is_parsed_as_a_flow_sends_it() -> None:
    callout = parse(body())
    assert (callout.score, callout.survey_id, callout.comment) == (
        9, "a0X5g000002NpsQEAS", "Quick delivery, and the points came at once."
    )  # fmt: skip
    assert callout.responded_at == datetime(2026, 11, 21, 9, 10, 2, tzinfo=UTC)
    assert callout.contact.loyalty_member_id == "LM-000123"


@pytest.mark.parametrize(("sent", "read"), [(0, 0), ("10", 10), (7.0, 7), (" 3 ", 3)])
def test_a_score_comes_as_a_number_or_as_text(sent: Any, read: int) -> None:
    assert parse(body(score=sent)).score == read


@pytest.mark.parametrize("sent", [11, -1, 8.5, "nine", None, True])
def test_a_score_outside_0_to_10_or_not_whole_is_refused_naming_the_field(sent: Any) -> None:
    with pytest.raises(MalformedPayloadError, match="score"):
        parse(body(score=sent))


def test_a_blank_comment_is_none_and_a_long_one_is_cut() -> None:
    assert parse(body(comment="  ")).comment is None
    assert parse(body(comment=None)).comment is None
    assert parse(body(comment="x" * (MAX_COMMENT + 50))).comment == "x" * MAX_COMMENT


@pytest.mark.parametrize("missing", ["surveyId", "respondedAt", "score"])
def test_an_answer_without_its_survey_time_or_score_is_refused(missing: str) -> None:
    sent = body()
    del sent[missing]
    with pytest.raises(MalformedPayloadError, match=missing if missing != "score" else "score"):
        parse(sent)


@pytest.fixture
def inbound(fakes: Fakes, ledger: Ledger, clock: FakeClock) -> CrmInbound:
    return CrmInbound(
        ledger, fakes.directory, fakes.crm_states, fakes.offer_queue, ORG, lambda: SECRET, lambda: "token",
        clock=clock, nps_answers=fakes.nps_answers,
    )  # fmt: skip


def send(inbound: CrmInbound, sent: dict[str, Any], clock: FakeClock) -> dict[str, Any]:
    raw = json.dumps(sent).encode()
    t = str(int(clock.now.timestamp()))
    signature = hmac.new(SECRET.encode(), t.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return inbound.flow_callout(raw, {"x-loyalty-signature": f"t={t},v1={signature}"})


def test_an_answer_is_kept_once_with_the_members_segment_and_tier_and_counts_in_its_month(
    inbound: CrmInbound, ledger: Ledger, fakes: Fakes, clock: FakeClock
) -> None:
    # Given a member the Contact names, and the clock just after the answer
    clock.now = datetime(2026, 11, 21, 9, 12, 44, tzinfo=UTC)
    ledger.enrol("LM-000123", email="anna.lindqvist@example.se")
    # When the Flow sends the answer, and sends it again
    first = send(inbound, body(), clock)
    again = send(inbound, body(), clock)
    # Then it is kept once, as answered, with the member's tier at the time
    assert (first["duplicate"], again["duplicate"]) == (False, True)
    [kept] = fakes.nps_answers.answered_in("2026-11")
    summary = ledger.summary("LM-000123")
    assert (kept.member_id, kept.score, kept.month, kept.tier, kept.segment) == (
        "LM-000123", 9, "2026-11", summary.tier, summary.segment
    )  # fmt: skip
    # And a later answer to the same survey (a new request) replaces it; an older one changes nothing
    later = body(requestId="req-2", score=4, respondedAt="2026-11-21T09:11:00Z")
    older = body(requestId="req-3", score=0, respondedAt="2026-11-20T09:11:00Z")
    assert send(inbound, later, clock)["duplicate"] is False
    assert send(inbound, older, clock)["duplicate"] is True
    assert [a.score for a in fakes.nps_answers.answered_in("2026-11")] == [4]


def test_an_answer_at_the_months_end_counts_in_the_programmes_local_month(
    inbound: CrmInbound, ledger: Ledger, fakes: Fakes, clock: FakeClock
) -> None:
    clock.now = datetime(2026, 12, 1, 0, 5, tzinfo=UTC)
    ledger.enrol("LM-000123")
    send(inbound, body(respondedAt="2026-11-30T23:30:00Z"), clock)  # already 1 December in Stockholm
    assert [a.month for a in fakes.nps_answers.answered_in("2026-12")] == ["2026-12"]
    assert fakes.nps_answers.answered_in("2026-11") == []


def test_an_answer_for_no_member_or_from_the_future_is_refused_and_nothing_kept(
    inbound: CrmInbound, ledger: Ledger, fakes: Fakes, clock: FakeClock
) -> None:
    clock.now = datetime(2026, 11, 21, 9, 12, 44, tzinfo=UTC)
    with pytest.raises(UnknownMemberError):
        send(inbound, body(), clock)
    ledger.enrol("LM-000123")
    with pytest.raises(MalformedPayloadError, match="respondedAt"):
        send(inbound, body(respondedAt="2026-11-21T10:00:00Z"), clock)
    assert fakes.nps_answers.answered_in("2026-11") == []
