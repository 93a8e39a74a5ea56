"""Salesforce Outbound Messages (SOAP 1.1) about Contact changes: parse them, check the org, answer the ack.

Salesforce POSTs a `notifications` call (namespace http://soap.sforce.com/2005/09/outbound) holding
OrganizationId, ActionId, SessionId, EnterpriseUrl, PartnerUrl and 1..100 `Notification`s, each with its own
`Id` (the notification id, the same on every redelivery: the dedup key) and an `sObject` of
`xsi:type="sf:Contact"` whose fields are in urn:sobject.enterprise.soap.sforce.com. Salesforce redelivers
until it gets `acknowledgement()` (for up to 24 hours) and may deliver out of order: compare `last_modified`.

A field the message leaves out is None (the admin did not select it, or it has no value); `xsi:nil="true"`
is None too. The session id is kept as a SecretStr and never logged. Parsing uses the standard library's
ElementTree; a body with a DOCTYPE or ENTITY declaration is refused before parsing (no entity expansion).
Errors are MalformedPayloadError naming the element, never its value.

The org id in the body is not a secret, so the endpoint also requires a token: the admin puts it in the
endpoint URL of the Outbound Message as the query parameter `token` (`verify_token`).
"""

from __future__ import annotations

import hmac
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, SecretStr

from loyalty.crm.fields import (
    BIRTHDATE,
    EMAIL,
    FIRST_NAME,
    HAS_OPTED_OUT_OF_EMAIL,
    LAST_MODIFIED,
    LAST_NAME,
    LOCALE,
    MEMBER_ID,
    MOBILE_PHONE,
    RECORD_ID,
    SMS_OPT_IN,
)
from loyalty.errors import InvalidSignatureError, MalformedPayloadError

TOKEN_PARAMETER = "token"
MAX_NOTIFICATIONS = 100  # Salesforce sends at most 100 notifications in one message

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SOBJECT = "urn:sobject.enterprise.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

T = TypeVar("T")


