"""Salesforce Outbound Messages: parsing a real-shaped SOAP body, organisation ids, and the acknowledgement."""

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from loyalty.crm.outbound_messages import (
    ContactNotification,
    acknowledgement,
    org_id_matches,
    parse_outbound_message,
    salesforce_id_18,
)
from loyalty.errors import MalformedPayloadError

EVENTS = Path(__file__).resolve().parents[1] / "events" / "salesforce"
ORG_15 = "00D5g000004abcd"
# Hand-worked suffix: chunks "00D5g" -> only "D" (index 2) is uppercase -> 0b00100 = 4 -> "E";
# "00000" -> 0 -> "A"; "4abcd" -> 0 -> "A". So the 18-character form ends in "EAA".
ORG_18 = "00D5g000004abcdEAA"
PERSONAL = ["anna", "lindqvist", "mikko", "virtanen", "example.", "+46", "1988", "LM-000123"]


def raw() -> bytes:
    return (EVENTS / "outbound_contact.xml").read_bytes()


def replaced(old: str, new: str) -> bytes:
    body = raw().decode()
    assert old in body  # the test edits something that is really there
    return body.replace(old, new, 1).encode()


def assert_no_personal_data(message: str) -> None:
    assert not [word for word in PERSONAL if word.lower() in message.lower()]


# --- parsing ----------------------------------------------------------------------------------------------


def test_message_envelope_fields_are_read() -> None:
    # Given an Outbound Message as Salesforce sends it, without a session id
    # When it is parsed
    message = parse_outbound_message(raw())
    # Then the envelope's ids and URLs are kept and the nil session id is None
    assert message.organization_id == ORG_18
    assert message.action_id == "04k5g000000KzQfAAK"
    assert message.enterprise_url == "https://fjallvind.my.salesforce.com/services/Soap/c/62.0/00D5g000004abcd"
    assert message.partner_url == "https://fjallvind.my.salesforce.com/services/Soap/u/62.0/00D5g000004abcd"
    assert message.session_id is None
    assert len(message.notifications) == 2


def test_every_field_of_a_full_contact_is_read() -> None:
    # Given the first notification, whose Contact has every field filled in
    # When it is parsed
    first = parse_outbound_message(raw()).notifications[0]
    # Then every value is exact, typed, and the time is UTC
    assert first == ContactNotification(
        notification_id="04l5g00000QmT7bAAF",
        contact_id="0035g00000Kp3XyAAJ",
        last_modified=datetime(2026, 3, 2, 9, 14, 3, tzinfo=UTC),
        loyalty_member_id="LM-000123",
        email="anna.lindqvist@example.se",
        mobile_phone="+46 70 123 45 67",
        birthdate=date(1988, 4, 17),
        has_opted_out_of_email=False,
        sms_opt_in=True,
        first_name="Anna",
        last_name="Lindqvist",
        locale="sv_SE",
    )
    assert first.last_modified.utcoffset() is not None


def test_nil_and_absent_fields_are_none() -> None:
    # Given the second notification: MobilePhone is xsi:nil, Birthdate and the member id are not sent
    # When it is parsed
    second = parse_outbound_message(raw()).notifications[1]
    # Then those are None, and the rest is read
    assert second.notification_id == "04l5g00000QmT7cAAF"
    assert second.contact_id == "0035g00000LbW9eAAF"
    assert second.last_modified == datetime(2026, 3, 2, 9, 14, 5, tzinfo=UTC)
    assert (second.mobile_phone, second.birthdate, second.loyalty_member_id) == (None, None, None)
    assert (second.has_opted_out_of_email, second.sms_opt_in) == (True, False)
    assert (second.email, second.locale) == ("mikko.virtanen@example.fi", "fi_FI")


def test_offset_time_is_converted_to_utc() -> None:
    # Given a LastModifiedDate with a +01:00 offset
    body = replaced("2026-03-02T09:14:03.000Z", "2026-03-02T10:14:03.000+01:00")
    # When it is parsed / Then it is the same instant, in UTC
    last_modified = parse_outbound_message(body).notifications[0].last_modified
    assert last_modified == datetime(2026, 3, 2, 9, 14, 3, tzinfo=UTC)
    assert last_modified.tzinfo == UTC


