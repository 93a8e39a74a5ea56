"""Flow HTTP callouts: the secret header, the timestamped signature, and parsing real bodies into models."""

import hashlib
import hmac
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from loyalty.crm.flow_callouts import (
    Adjustment,
    CalloutContact,
    CalloutSource,
    MemberEnrolCallout,
    OfferRequestedCallout,
    PointsAdjustmentCallout,
    TierOverrideCallout,
    accepted_response,
    parse_callout,
    verify_callout,
)
from loyalty.errors import InvalidSignatureError, MalformedPayloadError

EVENTS = Path(__file__).resolve().parents[1] / "events" / "salesforce"
SECRET = "flow-Kd82!qLz0pW7xR3vN5t"
NOW = datetime(2026, 3, 2, 9, 20, 12, tzinfo=UTC)
PERSONAL = ["anna", "lindqvist", "mikko", "virtanen", "example.", "LM-000123", "damaged"]


def raw(name: str) -> bytes:
    return (EVENTS / name).read_bytes()


def payload(name: str) -> Any:
    return json.loads(raw(name))


def sign(body: bytes, at: datetime = NOW, secret: str = SECRET) -> str:
    t = str(int(at.timestamp()))
    return f"t={t},v1={hmac.new(secret.encode(), t.encode() + b'.' + body, hashlib.sha256).hexdigest()}"


def parse(body: Any) -> Any:
    return parse_callout(json.dumps(body).encode())


def refused(body: Any) -> str:
    """The error message for a body that must be refused; it must not quote personal data."""
    with pytest.raises(MalformedPayloadError) as caught:
        parse(body)
    message = str(caught.value)
    assert not [word for word in PERSONAL if word.lower() in message.lower()], message
    return message


# --- authentication ---------------------------------------------------------------------------------------


def test_secret_header_is_accepted() -> None:
    # Given a callout carrying the External Credential's secret
    body = raw("flow_points_adjustment.json")
    # When it is verified / Then nothing is raised
    verify_callout(body, {"x-loyalty-secret": SECRET}, SECRET, NOW)


@pytest.mark.parametrize(
    "headers",
    [
        {"x-loyalty-secret": "flow-Kd82!qLz0pW7xR3vN5"},  # one character short
        {"x-loyalty-secret": SECRET.upper()},
        {"x-loyalty-secret": ""},
        {"x-loyalty-secret": "flöw"},  # non-ASCII must not crash the comparison
        {},
        {"content-type": "application/json"},
    ],
)
def test_wrong_or_missing_secret_is_refused(headers: dict[str, str]) -> None:
    # Given a callout with a wrong or no secret and no signature / When verified / Then refused
    with pytest.raises(InvalidSignatureError):
        verify_callout(raw("flow_points_adjustment.json"), headers, SECRET, NOW)


def test_empty_configured_secret_refuses_everything() -> None:
    # Given no secret configured, and a caller sending an empty secret and a signature made with it
    body = raw("flow_points_adjustment.json")
    headers = {"x-loyalty-secret": "", "x-loyalty-signature": sign(body, secret="")}
    # When verified / Then refused
    with pytest.raises(InvalidSignatureError):
        verify_callout(body, headers, "", NOW)


def test_signature_over_the_exact_bytes_is_accepted() -> None:
    # Given a body signed by the Apex action one second ago
    body = raw("flow_member_enrol.json")
    header = sign(body, at=NOW - timedelta(seconds=1))
    # When it is verified / Then nothing is raised
    verify_callout(body, {"x-loyalty-signature": header}, SECRET, NOW)


@pytest.mark.parametrize("age", [300, -300])
def test_signature_at_the_edge_of_the_tolerance_is_accepted(age: int) -> None:
    # Given a signature exactly 300 s old, or 300 s in the future (clock skew)
    body = raw("flow_member_enrol.json")
    # When verified / Then accepted
    verify_callout(body, {"x-loyalty-signature": sign(body, at=NOW - timedelta(seconds=age))}, SECRET, NOW)


@pytest.mark.parametrize("age", [301, -301, 86_400])
def test_stale_or_future_signature_is_refused(age: int) -> None:
    # Given a valid signature made 301 s ago, 301 s in the future, or a day ago (a replay)
    body = raw("flow_member_enrol.json")
    header = sign(body, at=NOW - timedelta(seconds=age))
    # When verified / Then refused
    with pytest.raises(InvalidSignatureError):
        verify_callout(body, {"x-loyalty-signature": header}, SECRET, NOW)