class ContactNotification(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    notification_id: str  # the same on every redelivery: the dedup key
    contact_id: str
    last_modified: AwareDatetime  # UTC
    loyalty_member_id: str | None = None
    email: str | None = None
    mobile_phone: str | None = None
    birthdate: date | None = None
    has_opted_out_of_email: bool | None = None
    sms_opt_in: bool | None = None
    first_name: str | None = None
    last_name: str | None = None
    locale: str | None = None


class OutboundMessage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    organization_id: str
    action_id: str | None
    notifications: tuple[ContactNotification, ...]
    enterprise_url: str | None = None
    partner_url: str | None = None
    session_id: SecretStr | None = None  # only if the admin ticked "Send Session ID"; never log it


def parse_outbound_message(raw_body: bytes) -> OutboundMessage:
    """The Contact notifications in an Outbound Message body; MalformedPayloadError names what is wrong."""
    envelope = _parse_xml(raw_body)
    if envelope.tag != f"{{{SOAP_ENV}}}Envelope":
        raise _malformed("soapenv:Envelope is required as the root element")
    body = _child(_child(envelope, SOAP_ENV, "Body"), OUTBOUND, "notifications")
    organization_id = _text(_child(body, OUTBOUND, "OrganizationId"))
    if organization_id is None:
        raise _malformed("OrganizationId is required")
    elements = body.findall(f"{{{OUTBOUND}}}Notification")
    if not elements:
        raise _malformed("Notification is required")
    if len(elements) > MAX_NOTIFICATIONS:
        raise _malformed(f"at most {MAX_NOTIFICATIONS} Notifications are sent in one message (Salesforce's limit)")
    session_id = _optional(body, OUTBOUND, "SessionId", str)
    return OutboundMessage(
        organization_id=organization_id,
        action_id=_optional(body, OUTBOUND, "ActionId", str),
        notifications=tuple(_notification(element, index) for index, element in enumerate(elements)),
        enterprise_url=_optional(body, OUTBOUND, "EnterpriseUrl", str),
        partner_url=_optional(body, OUTBOUND, "PartnerUrl", str),
        session_id=SecretStr(session_id) if session_id else None,
    )


def _notification(element: ET.Element, index: int) -> ContactNotification:
    where = f"Notification[{index}]"
    notification_id = _text(_child(element, OUTBOUND, "Id", where))
    if notification_id is None:
        raise _malformed(f"{where}.Id is required")
    sobject = _child(element, OUTBOUND, "sObject", where)
    if sobject.get(f"{{{XSI}}}type", "").rpartition(":")[2] != "Contact":
        raise _malformed(f"{where}.sObject must be of xsi:type sf:Contact")
    where = f"{where}.sObject"

    def field(name: str, convert: Callable[[str], T]) -> T | None:
        return _optional(sobject, SOBJECT, name, convert, where)

    contact_id = field(RECORD_ID, str)
    last_modified = field(LAST_MODIFIED, _datetime)
    if contact_id is None or last_modified is None:
        raise _malformed(f"{where}.{RECORD_ID if contact_id is None else LAST_MODIFIED} is required")
    return ContactNotification(
        notification_id=notification_id,
        contact_id=contact_id,
        last_modified=last_modified,
        loyalty_member_id=field(MEMBER_ID, str),
        email=field(EMAIL, str),
        mobile_phone=field(MOBILE_PHONE, str),
        birthdate=field(BIRTHDATE, date.fromisoformat),
        has_opted_out_of_email=field(HAS_OPTED_OUT_OF_EMAIL, _boolean),
        sms_opt_in=field(SMS_OPT_IN, _boolean),
        first_name=field(FIRST_NAME, str),
        last_name=field(LAST_NAME, str),
        locale=field(LOCALE, str),
    )


# --- organisation ids -------------------------------------------------------------------------------------

_ID = re.compile(r"[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?")
_SUFFIX_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"


def salesforce_id_18(id15: str) -> str:
    """The 18-character, case-insensitive form of a 15-character Salesforce id.

    Each 5-character chunk gives one suffix character: bit i is set when the chunk's i-th character is an
    uppercase letter, and the 5-bit number indexes "A".."Z","0".."5".
    """
    if len(id15) != 15 or not _ID.fullmatch(id15):
        raise ValueError("a 15-character alphanumeric Salesforce id is required")
    suffix = ""
    for start in range(0, 15, 5):
        bits = sum(1 << i for i, char in enumerate(id15[start : start + 5]) if "A" <= char <= "Z")
        suffix += _SUFFIX_CHARS[bits]
    return id15 + suffix


def verify_token(presented: str | None, token: str) -> None:
    """Return if the Outbound Message's URL carries the programme's token; else InvalidSignatureError.

    Compared in constant time, as bytes (any text may arrive); an empty token refuses everything."""
    if not token:
        raise InvalidSignatureError("outbound message: no token is configured")
    if presented is None or not hmac.compare_digest(presented.encode("utf-8", "surrogatepass"), token.encode()):
        raise InvalidSignatureError(
            f"outbound message: missing or wrong `{TOKEN_PARAMETER}` in the endpoint URL"
            " (set it in the Outbound Message)"
        )


def org_id_matches(expected: str, received: str) -> bool:
    """True if both are the same org: equal 15-character prefixes (case-sensitive), each id 15 or 18 characters.

    An 18-character id counts only if its suffix is the checksum of its prefix (in Salesforce's uppercase form).
    """
    prefix = _id15(expected)
    return prefix is not None and prefix == _id15(received)


def _id15(value: str) -> str | None:
    if not _ID.fullmatch(value):
        return None
    if len(value) == 18 and salesforce_id_18(value[:15]) != value:
        return None
    return value[:15]


# --- acknowledgement --------------------------------------------------------------------------------------


def acknowledgement(ack: bool = True) -> bytes:
    """The SOAP response Salesforce expects; with ack=False Salesforce treats the delivery as failed and retries."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENV}">'
        "<soapenv:Body>"
        f'<notificationsResponse xmlns="{OUTBOUND}"><Ack>{"true" if ack else "false"}</Ack></notificationsResponse>'
        "</soapenv:Body>"
        "</soapenv:Envelope>"
    ).encode()


# --- XML reading ------------------------------------------------------------------------------------------

_DECLARATION = re.compile(r"<!\s*(?:DOCTYPE|ENTITY)", re.IGNORECASE)
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}  # xsd:boolean


def _parse_xml(raw_body: bytes) -> ET.Element:
    """The root element. The text checked for declarations is exactly the text parsed (a str: expat reads it
    as UTF-8 whatever encoding the XML declaration claims)."""
    try:
        text = raw_body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise _malformed("body is not UTF-8") from None
    if _DECLARATION.search(text):
        raise _malformed("DOCTYPE and ENTITY declarations are not allowed")
    try:
        return ET.fromstring(text)
    except ET.ParseError as error:  # the position only: expat's message may quote the body
        line, column = error.position
        raise _malformed(f"body is not well-formed XML (line {line}, column {column})") from None


def _child(parent: ET.Element, namespace: str, name: str, where: str = "") -> ET.Element:
    element = parent.find(f"{{{namespace}}}{name}")
    if element is None:
        raise _malformed(f"{where + '.' if where else ''}{name} is required")
    return element


def _text(element: ET.Element) -> str | None:
    """The element's text, stripped; None when it is empty or xsi:nil."""
    if element.get(f"{{{XSI}}}nil") in ("true", "1"):
        return None
    return (element.text or "").strip() or None


def _optional(parent: ET.Element, namespace: str, name: str, convert: Callable[[str], T], where: str = "") -> T | None:
    """The converted text of an optional child; None when the child is absent, empty or nil."""
    element = parent.find(f"{{{namespace}}}{name}")
    text = None if element is None else _text(element)
    if text is None:
        return None
    try:
        return convert(text)
    except ValueError:
        raise _malformed(f"{where + '.' if where else ''}{name} is not a valid value") from None


def _datetime(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        raise ValueError("a timezone is required")
    return value.astimezone(UTC)


def _boolean(text: str) -> bool:
    try:
        return _BOOLEANS[text]
    except KeyError:
        raise ValueError("not an xsd:boolean") from None


def _malformed(detail: str) -> MalformedPayloadError:
    return MalformedPayloadError(f"salesforce outbound message: {detail}")
