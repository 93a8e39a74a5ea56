"""The holdout of programme offers: a stable share of the members each marketing offer is for, drawn again each
period; never for service messages or offers a CRM Flow asks for (tests/unit/test_offer_sender.py: what the
sender does for a member held out)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from pydantic import ValidationError

from loyalty.offers.programme import programme_request
from loyalty.offers.requests import OfferRequest, Trigger
from loyalty.offers.rules import Holdout, OfferRules, load_offer_rules

AT = datetime(2026, 11, 20, 10, tzinfo=UTC)


def win_back(rules: OfferRules, member_id: str, at: datetime = AT) -> OfferRequest:
    return programme_request(rules, Trigger.WIN_BACK, member_id, "2026-05-01", at.date(), at, {"reason": "120 days"})


def held_out(rules: OfferRules, request: OfferRequest) -> bool:
    return rules.holdout.holds_out(request, request.requested_at.date())


def test_about_the_configured_share_is_held_out_the_same_members_all_period_and_others_the_next() -> None:
    rules = load_offer_rules()
    assert rules.holdout.share == Decimal("0.10") and rules.holdout.period == "quarter"
    members = [f"member-{n:05d}" for n in range(4000)]
    held = {m for m in members if held_out(rules, win_back(rules, m))}
    assert 0.08 < len(held) / len(members) < 0.12
    # the same members all quarter (30 December is the quarter of 20 November), others the next quarter
    assert held == {m for m in members if held_out(rules, win_back(rules, m, datetime(2026, 12, 30, tzinfo=UTC)))}
    next_quarter = {m for m in members if held_out(rules, win_back(rules, m, datetime(2027, 1, 2, tzinfo=UTC)))}
    assert 0.08 < len(next_quarter) / len(members) < 0.12 and len(held & next_quarter) < len(held) / 3


def test_service_messages_and_crm_offers_are_never_held_out() -> None:
    everyone = load_offer_rules().model_copy(update={"holdout": Holdout(share=Decimal("0.5"), triggers=("win_back",))})
    requests = [
        programme_request(everyone, trigger, f"m{n}", "x", AT.date(), AT)
        for trigger in (Trigger.EXPIRY_WARNING, Trigger.TIER_UPGRADE, Trigger.BIRTHDAY)
        for n in range(200)
    ]
    assert not any(held_out(everyone, r) for r in requests)
    crm = [r.model_copy(update={"trigger": Trigger.CRM}) for r in (win_back(everyone, f"m{n}") for n in range(200))]
    assert not any(held_out(everyone, r) for r in crm)
    with pytest.raises(ValidationError, match="never held out: expiry_warning"):
        Holdout(share=Decimal("0.1"), triggers=("win_back", "expiry_warning"))
    with pytest.raises(ValidationError):
        Holdout(share=Decimal("0.6"), triggers=("win_back",))