def test_tolerance_can_be_narrowed() -> None:
    # Given a signature 10 s old and a tolerance of 5 s / When verified / Then refused
    body = raw("flow_member_enrol.json")
    with pytest.raises(InvalidSignatureError):
        verify_callout(body, {"x-loyalty-signature": sign(body, NOW - timedelta(seconds=10))}, SECRET, NOW, 5)


def test_tampered_body_is_refused() -> None:
    # Given a valid signature and the body with 250 points changed to 950
    body = raw("flow_points_adjustment.json")
    header = sign(body)
    tampered = body.replace(b'"points": 250', b'"points": 950')
    assert tampered != body
    # When verified / Then refused
    with pytest.raises(InvalidSignatureError):
        verify_callout(tampered, {"x-loyalty-signature": header}, SECRET, NOW)


def test_any_of_several_v1_signatures_may_match() -> None:
    # Given a header with a signature by an old secret, a garbled one, then one by the current secret
    body = raw("flow_points_adjustment.json")
    t, current = sign(body).split(",")
    old = sign(body, secret="rotated-out").split(",")[1]
    header = f"{t}, {old}, v1=zz, {current}"
    # When verified / Then accepted
    verify_callout(body, {"x-loyalty-signature": header}, SECRET, NOW)


def test_signature_by_another_secret_is_refused() -> None:
    # Given a header signed only with a rotated-out secret / When verified / Then refused
    body = raw("flow_points_adjustment.json")
    with pytest.raises(InvalidSignatureError):
        verify_callout(body, {"x-loyalty-signature": sign(body, secret="rotated-out")}, SECRET, NOW)


def _malformed_headers() -> list[str]:
    good = sign(raw("flow_points_adjustment.json"))
    t, v1 = good.split(",")
    return [
        "",
        "garbage",
        v1,  # no timestamp
        t,  # no signature
        f"{t},{t},{v1}",  # two timestamps
        f"t=-{t[2:]},{v1}",
        f"t={t[2:]}.0,{v1}",
        f"t=١٧٧٢٤٤٣٢١٢,{v1}",  # non-ASCII digits
        f"{t},v1=",
        f"{t},v1=not-hex",
        f"{t},v2={v1[3:]}",  # an unknown scheme is not v1
        f"{t};{v1}",
    ]


@pytest.mark.parametrize("header", _malformed_headers())
def test_malformed_signature_header_is_refused(header: str) -> None:
    # Given a signature header that is not t=<seconds>,v1=<hex> / When verified / Then refused, never crashed
    with pytest.raises(InvalidSignatureError):
        verify_callout(raw("flow_points_adjustment.json"), {"x-loyalty-signature": header}, SECRET, NOW)


def test_wrong_secret_header_does_not_spoil_a_valid_signature() -> None:
    # Given a stale External Credential secret but a valid signature / When verified / Then accepted
    body = raw("flow_points_adjustment.json")
    verify_callout(body, {"x-loyalty-secret": "stale", "x-loyalty-signature": sign(body)}, SECRET, NOW)


def test_naive_now_is_a_programming_error() -> None:
    # Given a naive clock reading / When verifying / Then ValueError (not a silent local-time comparison)
    with pytest.raises(ValueError, match="timezone-aware"):
        verify_callout(b"{}", {"x-loyalty-secret": SECRET}, SECRET, NOW.replace(tzinfo=None))


def test_refusal_does_not_echo_the_headers() -> None:
    # Given a wrong secret / When refused / Then the message does not quote it
    with pytest.raises(InvalidSignatureError) as caught:
        verify_callout(b"{}", {"x-loyalty-secret": "guess-Kd82"}, SECRET, NOW)
    assert "guess" not in str(caught.value) and SECRET not in str(caught.value)


# --- parsing ----------------------------------------------------------------------------------------------


