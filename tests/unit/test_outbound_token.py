"""The Outbound Message door: the org id in the body is public, so the endpoint URL's token is required too."""

from __future__ import annotations

from pathlib import Path

import pytest

from loyalty.crm.inbound import CrmInbound
from loyalty.crm.outbound_messages import verify_token
from loyalty.errors import InvalidSignatureError
from loyalty.fakes import Fakes
from loyalty.ledger.service import Ledger

EVENTS = Path(__file__).resolve().parents[1] / "events" / "salesforce"
ORG = "00D5g000004abcdEAA"  # the org of the captured message
TOKEN = "k3M9pQ2vX7sLw4Rt8Yb1Nz6Hc5Jd0Fg"


@pytest.fixture
def inbound(fakes: Fakes, ledger: Ledger) -> CrmInbound:
    return CrmInbound(
        ledger, fakes.directory, fakes.crm_states, fakes.offer_queue, ORG, lambda: "callout-secret", lambda: TOKEN
    )


def body() -> bytes:
    return (EVENTS / "outbound_contact.xml").read_bytes()


def test_the_token_in_the_endpoint_url_lets_the_message_in(ledger: Ledger, inbound: CrmInbound) -> None:
    member = ledger.enrol("LM-000123", email="anna.lindqvist@example.se")
    inbound.outbound_message(body(), TOKEN)
    assert ledger.summary(member).profile.crm_contact_id == "0035g00000Kp3XyAAJ"


@pytest.mark.parametrize(
    "presented",
    [None, "", TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "é" * len(TOKEN), "\udcff", "00D5g000004abcdEAA"],
    ids=["absent", "empty", "shorter", "longer", "other-case", "not-ascii", "lone-surrogate", "the-org-id"],
)
def test_without_the_token_nothing_is_applied(ledger: Ledger, inbound: CrmInbound, presented: str | None) -> None:
    # Given a member the message is about
    member = ledger.enrol("LM-000123", email="anna.lindqvist@example.se")
    before = ledger.summary(member).profile
    # When a body with the right org id comes without the token
    with pytest.raises(InvalidSignatureError) as refused:
        inbound.outbound_message(body(), presented)
    # Then it is refused naming the parameter, never the token, and nothing changed
    assert "`token`" in str(refused.value) and TOKEN not in str(refused.value)
    assert ledger.summary(member).profile == before


def test_a_programme_without_a_token_refuses_every_message() -> None:
    with pytest.raises(InvalidSignatureError):
        verify_token("", "")