def test_session_id_is_kept_secret() -> None:
    # Given a message sent with a session id
    body = replaced('<SessionId xsi:nil="true"/>', "<SessionId>00D5g000004abcd!AQ4AQSecretToken</SessionId>")
    # When it is parsed
    message = parse_outbound_message(body)
    # Then the id is available on purpose only, and never in the message's repr
    assert message.session_id is not None
    assert message.session_id.get_secret_value() == "00D5g000004abcd!AQ4AQSecretToken"
    assert "SecretToken" not in repr(message) and "SecretToken" not in str(message)


@pytest.mark.parametrize(
    ("old", "new", "element"),
    [
        ("<OrganizationId>00D5g000004abcdEAA</OrganizationId>", "", "OrganizationId"),
        ("<Id>04l5g00000QmT7bAAF</Id>", "", "Notification[0].Id"),
        ("<sf:Id>0035g00000Kp3XyAAJ</sf:Id>", "", "Notification[0].sObject.Id"),
        ("<sf:LastModifiedDate>2026-03-02T09:14:05.000Z</sf:LastModifiedDate>", "", "Notification[1].sObject.Last"),
        ("2026-03-02T09:14:03.000Z", "2026-03-02T09:14:03", "Notification[0].sObject.LastModifiedDate"),
        ("<sf:Birthdate>1988-04-17</sf:Birthdate>", "<sf:Birthdate>17.04.1988</sf:Birthdate>", "Birthdate"),
        ("<sf:Loyalty_SMS_Opt_In__c>true<", "<sf:Loyalty_SMS_Opt_In__c>yes<", "Loyalty_SMS_Opt_In__c"),
        ('xsi:type="sf:Contact"', 'xsi:type="sf:Lead"', "Notification[0].sObject"),
    ],
)
def test_missing_or_invalid_element_is_named(old: str, new: str, element: str) -> None:
    # Given a message with a required element removed or a value Salesforce would never send
    body = replaced(old, new)
    # When it is parsed / Then MalformedPayloadError names the element, never a personal value
    with pytest.raises(MalformedPayloadError, match=re.escape(element)) as caught:
        parse_outbound_message(body)
    assert_no_personal_data(str(caught.value))


def test_envelope_without_body_is_malformed() -> None:
    # Given an envelope whose Body is misspelt
    body = raw().replace(b"soapenv:Body>", b"soapenv:Bdy>")
    # When it is parsed / Then the missing element is named
    with pytest.raises(MalformedPayloadError, match="Body is required"):
        parse_outbound_message(body)


def test_message_without_notifications_is_malformed() -> None:
    # Given a notifications call with no Notification in it
    body = raw()
    start, end = body.index(b"<Notification>"), body.rindex(b"</Notification>") + len(b"</Notification>")
    # When it is parsed / Then it is refused
    with pytest.raises(MalformedPayloadError, match="Notification is required"):
        parse_outbound_message(body[:start] + body[end:])


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml at all",
        b'<?xml version="1.0"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">',
        b"<a>Anna Lindqvist</b>",
        b"\xff\xfe<\x00a\x00/\x00>\x00",
    ],
)
def test_body_that_is_not_well_formed_xml_is_malformed(body: bytes) -> None:
    # Given a body that is not UTF-8 XML / When it is parsed / Then it is refused without quoting it
    with pytest.raises(MalformedPayloadError) as caught:
        parse_outbound_message(body)
    assert_no_personal_data(str(caught.value))


def test_other_root_element_is_malformed() -> None:
    # Given well-formed XML that is not a SOAP envelope
    body = b'<notifications xmlns="http://soap.sforce.com/2005/09/outbound"/>'
    # When it is parsed / Then it is refused
    with pytest.raises(MalformedPayloadError, match="soapenv:Envelope"):
        parse_outbound_message(body)


@pytest.mark.parametrize(
    "declaration",
    [
        '<!DOCTYPE lol [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>',
        '<!DOCTYPE x SYSTEM "file:///etc/passwd">',
        "<!doctype x>",
    ],
)
def test_doctype_and_entity_declarations_are_refused(declaration: str) -> None:
    # Given a real message with a DOCTYPE (entity expansion, external entity) after the XML declaration
    body = replaced('<?xml version="1.0" encoding="UTF-8"?>', '<?xml version="1.0" encoding="UTF-8"?>' + declaration)
    # When it is parsed / Then it is refused before any parsing
    with pytest.raises(MalformedPayloadError, match="DOCTYPE and ENTITY"):
        parse_outbound_message(body)