def test_points_adjustment_is_parsed_exactly() -> None:
    # Given a goodwill adjustment as the Flow sends it
    # When it is parsed
    callout = parse_callout(raw("flow_points_adjustment.json"))
    # Then every value is read
    assert isinstance(callout, PointsAdjustmentCallout)
    assert callout.schema_version == 1
    assert callout.type == "points.adjustment"
    assert callout.request_id == "0Fo5g00000aZ3kQ-8d1c2e4f"
    assert callout.org_id == "00D5g000004abcdEAA"
    assert callout.requested_at == datetime(2026, 3, 2, 9, 20, 11, tzinfo=UTC)
    assert callout.source == CalloutSource(
        flow_api_name="Loyalty_Goodwill_Points", requested_by_user_id="0055g00000B2rQsAAJ"
    )
    assert callout.contact == CalloutContact(
        id="0035g00000Kp3XyAAJ", loyalty_member_id="LM-000123", email="anna.lindqvist@example.se"
    )
    assert callout.adjustment == Adjustment(points=250, reason="Goodwill: parcel arrived damaged (case 00001234)")


def test_member_enrol_is_parsed_and_its_unknown_field_ignored() -> None:
    # Given an enrolment with a field we do not know (flowInterviewGuid) and a null member id
    assert "flowInterviewGuid" in payload("flow_member_enrol.json")
    # When it is parsed
    callout = parse_callout(raw("flow_member_enrol.json"))
    # Then it is an enrolment, the unknown field is dropped, and null is None
    assert isinstance(callout, MemberEnrolCallout)
    assert callout.request_id == "0Fo5g00000aZ9wT-3b7a90c1"
    assert callout.requested_at == datetime(2026, 3, 2, 10, 2, 47, tzinfo=UTC)
    assert callout.source.flow_api_name == "Loyalty_Enrol_Contact"
    assert callout.contact == CalloutContact(
        id="0035g00000LbW9eAAF", loyalty_member_id=None, email="mikko.virtanen@example.fi"
    )
    assert "flowInterviewGuid" not in callout.model_dump() and not hasattr(callout, "flowInterviewGuid")


def test_callouts_are_frozen() -> None:
    # Given a parsed callout / When a field is changed / Then it is refused
    callout = parse_callout(raw("flow_points_adjustment.json"))
    with pytest.raises(ValueError):
        callout.request_id = "other"  # type: ignore[misc]


def test_negative_points_are_a_debit() -> None:
    # Given a correction removing points / When parsed / Then the negative amount is kept
    body = payload("flow_points_adjustment.json")
    body["adjustment"]["points"] = -40
    assert parse(body).adjustment.points == -40


@pytest.mark.parametrize(("points", "expected"), [(250, 250), ("250", 250), (" -40 ", -40), (250.0, 250), ("+7", 7)])
def test_points_come_as_a_number_or_as_text_of_digits(points: Any, expected: int) -> None:
    # Given points as Flow sends them: a JSON number, text of digits, a Number variable with decimals
    body = payload("flow_points_adjustment.json")
    body["adjustment"]["points"] = points
    # When parsed / Then the integer is read
    assert parse(body).adjustment.points == expected


@pytest.mark.parametrize(
    ("points", "error"),
    [(12.5, "integer"), (True, "integer"), ("12.5", "integer"), ("250 points", "integer"), ("1" * 19, "integer")],
)
def test_points_that_are_not_an_integer_are_refused(points: Any, error: str) -> None:
    # Given points as a fraction, a boolean, or text that is not a whole number
    body = payload("flow_points_adjustment.json")
    body["adjustment"]["points"] = points
    # When parsed / Then refused, naming the field
    message = refused(body)
    assert "adjustment.points" in message and error in message


@pytest.mark.parametrize("points", [1_000_001, -1_000_001, 10**18])
def test_points_beyond_a_million_either_way_are_refused(points: int) -> None:
    body = payload("flow_points_adjustment.json")
    body["adjustment"]["points"] = points
    assert "adjustment.points" in refused(body)


def test_zero_points_are_refused() -> None:
    # Given an adjustment of zero points / When parsed / Then refused, naming the field
    body = payload("flow_points_adjustment.json")
    body["adjustment"]["points"] = 0
    assert "adjustment.points: Value error, must not be zero" in refused(body)


def test_unknown_type_is_refused_without_quoting_it() -> None:
    # Given a type we do not handle (yet), whose value looks like personal data
    body = payload("flow_points_adjustment.json")
    body["type"] = "anna.lindqvist@example.se"
    # When parsed / Then refused as an unknown callout type
    assert "unknown callout type" in refused(body)


def test_missing_type_is_refused() -> None:
    # Given a body without a type / When parsed / Then refused, naming the field
    body = payload("flow_member_enrol.json")
    del body["type"]
    assert "type: required" in refused(body)


@pytest.mark.parametrize(
    ("change", "path"),
    [
        (lambda b: b.update(schemaVersion=2), "schemaVersion"),
        (lambda b: b.update(schemaVersion="2"), "schemaVersion"),
        (lambda b: b.update(schemaVersion="one"), "schemaVersion"),
        (lambda b: b.update(schemaVersion=True), "schemaVersion"),
        (lambda b: b.update(requestId=""), "requestId"),
        (lambda b: b.update(requestId="x" * 101), "requestId"),
        (lambda b: b.update(requestId=12345), "requestId"),
        (lambda b: b.update(requestedAt="2026-03-02T09:20:11"), "requestedAt"),
        (lambda b: b.update(requestedAt="yesterday"), "requestedAt"),
        (lambda b: b.pop("orgId"), "orgId"),
        (lambda b: b.update(source={"flowApiName": "Loyalty_Goodwill_Points"}), "source.requestedByUserId"),
        (lambda b: b.update(source="Loyalty_Goodwill_Points"), "source"),
        (lambda b: b["contact"].update(email={"value": "anna.lindqvist@example.se"}), "contact.email"),
        (lambda b: b["contact"].update(id=3.5), "contact.id"),
        (lambda b: b.update(contact={"id": None, "loyaltyMemberId": "", "email": None}), "contact"),
        (lambda b: b.update(contact={}), "contact"),
        (lambda b: b["adjustment"].update(reason=""), "adjustment.reason"),
        (lambda b: b["adjustment"].update(reason="r" * 256), "adjustment.reason"),
        (lambda b: b["adjustment"].update(reason=["damaged"]), "adjustment.reason"),
        (lambda b: b.pop("adjustment"), "adjustment"),
    ],
)
def test_wrong_shape_is_refused_naming_the_field(change: Any, path: str) -> None:
    # Given the adjustment with one field missing or of the wrong shape
    body = payload("flow_points_adjustment.json")
    change(body)
    # When parsed / Then refused, naming the field path
    assert f"{path}:" in refused(body)


def test_contact_identified_by_member_id_alone_is_enough_for_an_adjustment() -> None:
    # Given an adjustment whose contact has only a member id (blank strings count as absent)
    body = payload("flow_points_adjustment.json")
    body["contact"] = {"id": "", "loyaltyMemberId": "LM-000123"}
    # When parsed / Then accepted, the blank id being None
    assert parse(body).contact == CalloutContact(id=None, loyalty_member_id="LM-000123", email=None)


def test_enrolment_needs_an_email() -> None:
    # Given an enrolment with a contact id and member id but no e-mail
    body = payload("flow_member_enrol.json")
    body["contact"] = {"id": "0035g00000LbW9eAAF", "loyaltyMemberId": "LM-000777", "email": None}
    # When parsed / Then refused, naming the contact
    assert "contact: Value error, email is required to enrol" in refused(body)


@pytest.mark.parametrize("body", [b"", b"{", b"[]", b'"member.enrol"', b"null", b"\xff\xfe", b'{"type": 1}'])
def test_body_that_is_not_a_json_object_is_refused(body: bytes) -> None:
    # Given a body that is not a JSON object with a string type / When parsed / Then MalformedPayloadError
    with pytest.raises(MalformedPayloadError, match=r"^flow callout: "):
        parse_callout(body)


# --- the answer -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("duplicate", [True, False])
def test_accepted_response(duplicate: bool) -> None:
    # When a callout is accepted / Then the answer echoes its request id and says whether it was a duplicate
    assert accepted_response("0Fo5g00000aZ3kQ-8d1c2e4f", duplicate) == {
        "status": "accepted",
        "requestId": "0Fo5g00000aZ3kQ-8d1c2e4f",
        "duplicate": duplicate,
    }


# --- tier overrides and offer requests ---------------------------------------------------------------------


def test_tier_override_is_parsed_with_its_date() -> None:
    callout = parse_callout(raw("flow_tier_override.json"))
    assert isinstance(callout, TierOverrideCallout)
    assert (callout.override.tier, callout.override.valid_until) == ("Gold", date(2027, 3, 31))
    assert callout.override.reason == "Ambassador for the spring campaign"


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"validUntil": "31/03/2027"}, "override.validUntil"),
        ({"reason": ""}, "override.reason"),
        ({"tier": 3}, "override.tier"),
    ],
)
def test_bad_tier_override_is_refused_naming_the_field(change: dict[str, Any], path: str) -> None:
    body = payload("flow_tier_override.json")
    body["override"].update(change)
    assert path in refused(body)