def test_doctype_hidden_behind_another_declared_encoding_is_refused() -> None:
    # Given a UTF-8 body whose XML declaration claims another encoding, with a DOCTYPE
    body = b'<?xml version="1.0" encoding="ISO-8859-1"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    # When it is parsed / Then it is still refused
    with pytest.raises(MalformedPayloadError, match="DOCTYPE"):
        parse_outbound_message(body)


# --- organisation ids -------------------------------------------------------------------------------------


def test_18_character_form_is_computed() -> None:
    # Given a 15-character org id / When its 18-character form is computed / Then it matches the hand-worked one
    assert salesforce_id_18(ORG_15) == ORG_18
    # and a chunk with several capitals sets several bits: "KzQf" in "0KzQf" -> bits 1 and 3 -> 10 -> "K"
    assert salesforce_id_18("04k5g000000KzQf") == "04k5g000000KzQfAAK"
    assert salesforce_id_18("ABCDEABCDEABCDE") == "ABCDEABCDEABCDE555"  # all five bits -> 31 -> "5"


@pytest.mark.parametrize(
    ("expected", "received"),
    [(ORG_15, ORG_15), (ORG_18, ORG_18), (ORG_15, ORG_18), (ORG_18, ORG_15)],
)
def test_same_org_in_either_form_matches(expected: str, received: str) -> None:
    # Given the same org id in its 15- or 18-character form / When compared / Then they match
    assert org_id_matches(expected, received) is True


@pytest.mark.parametrize(
    ("expected", "received"),
    [
        (ORG_18, "00D5g000004abcdEAB"),  # wrong checksum suffix
        (ORG_15, "00D5g000004abcdEAB"),
        ("00D5g000004abcdEAB", ORG_15),  # a misconfigured expected id never matches
        (ORG_15, "00D5G000004abcd"),  # another case in the case-sensitive form is another org
        (ORG_18, "00D5G000004ABCD"),
        (ORG_18, "00d5g000004abcdeaa"),  # a lowercased 18-character id: prefix case differs
        (ORG_18, "00D5g000004abce"),
        (ORG_18, "00D5g000004abcdEA"),  # 17 characters
        (ORG_18, ""),
        ("", ""),
        (ORG_15, " 00D5g000004abcd"),
        (ORG_15, "00D5g000004abc-"),
    ],
)
def test_other_or_invalid_org_id_does_not_match(expected: str, received: str) -> None:
    # Given ids that are not the same valid org id / When compared / Then they do not match
    assert org_id_matches(expected, received) is False


def test_wrong_suffix_is_refused_even_with_the_right_prefix() -> None:
    # Given every suffix but the right one for our prefix
    wrong = [f"{ORG_15}{a}AA" for a in "ABCDFGH012345"]
    # When compared / Then none matches, and the right one does
    assert not any(org_id_matches(ORG_15, received) for received in wrong)
    assert org_id_matches(ORG_15, f"{ORG_15}EAA")


def test_invalid_15_character_id_has_no_18_character_form() -> None:
    # Given ids that are not 15 alphanumerics / When converted / Then ValueError
    for bad in ["00D5g000004abc", "00D5g000004abc!", ORG_18]:
        with pytest.raises(ValueError):
            salesforce_id_18(bad)


# --- acknowledgement --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ack", "text"), [(True, "true"), (False, "false")])
def test_acknowledgement_is_the_soap_response(ack: bool, text: str) -> None:
    # When the acknowledgement is built
    body = acknowledgement(ack)
    # Then it is UTF-8 XML with a declaration, a SOAP envelope, and Ack in the outbound namespace
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = ET.fromstring(body)
    assert root.tag == "{http://schemas.xmlsoap.org/soap/envelope/}Envelope"
    ack_element = root.find(
        "{http://schemas.xmlsoap.org/soap/envelope/}Body"
        "/{http://soap.sforce.com/2005/09/outbound}notificationsResponse"
        "/{http://soap.sforce.com/2005/09/outbound}Ack"
    )
    assert ack_element is not None and ack_element.text == text


def test_acknowledgement_defaults_to_true() -> None:
    # When the acknowledgement is built without arguments / Then it acknowledges
    assert b"<Ack>true</Ack>" in acknowledgement()