def test_offer_request_is_parsed_with_contact_offer_and_consent() -> None:
    # Given a Flow's offer request (with a field we do not know, ignored)
    callout = parse_callout(raw("flow_offer_requested.json"))
    # Then every field arrives as the model says
    assert isinstance(callout, OfferRequestedCallout)
    assert (callout.contact.first_name, callout.contact.mobile_phone, callout.contact.locale) == (
        "Anna",
        "+46701234567",
        "sv_SE",
    )
    offer = callout.offer
    assert (offer.code, offer.kind, offer.multiplier, offer.bonus_points) == (
        "BDAY-DOUBLE",
        "points_multiplier",
        "2",
        None,
    )
    assert (offer.valid_from, offer.valid_until, offer.channels, offer.template_key) == (
        date(2026, 11, 20),
        date(2026, 12, 20),
        ["email", "sms"],
        "birthday",
    )
    assert (callout.consent.email, callout.consent.sms) == (True, False)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "points_multiplier", "multiplier": None}, "multiplier above 1"),
        ({"kind": "points_multiplier", "multiplier": "1"}, "multiplier above 1"),
        ({"kind": "points_multiplier", "multiplier": 2.555}, "offer.multiplier"),
        ({"kind": "points_multiplier", "multiplier": 0}, "multiplier above 1"),
        ({"kind": "bonus_points", "bonusPoints": None, "multiplier": None}, "needs bonusPoints"),
        ({"kind": "bonus_points", "bonusPoints": 0, "multiplier": 0}, "needs bonusPoints"),
        ({"kind": "bonus_points", "bonusPoints": -5}, "offer.bonusPoints"),
        ({"kind": "bonus_points", "bonusPoints": "lots"}, "offer.bonusPoints"),
        ({"kind": "cashback"}, "offer.kind"),
        ({"validUntil": "2026-11-01"}, "validUntil is before validFrom"),
        ({"channels": ["email", "fax"]}, "offer.channels[1]"),
        ({"templateKey": "Birthday Mail"}, "offer.templateKey"),
    ],
)
def test_bad_offer_request_is_refused_naming_the_problem(change: dict[str, Any], message: str) -> None:
    body = payload("flow_offer_requested.json")
    body["offer"].update(change)
    assert message in refused(body)


def test_an_integer_multiplier_is_read_as_exact_text() -> None:
    body = payload("flow_offer_requested.json")
    body["offer"]["multiplier"] = 3
    assert parse(body).offer.multiplier == "3"


@pytest.mark.parametrize("version", [1, "1", " 1 "])
def test_schema_version_1_comes_as_a_number_or_as_text(version: Any) -> None:
    body = payload("flow_offer_requested.json")
    body["schemaVersion"] = version
    assert parse(body).schema_version == 1


@pytest.mark.parametrize("unused", [0, "0", "", None, 0.0])
def test_a_number_the_offers_kind_does_not_use_may_travel_as_0(unused: Any) -> None:
    # Given a points_multiplier offer whose unused bonusPoints is 0 (Flow has no nulls), and the converse
    multiplier = payload("flow_offer_requested.json")
    multiplier["offer"]["bonusPoints"] = unused
    bonus = payload("flow_offer_requested.json")
    bonus["offer"].update(kind="bonus_points", bonusPoints="500", multiplier=unused)
    # When parsed / Then the unused number is absent, the used one read
    first, second = parse(multiplier).offer, parse(bonus).offer
    assert (first.multiplier, first.bonus_points) == ("2", None)
    assert (second.multiplier, second.bonus_points) == (None, 500)


@pytest.mark.parametrize(("sent", "read"), [(1.5, "1.5"), ("1.5", "1.5"), (2, "2")])
def test_a_multiplier_comes_as_a_number_or_as_text(sent: Any, read: str) -> None:
    body = payload("flow_offer_requested.json")
    body["offer"]["multiplier"] = sent
    assert parse(body).offer.multiplier == read


def test_consent_comes_as_a_boolean_or_as_text() -> None:
    body = payload("flow_offer_requested.json")
    body["consent"] = {"email": "false", "sms": "TRUE"}
    consent = parse(body).consent
    assert (consent.email, consent.sms) == (False, True)
