"""A local Salesforce org for the embedded stack: the REST API subset the loyalty plugin uses, and the org's own side.

What it serves (any API version, `/services/data/vNN.N/...`), in the shapes Salesforce documents:
OAuth JWT-bearer token, versions, limits, SOQL query (a subset), sObject CRUD, upsert by external id,
describe, and sObject Collections (create, update, upsert; at most 200 records; results by position).
The Contact and Task schemas come from `infra.local.salesforce_schema`, i.e. from infra/salesforce,
so a wrong field name fails here as it would in a real org.

What it plays on the org's side: CRM users creating and editing Contacts, which fires an Outbound Message
(SOAP 1.1, to a configured endpoint, retried until acknowledged), and Flow HTTP callouts with a secret header.
Who writes is told by the bearer token: a token the token endpoint issued is the integration user's session
(the plugin's writes, which fire nothing); any other bearer token acts as a CRM user (`DEFAULT_CRM_USER_15`),
so a Contact created or changed over REST with it fires the Outbound Message as a real org would. From
Python, `create_contact_as_user` and `update_contact_as_user` do the same.

Faults are injected from Python (`inject`) or over HTTP (`POST /_emulator/faults`).

Choices where Salesforce is not fully documented, or where the emulator simplifies:
- A value the JSON deserializer cannot turn into the field's type (text in a Number, a bad date, a JSON
  object anywhere) fails the WHOLE request with 400 JSON_PARSER_ERROR, as Salesforce does; so does an
  unknown field (400 INVALID_FIELD). Everything else is a per-record error (Collections) or a 400 with
  the list of errors (single-record calls).
- Every picklist with values is treated as restricted; values match exactly (case-sensitive).
- Contact.LastName is required, as in every org; nothing else is required.
- Update of an id that was deleted: ENTITY_IS_DELETED; of a well-formed id that never existed:
  INVALID_CROSS_REFERENCE_KEY (single-record calls answer 404 NOT_FOUND / ENTITY_IS_DELETED instead).
- Upsert that updates answers 200 with `created: false` from API v46.0 on, 204 before (as documented).
- Queries always answer `done: true` with every matching record (no query locators).
- A request counts against the daily limit once it is authenticated and not refused for the limit; a
  TIMEOUT fault still applies the write after the delay (a timed-out call may well have succeeded).
- 503 (SERVER_ERROR fault) answers an HTML page, as Salesforce's edge does during incidents.
- The emulator never logs requests: bearer tokens and secrets stay out of every log.
"""

from __future__ import annotations

import itertools
import json
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

from infra.local.salesforce_schema import (
    CONTENT_VERSION_FIELDS,
    SchemaField,
    contact_fields,
    custom_objects,
    task_fields,
)

FAULT_KINDS = (
    "UNABLE_TO_LOCK_ROW",
    "REQUEST_LIMIT_EXCEEDED",
    "SERVER_ERROR",
    "INVALID_SESSION_ID",
    "TIMEOUT",
    "VALIDATION",
)
KEY_PREFIXES = {"Contact": "003", "Task": "00T", "ContentVersion": "068"}
MAX_COLLECTION_RECORDS = 200
DEFAULT_INTEGRATION_USER_15 = "0055g00000IntgU"
DEFAULT_CRM_USER_15 = "0055g00000CrmUs"
API_VERSIONS = (
    ("Summer '22", "55.0"),
    ("Winter '23", "56.0"),
    ("Spring '23", "57.0"),
    ("Summer '23", "58.0"),
    ("Winter '24", "59.0"),
    ("Spring '24", "60.0"),
    ("Summer '24", "61.0"),
    ("Winter '25", "62.0"),
)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
_JSON = "application/json;charset=UTF-8"
_TEXT_TYPES = {"Text", "Email", "Phone", "Picklist"}
_ID_TYPES = {"Id", "Reference"}
_DESCRIBE_TYPES = {
    "Text": "string",
    "Number": "double",
    "Date": "date",
    "DateTime": "datetime",
    "Checkbox": "boolean",
    "Picklist": "picklist",
    "Id": "id",
    "Email": "email",
    "Phone": "phone",
    "Reference": "reference",
}
# Fields every record has, maintained by the org; added when the schema does not list them.
_SYSTEM_FIELDS = {
    "Id": "Id",
    "CreatedDate": "DateTime",
    "CreatedById": "Reference",
    "LastModifiedDate": "DateTime",
    "LastModifiedById": "Reference",
    "SystemModstamp": "DateTime",
}
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$")
_ACK = re.compile(r"<(?:\w+:)?Ack>\s*true\s*</(?:\w+:)?Ack>")
_SERVICE_UNAVAILABLE = (
    "<html><head><title>Service Unavailable</title></head><body><h1>Service Unavailable</h1>"
    "<p>The server is temporarily unable to service your request. Please try again later.</p></body></html>"
)


# --------------------------------------------------------------------------------------------------- ids


_CHECKSUM_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def to_18_char_id(id15: str) -> str:
    """Salesforce's case-safe id: three checksum characters encode which of the 15 characters are upper case."""
    suffix = ""
    for chunk in range(3):
        bits = sum(1 << i for i, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]) if "A" <= char <= "Z")
        suffix += _CHECKSUM_CHARS[bits]
    return id15 + suffix


def canonical_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id (18-character ids may come in any case); None if malformed."""
    if not isinstance(value, str) or not value.isascii() or not value.isalnum():
        return None
    if len(value) == 15:
        return to_18_char_id(value)
    if len(value) != 18:
        return None
    chars = list(value[:15].lower())
    for chunk, flag in enumerate(value[15:].upper()):
        if flag not in _CHECKSUM_CHARS:
            return None
        bits = _CHECKSUM_CHARS.index(flag)
        for i in range(5):
            if bits & (1 << i):
                if not chars[chunk * 5 + i].isalpha():
                    return None
                chars[chunk * 5 + i] = chars[chunk * 5 + i].upper()
    return to_18_char_id("".join(chars))


def _base62(number: int, width: int) -> str:
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _BASE62[rest] + digits
    return digits.rjust(width, "0")


# ------------------------------------------------------------------------------------------ public types


class SalesforceEmulatorError(ValueError):
    """A write made through the Python API (as a CRM user) that a real org would refuse; `errors` says why."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['statusCode']}: {e['message']}" for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class OutboundDelivery:
    """One attempt to deliver one Outbound Message notification."""

    notification_id: str
    contact_id: str
    attempt: int
    status: int | None  # HTTP status, None when the endpoint could not be reached
    acked: bool


@dataclass
class _Fault:
    kind: str
    remaining: int | None  # None: stays until cleared
    record_positions: tuple[int, ...] | None
    seconds: float

    def applies_to(self, position: int) -> bool:
        return self.record_positions is None or position in self.record_positions

    def describe(self) -> dict[str, Any]:
        positions = list(self.record_positions) if self.record_positions is not None else None
        return {"kind": self.kind, "remaining": self.remaining, "record_positions": positions, "seconds": self.seconds}


@dataclass(frozen=True)
class _Outbound:
    endpoint_url: str
    fields: tuple[str, ...]
    action_id: str
    attempts: int
    backoff_seconds: float


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes = b""
    content_type: str = _JSON
    headers: tuple[tuple[str, str], ...] = ()


class _ApiError(Exception):
    """A whole-request failure, answered as Salesforce's list of {message, errorCode[, fields]}."""

    def __init__(self, status: int, code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields

    def body(self) -> list[dict[str, Any]]:
        error: dict[str, Any] = {"message": self.message, "errorCode": self.code}
        if self.fields is not None:
            error["fields"] = self.fields
        return [error]


def _record_error(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    """A per-record error as in a SaveResult (`statusCode`, not `errorCode`)."""
    return {"statusCode": code, "message": message, "fields": fields or []}


def _not_found(message: str = "The requested resource does not exist") -> _ApiError:
    return _ApiError(404, "NOT_FOUND", message)


def _label(field_name: str) -> str:
    return field_name.removesuffix("__c").replace("_", " ")


def _iso_millis(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def _parse_datetime(text: str) -> datetime | None:
    if not _DATETIME.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def _valid_date(text: str) -> bool:
    if not _DATE.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------------------- value types


class _ParseError(Exception):
    """The JSON deserializer could not turn a value into the field's type (whole request: JSON_PARSER_ERROR)."""

    def __init__(self, java_type: str, value: Any) -> None:
        if isinstance(value, bool):
            token, shown = ("VALUE_TRUE" if value else "VALUE_FALSE"), json.dumps(value)
        elif isinstance(value, dict):
            token, shown = "START_OBJECT", "{"
        elif isinstance(value, list):
            token, shown = "START_ARRAY", "["
        elif isinstance(value, int | float):
            token, shown = "VALUE_NUMBER_FLOAT" if isinstance(value, float) else "VALUE_NUMBER_INT", str(value)
        else:
            token, shown = "VALUE_STRING", str(value)
        super().__init__(f"Cannot deserialize instance of {java_type} from {token} value {shown}")


def _coerce(field: SchemaField, value: Any) -> Any:
    """Turn a JSON value into what the org stores for this field type, or raise _ParseError."""
    kind = field.type
    if value is None:
        return False if kind == "Checkbox" else None
    if kind == "Number":
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _ParseError("double", value)
        try:
            number = float(value)
        except ValueError:
            raise _ParseError("double", value) from None
        if number != number or number in (float("inf"), float("-inf")):
            raise _ParseError("double", value)
        return number
    if kind == "Checkbox":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _ParseError("boolean", value)
    if kind == "Date":
        if isinstance(value, str) and _valid_date(value):
            return value
        raise _ParseError("date", value)
    if kind == "DateTime":
        moment = _parse_datetime(value) if isinstance(value, str) else None
        if moment is None:
            raise _ParseError("datetime", value)
        return _iso_millis(moment)
    if isinstance(value, dict | list):
        raise _ParseError("string", value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ------------------------------------------------------------------------------------------------ SOQL


@dataclass(frozen=True)
class _Literal:
    kind: str  # string, number, date, datetime, boolean, null
    value: Any


@dataclass(frozen=True)
class _Cond:
    field: str
    op: str  # = != < <= > >= in "not in" like
    values: tuple[_Literal, ...]


@dataclass(frozen=True)
class _BoolOp:
    op: str  # and, or, not
    parts: tuple[_Cond | _BoolOp, ...]


@dataclass(frozen=True)
class _Query:
    sobject: str
    fields: tuple[str, ...]
    where: _Cond | _BoolOp | None
    order: tuple[tuple[str, bool, bool], ...]  # field, descending, nulls first
    limit: int | None


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<string>'(?:\\.|[^'\\])*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2}(?![\w:]))
    | (?P<number>[-+]?\d+(?:\.\d+)?)
    | (?P<punct>!=|<>|<=|>=|=|<|>|\(|\)|,)
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


def _unescape(quoted: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), quoted[1:-1])


class _SoqlParser:
    """Recursive descent over the SOQL subset: SELECT f, ... FROM Obj [WHERE ...] [ORDER BY ...] [LIMIT n]."""

    def __init__(self, text: str, schemas: Mapping[str, Mapping[str, SchemaField]]) -> None:
        self.text = text
        self.schemas = schemas
        self.tokens: list[tuple[str, str, int]] = []
        position = 0
        while position < len(text):
            if not text[position:].strip():
                break
            match = _TOKEN.match(text, position)
            if match is None or match.lastgroup is None:
                self._fail("MALFORMED_QUERY", f"unexpected token: '{text[position:].split()[0]}'", position)
            kind = match.lastgroup
            self.tokens.append((kind, match.group(kind), match.start(kind)))
            position = match.end()
        self.tokens.append(("end", "", len(text)))
        self.index = 0
        self.fields: Mapping[str, SchemaField] = {}
        self.sobject = ""

    def _fail(self, code: str, message: str, position: int) -> NoReturn:
        column = position + 1
        detail = f"\n{self.text}\n{' ' * position}^\nERROR at Row:1:Column:{column}\n{message}"
        raise _ApiError(400, code, detail)

    def _peek(self) -> tuple[str, str, int]:
        return self.tokens[self.index]

    def _next(self) -> tuple[str, str, int]:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _keyword(self, *words: str) -> bool:
        kind, text, _ = self._peek()
        if kind == "word" and text.upper() == words[0]:
            saved = self.index
            self.index += 1
            for word in words[1:]:
                kind, text, _ = self._peek()
                if kind != "word" or text.upper() != word:
                    self.index = saved
                    return False
                self.index += 1
            return True
        return False

    def _expect_keyword(self, word: str) -> None:
        if not self._keyword(word):
            self._unexpected()

    def _expect_punct(self, punct: str) -> None:
        kind, text, _ = self._peek()
        if kind != "punct" or text != punct:
            self._unexpected()
        self.index += 1

    def _unexpected(self) -> NoReturn:
        kind, text, position = self._peek()
        shown = "<EOF>" if kind == "end" else text
        self._fail("MALFORMED_QUERY", f"unexpected token: '{shown}'", position)

    def _field(self, name: str, position: int) -> str:
        by_name = {key.casefold(): key for key in self.fields}
        canonical = by_name.get(name.casefold())
        if canonical is None:
            self._fail(
                "INVALID_FIELD",
                f"No such column '{name}' on entity '{self.sobject}'. If you are attempting to use a custom field, "
                "be sure to append the '__c' after the custom field name. Please reference your WSDL or the "
                "describe call for the appropriate names.",
                position,
            )
        return canonical

    def parse(self) -> _Query:
        self._expect_keyword("SELECT")
        raw_fields: list[tuple[str, int]] = []
        while True:
            kind, text, position = self._next()
            if kind != "word":
                self.index -= 1
                self._unexpected()
            raw_fields.append((text, position))
            if self._peek()[:2] != ("punct", ","):
                break
            self.index += 1
        self._expect_keyword("FROM")
        kind, text, position = self._next()
        by_name = {name.casefold(): name for name in self.schemas}
        if kind != "word" or text.casefold() not in by_name:
            self._fail(
                "INVALID_TYPE",
                f"sObject type '{text}' is not supported. If you are attempting to use a custom object, be sure to "
                "append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
                "appropriate names.",
                position,
            )
        self.sobject = by_name[text.casefold()]
        self.fields = self.schemas[self.sobject]
        fields = tuple(dict.fromkeys(self._field(name, at) for name, at in raw_fields))
        where = self._expression() if self._keyword("WHERE") else None
        order: list[tuple[str, bool, bool]] = []
        if self._keyword("ORDER", "BY"):
            while True:
                kind, text, position = self._next()
                if kind != "word":
                    self.index -= 1
                    self._unexpected()
                name = self._field(text, position)
                descending = self._keyword("DESC")
                if not descending:
                    self._keyword("ASC")
                nulls_first = not descending
                if self._keyword("NULLS", "FIRST"):
                    nulls_first = True
                elif self._keyword("NULLS", "LAST"):
                    nulls_first = False
                order.append((name, descending, nulls_first))
                if self._peek()[:2] != ("punct", ","):
                    break
                self.index += 1
        limit = None
        if self._keyword("LIMIT"):
            kind, text, _ = self._peek()
            if kind != "number" or not text.isdigit():
                self._unexpected()
            self.index += 1
            limit = int(text)
        if self._peek()[0] != "end":
            self._unexpected()
        return _Query(self.sobject, fields, where, tuple(order), limit)

    def _expression(self) -> _Cond | _BoolOp:
        parts = [self._term()]
        joiner = ""
        while True:
            kind, text, _ = self._peek()
            if kind != "word" or text.upper() not in ("AND", "OR"):
                break
            if joiner and text.upper() != joiner:
                self._unexpected()  # SOQL needs parentheses to mix AND and OR
            joiner = text.upper()
            self.index += 1
            parts.append(self._term())
        return parts[0] if len(parts) == 1 else _BoolOp(joiner.lower(), tuple(parts))

    def _term(self) -> _Cond | _BoolOp:
        if self._keyword("NOT"):
            return _BoolOp("not", (self._term(),))
        if self._peek()[:2] == ("punct", "("):
            self.index += 1
            inner = self._expression()
            self._expect_punct(")")
            return inner
        kind, text, position = self._next()
        if kind != "word":
            self.index -= 1
            self._unexpected()
        name = self._field(text, position)
        if self._keyword("NOT", "IN"):
            return _Cond(name, "not in", self._literal_list(name))
        if self._keyword("IN"):
            return _Cond(name, "in", self._literal_list(name))
        if self._keyword("LIKE"):
            literal = self._literal(name, like=True)
            return _Cond(name, "like", (literal,))
        kind, op, _ = self._peek()
        if kind != "punct" or op not in ("=", "!=", "<>", "<", "<=", ">", ">="):
            self._unexpected()
        self.index += 1
        return _Cond(name, "!=" if op == "<>" else op, (self._literal(name),))

    def _literal_list(self, name: str) -> tuple[_Literal, ...]:
        self._expect_punct("(")
        values = [self._literal(name)]
        while self._peek()[:2] == ("punct", ","):
            self.index += 1
            values.append(self._literal(name))
        self._expect_punct(")")
        return tuple(values)

    def _literal(self, name: str, like: bool = False) -> _Literal:
        kind, text, position = self._next()
        if kind == "string":
            literal = _Literal("string", _unescape(text))
        elif kind in ("number", "date", "datetime"):
            literal = _Literal(kind, text)
        elif kind == "word" and text.lower() in ("null", "true", "false"):
            literal = _Literal("null", None) if text.lower() == "null" else _Literal("boolean", text.lower() == "true")
        else:
            self.index -= 1
            self._unexpected()
        field_type = self.fields[name].type
        expected = {
            "Number": ("number", "double", False),
            "Date": ("date", "date", False),
            "DateTime": ("datetime", "datetime", False),
            "Checkbox": ("boolean", "boolean", False),
        }.get(field_type, ("string", "string", True))
        if like and field_type not in _TEXT_TYPES:
            self._fail("INVALID_QUERY_FILTER_OPERATOR", f"invalid operator on {field_type} field: LIKE", position)
        if literal.kind not in (expected[0], "null"):
            quoted = "should be enclosed in quotes" if expected[2] else "should not be enclosed in quotes"
            self._fail(
                "INVALID_QUERY_FILTER_OPERATOR",
                f"value of filter criterion for field '{name}' must be of type {expected[1]} and {quoted}",
                position,
            )
        if field_type in _ID_TYPES and literal.kind == "string":
            normal = canonical_id(literal.value)
            if normal is None:
                self._fail("INVALID_QUERY_FILTER_OPERATOR", f"invalid ID field: {literal.value}", position)
            literal = _Literal("string", normal)
        return literal


def _comparable(field_type: str, value: Any) -> Any:
    if value is None:
        return None
    if field_type == "Number":
        return float(value)
    if field_type == "Checkbox":
        return bool(value)
    if field_type == "DateTime":
        return _parse_datetime(str(value).replace("+0000", "+00:00"))
    if field_type in _ID_TYPES:
        return str(canonical_id(str(value)) or value).casefold()
    if field_type == "Date":
        return str(value)
    return str(value).casefold()


def _matches(node: _Cond | _BoolOp, record: Mapping[str, Any], fields: Mapping[str, SchemaField]) -> bool:
    if isinstance(node, _BoolOp):
        if node.op == "and":
            return all(_matches(part, record, fields) for part in node.parts)
        if node.op == "or":
            return any(_matches(part, record, fields) for part in node.parts)
        return not _matches(node.parts[0], record, fields)
    field_type = fields[node.field].type
    raw = record.get(node.field)
    if field_type == "Checkbox" and raw is None:
        raw = False
    actual = _comparable(field_type, raw)
    wanted = [_comparable(field_type, literal.value) for literal in node.values]
    if node.op == "in":
        return actual is not None and actual in wanted
    if node.op == "not in":
        return actual not in wanted
    if node.op == "like":
        if actual is None or wanted[0] is None:
            return False
        pattern = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(wanted[0]))
        return re.fullmatch(pattern, str(actual), re.DOTALL) is not None
    target = wanted[0]
    if node.op == "=":
        return actual == target
    if node.op == "!=":
        return actual != target
    if actual is None or target is None:
        return False
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return comparisons[node.op](actual, target)


# -------------------------------------------------------------------------------------------- emulator


class SalesforceEmulator:
    """An in-memory Salesforce org on a local port. Thread-safe: one lock guards the store, counters and faults."""

    def __init__(
        self,
        port: int = 8600,
        org_id: str = "00D5g00000LoyaL",
        schema_root: Path | None = None,
        daily_limit: int = 15000,
        *,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        organization_id = canonical_id(org_id)
        if organization_id is None or not organization_id.startswith("00D"):
            raise ValueError(f"not an organisation id: {org_id!r}")
        self.organization_id = organization_id  # the 18-character form, as Outbound Messages carry it
        self._port = port
        self._daily_limit = daily_limit
        self._clock = clock or (lambda: datetime.now(UTC))
        contact = dict(contact_fields(schema_root) if schema_root is not None else contact_fields())
        self._schemas: dict[str, dict[str, SchemaField]] = {
            "Contact": contact,
            "Task": dict(task_fields(schema_root) if schema_root is not None else task_fields()),
            "ContentVersion": dict(CONTENT_VERSION_FIELDS),
            **(custom_objects(schema_root) if schema_root is not None else custom_objects()),
        }
        custom = sorted(name for name in self._schemas if name.endswith("__c"))
        self._prefixes = {**KEY_PREFIXES, **{name: f"a0{_base62(n, 1)}" for n, name in enumerate(custom)}}
        for fields in self._schemas.values():
            for name, kind in _SYSTEM_FIELDS.items():
                if name not in fields:
                    fields[name] = SchemaField(
                        name=name,
                        type=kind,
                        length=18 if kind in _ID_TYPES else None,
                        picklist_values=(),
                        external_id=False,
                        unique=False,
                        updateable=False,
                    )
        self._by_casefold = {
            sobject: {name.casefold(): name for name in fields} for sobject, fields in self._schemas.items()
        }
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, dict[str, Any]]] = {sobject: {} for sobject in self._schemas}
        self._deleted: set[str] = set()
        # (sobject, field) -> normalised value -> ids, for unique and external-id fields
        self._index: dict[tuple[str, str], dict[str, set[str]]] = {
            (sobject, name): {}
            for sobject, fields in self._schemas.items()
            for name, field in fields.items()
            if field.unique or field.external_id
        }
        self._id_counter = itertools.count(1)
        self._usage = 0
        self._api_calls = 0
        self._faults: list[_Fault] = []
        self._integration_user_id = to_18_char_id(DEFAULT_INTEGRATION_USER_15)
        self._crm_user_id = to_18_char_id(DEFAULT_CRM_USER_15)
        self._sessions: set[str] = set()  # access tokens the token endpoint issued: the integration user's
        self._outbound: _Outbound | None = None
        self._deliveries: list[OutboundDelivery] = []
        self._delivery_threads: list[threading.Thread] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        port = self._server.server_address[1] if self._server is not None else self._port
        return f"http://127.0.0.1:{port}"

    def start(self) -> SalesforceEmulator:
        if self._server is None:
            self._server = _Server(("127.0.0.1", self._port), self)
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="salesforce-emulator", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server, self._thread = None, None
        self.wait_for_outbound(timeout=2)

    def __enter__(self) -> SalesforceEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -------------------------------------------------------------------------- counters and faults

    @property
    def api_calls(self) -> int:
        with self._lock:
            return self._api_calls

    @property
    def integration_user_id(self) -> str:
        return self._integration_user_id

    def reset_counts(self) -> None:
        with self._lock:
            self._api_calls = 0
            self._usage = 0

    def set_api_usage(self, used: int) -> None:
        """Pretend the org has already used this many of today's API calls (the Sforce-Limit-Info numerator)."""
        with self._lock:
            self._usage = used

    def inject(
        self,
        kind: str,
        times: int = 1,
        record_positions: tuple[int, ...] | None = None,
        seconds: float = 0,
    ) -> None:
        """Make the next `times` requests fail as `kind` (VALIDATION stays until `clear_faults`)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; one of {', '.join(FAULT_KINDS)}")
        if times < 1:
            raise ValueError("times must be at least 1")
        positions = tuple(record_positions) if record_positions is not None else None
        remaining = None if kind == "VALIDATION" else times
        with self._lock:
            self._faults.append(_Fault(kind, remaining, positions, float(seconds)))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, kind: str) -> _Fault | None:
        """Consume one use of the first active fault of this kind (caller holds the lock)."""
        for fault in self._faults:
            if fault.kind == kind:
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _take_write_faults(self) -> list[_Fault]:
        with self._lock:
            return [fault for kind in ("UNABLE_TO_LOCK_ROW", "VALIDATION") if (fault := self._take_fault(kind))]

    # ----------------------------------------------------------------------------------- snapshots

    def contacts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(record) for record in self._records["Contact"].values()]

    def records(self, sobject: str) -> list[dict[str, Any]]:
        """Every record of an sobject (a custom object's too), as stored."""
        with self._lock:
            return [dict(record) for record in self._records[sobject].values()]

    def tasks(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(record) for record in self._records["Task"].values()]

    def contact(self, contact_id: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._records["Contact"][canonical_id(contact_id) or contact_id])

    # ----------------------------------------------------------------------------- the org's side

    def configure_outbound(
        self,
        endpoint_url: str,
        fields: tuple[str, ...],
        integration_user_id: str,
        *,
        attempts: int = 4,
        backoff_seconds: float = 0.05,
    ) -> None:
        """Set up the Contact Outbound Message and the integration user whose (API) edits do not fire it."""
        user = canonical_id(integration_user_id)
        if user is None or not user.startswith("005"):
            raise ValueError(f"not a user id: {integration_user_id!r}")
        names = []
        for name in fields:
            canonical = self._by_casefold["Contact"].get(name.casefold())
            if canonical is None:
                raise ValueError(f"Contact has no field {name!r}")
            names.append(canonical)
        action_id = to_18_char_id("04k5g00000OutMs")
        with self._lock:
            self._integration_user_id = user
            self._outbound = _Outbound(endpoint_url, tuple(names), action_id, attempts, backoff_seconds)

    def create_contact_as_user(self, fields: Mapping[str, Any], user_id: str = DEFAULT_CRM_USER_15) -> str:
        """A CRM user creates a Contact in the UI; fires the Outbound Message unless it is the integration user."""
        return self._write_as_user(None, fields, user_id)

    def update_contact_as_user(
        self, contact_id: str, fields: Mapping[str, Any], user_id: str = DEFAULT_CRM_USER_15
    ) -> None:
        """A CRM user edits a Contact in the UI; fires the Outbound Message unless it is the integration user."""
        self._write_as_user(contact_id, fields, user_id)

    def _write_as_user(self, contact_id: str | None, fields: Mapping[str, Any], user_id: str) -> str:
        user = canonical_id(user_id)
        if user is None or not user.startswith("005"):
            raise ValueError(f"not a user id: {user_id!r}")
        try:
            values = self._parse_values("Contact", dict(fields), "")
        except _ApiError as error:
            raise SalesforceEmulatorError([_record_error(error.code, error.message, error.fields)]) from None
        with self._lock:
            saved_id, errors, _ = self._save("Contact", values, contact_id, contact_id is None, 0, user, [])
        if errors or saved_id is None:
            raise SalesforceEmulatorError(errors)
        if user != self._integration_user_id:
            self._notify(saved_id)
        return saved_id

    @property
    def outbound_deliveries(self) -> list[OutboundDelivery]:
        with self._lock:
            return list(self._deliveries)

    def wait_for_outbound(self, timeout: float = 5.0) -> bool:
        """Wait until every Outbound Message delivery in flight has finished (acked or out of attempts)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            threads = list(self._delivery_threads)
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._delivery_threads = [thread for thread in self._delivery_threads if thread.is_alive()]
            return not self._delivery_threads

    def _notify(self, contact_id: str) -> None:
        with self._lock:
            outbound = self._outbound
            if outbound is None:
                return
            notification_id = to_18_char_id("04l5g00000" + _base62(next(self._id_counter), 5))
            thread = threading.Thread(
                target=self._deliver, args=(outbound, notification_id, contact_id), name="outbound", daemon=True
            )
            self._delivery_threads.append(thread)
            thread.start()  # under the lock, so wait_for_outbound never sees a thread that has not started

    def _written(self, sobject: str, record_ids: list[str], user: str) -> None:
        """Records saved over REST: a CRM user's Contact creates and edits fire the Outbound Message."""
        if sobject == "Contact" and user != self._integration_user_id:
            for record_id in record_ids:
                self._notify(record_id)

    def _deliver(self, outbound: _Outbound, notification_id: str, contact_id: str) -> None:
        for attempt in range(1, outbound.attempts + 1):
            with self._lock:
                record = self._records["Contact"].get(contact_id)
                if record is None:
                    return
                body = self._outbound_message(outbound, notification_id, dict(record))
            request = urllib.request.Request(
                outbound.endpoint_url,
                data=body,
                method="POST",
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
            )
            status: int | None
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    status, answer = response.status, response.read().decode("utf-8", "replace")
            except urllib.error.HTTPError as error:
                status, answer = error.code, error.read().decode("utf-8", "replace")
            except OSError:
                status, answer = None, ""
            acked = status == 200 and _ACK.search(answer) is not None
            with self._lock:
                self._deliveries.append(OutboundDelivery(notification_id, contact_id, attempt, status, acked))
            if acked:
                return
            if attempt < outbound.attempts:
                time.sleep(outbound.backoff_seconds * 2 ** (attempt - 1))

    def _outbound_message(self, outbound: _Outbound, notification_id: str, record: Mapping[str, Any]) -> bytes:
        version = API_VERSIONS[-1][1]
        org15 = self.organization_id[:15]
        names = ["Id", *sorted((set(outbound.fields) | {"LastModifiedDate"}) - {"Id"})]
        values = []
        for name in names:
            value = record.get(name)
            if value is None:
                values.append(f'<sf:{name} xsi:nil="true"/>')
            else:
                text = ("true" if value else "false") if isinstance(value, bool) else str(value)
                values.append(f"<sf:{name}>{escape(text)}</sf:{name}>")
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
            f'<soapenv:Body><notifications xmlns="{OUTBOUND_NS}">'
            f"<OrganizationId>{self.organization_id}</OrganizationId>"
            f"<ActionId>{outbound.action_id}</ActionId>"
            '<SessionId xsi:nil="true"/>'
            f"<EnterpriseUrl>{escape(self.url)}/services/Soap/c/{version}/{org15}</EnterpriseUrl>"
            f"<PartnerUrl>{escape(self.url)}/services/Soap/u/{version}/{org15}</PartnerUrl>"
            f"<Notification><Id>{notification_id}</Id>"
            f'<sObject xsi:type="sf:Contact" xmlns:sf="{SOBJECT_NS}">{"".join(values)}</sObject>'
            "</Notification></notifications></soapenv:Body></soapenv:Envelope>"
        ).encode()

    def send_flow_callout(self, endpoint_url: str, body: dict[str, Any], secret: str) -> tuple[int, dict[str, Any]]:
        """A Flow HTTP callout: our JSON, plus the secret header the Named Credential's External Credential adds."""
        request = urllib.request.Request(
            endpoint_url,
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "X-Loyalty-Secret": secret},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, text = response.status, response.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode("utf-8", "replace")
        try:
            parsed = json.loads(text) if text.strip() else {}
        except ValueError:
            parsed = {"body": text}
        return status, parsed if isinstance(parsed, dict) else {"body": parsed}

    # ---------------------------------------------------------------------------------------- HTTP

    def _dispatch(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> _Response:
        parts = urlsplit(raw_path)
        path, params = parts.path, parse_qs(parts.query)
        if path.rstrip("/") == "/services/oauth2/token":
            return self._token(method, body, params)
        if path.rstrip("/") == "/services/data":
            versions = [{"label": label, "url": f"/services/data/v{v}", "version": v} for label, v in API_VERSIONS]
            return _json_response(200, versions)
        if path.rstrip("/") == "/_emulator/faults":
            return self._faults_over_http(method, body)
        match = re.fullmatch(r"/services/data/v(\d+\.\d)(/.*)?", path)
        if match is None:
            return _json_response(404, _not_found().body())
        return self._data_api(method, match.group(1), (match.group(2) or "").strip("/"), params, headers, body)

    def _token(self, method: str, body: bytes, params: dict[str, list[str]]) -> _Response:
        form = {**params, **parse_qs(body.decode("utf-8", "replace"))}
        grant = (form.get("grant_type") or [""])[0]
        if method != "POST" or grant != JWT_BEARER:
            error = {"error": "unsupported_grant_type", "error_description": "grant type not supported"}
            return _json_response(400, error)
        assertion = (form.get("assertion") or [""])[0]
        if assertion.count(".") != 2:
            return _json_response(400, {"error": "invalid_grant", "error_description": "invalid assertion"})
        access_token = f"{self.organization_id[:15]}!{secrets.token_urlsafe(48)}"
        with self._lock:
            self._sessions.add(access_token)
        token = {
            "access_token": access_token,
            "scope": "api",
            "instance_url": self.url,
            "id": f"{self.url}/id/{self.organization_id}/{self._integration_user_id}",
            "token_type": "Bearer",
            "issued_at": str(int(self._clock().timestamp() * 1000)),
        }
        return _json_response(200, token)

    def _faults_over_http(self, method: str, body: bytes) -> _Response:
        try:
            if method == "POST":
                spec = json.loads(body or b"{}")
                positions = spec.get("record_positions")
                self.inject(
                    str(spec.get("kind")),
                    times=int(spec.get("times", 1)),
                    record_positions=tuple(int(p) for p in positions) if positions is not None else None,
                    seconds=float(spec.get("seconds", 0)),
                )
            elif method == "DELETE":
                self.clear_faults()
            elif method != "GET":
                return _json_response(405, {"error": f"{method} not allowed"})
        except (ValueError, TypeError, AttributeError) as error:
            return _json_response(400, {"error": str(error)})
        with self._lock:
            return _json_response(200, {"faults": [fault.describe() for fault in self._faults]})

    def _data_api(
        self,
        method: str,
        version: str,
        rest: str,
        params: dict[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> _Response:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        with self._lock:
            expired = self._take_fault("INVALID_SESSION_ID")
            if expired or scheme.lower() not in ("bearer", "oauth") or not token.strip():
                error = _ApiError(401, "INVALID_SESSION_ID", "Session expired or invalid")
                return self._with_limits(_json_response(401, error.body()))
            user = self._integration_user_id if token.strip() in self._sessions else self._crm_user_id
            if self._take_fault("REQUEST_LIMIT_EXCEEDED") or self._usage >= self._daily_limit:
                error = _ApiError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                return self._with_limits(_json_response(403, error.body()))
            self._usage += 1
            self._api_calls += 1
            delay = self._take_fault("TIMEOUT")
            unavailable = self._take_fault("SERVER_ERROR")
        if delay is not None:
            time.sleep(delay.seconds)
        if unavailable is not None:
            page = _Response(503, _SERVICE_UNAVAILABLE.encode(), "text/html; charset=UTF-8")
            return self._with_limits(page)
        try:
            status, payload = self._route(method, version, rest, params, body, user)
        except _ApiError as error:
            status, payload = error.status, error.body()
        response = _Response(204) if status == 204 else _json_response(status, payload)
        return self._with_limits(response)

    def _with_limits(self, response: _Response) -> _Response:
        with self._lock:
            usage = f"api-usage={self._usage}/{self._daily_limit}"
        return _Response(response.status, response.body, response.content_type, (("Sforce-Limit-Info", usage),))

    def _route(
        self, method: str, version: str, rest: str, params: dict[str, list[str]], body: bytes, user: str
    ) -> tuple[int, Any]:
        """Answer a data API request made by ``user`` (the integration user, or a CRM user)."""
        segments = [unquote(segment) for segment in rest.split("/")] if rest else []
        base = f"/services/data/v{version}"
        allowed = {"GET"}
        if not segments:
            resources = ("sobjects", "query", "queryAll", "limits", "composite")
            return _only(method, allowed, (200, {name: f"{base}/{name}" for name in resources}))
        head = segments[0]
        if head == "limits" and len(segments) == 1:
            return _only(method, allowed, (200, self._limits()))
        if head in ("query", "queryAll") and len(segments) == 1:
            query = (params.get("q") or [""])[0]
            return _only(method, allowed, (200, self._query(query, base)))
        if head == "sobjects" and len(segments) == 1:
            return _only(method, allowed, (200, self._describe_global(base)))
        if head == "sobjects":
            sobject = self._sobject(segments[1])
            if len(segments) == 2:
                if method == "POST":
                    return self._create_one(sobject, body, user)
                return _only(method, allowed, (200, {"objectDescribe": self._describe(sobject, base)}))
            if len(segments) == 3 and segments[2] == "describe":
                return _only(method, allowed, (200, self._describe(sobject, base)))
            if len(segments) == 3:
                return self._one_record(method, sobject, segments[2], params, body, base, user)
            if len(segments) == 4:
                return self._by_external_id(
                    method, sobject, segments[2], segments[3], params, body, version, base, user
                )
        if segments[:2] == ["composite", "sobjects"]:
            if len(segments) == 2 and method in ("POST", "PATCH"):
                return 200, self._collection(method, body, None, user)
            if len(segments) == 2 and method == "DELETE":
                return 200, self._delete_collection(params)
            if len(segments) == 4 and method == "PATCH":
                return 200, self._collection(method, body, (self._sobject(segments[2]), segments[3]), user)
            raise _ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are POST,PATCH")
        raise _not_found()

    # ------------------------------------------------------------------------------ read resources

    def _limits(self) -> dict[str, Any]:
        with self._lock:
            remaining = max(0, self._daily_limit - self._usage)
        return {
            "DailyApiRequests": {"Max": self._daily_limit, "Remaining": remaining},
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DataStorageMB": {"Max": 5, "Remaining": 5},
            "FileStorageMB": {"Max": 20, "Remaining": 20},
            "SingleEmail": {"Max": 15, "Remaining": 15},
        }

    def _sobject(self, name: str) -> str:
        for sobject in self._schemas:
            if sobject.casefold() == name.casefold():
                return sobject
        raise _not_found()

    def _describe_global(self, base: str) -> dict[str, Any]:
        return {
            "encoding": "UTF-8",
            "maxBatchSize": MAX_COLLECTION_RECORDS,
            "sobjects": [
                {"name": s, "label": s, "keyPrefix": self._prefixes[s], "urls": {"sobject": f"{base}/sobjects/{s}"}}
                for s in self._schemas
            ],
        }

    def _describe(self, sobject: str, base: str) -> dict[str, Any]:
        fields = []
        for field in self._schemas[sobject].values():
            picklist = [
                {"active": True, "defaultValue": False, "label": value, "validFor": None, "value": value}
                for value in field.picklist_values
            ]
            fields.append(
                {
                    "name": field.name,
                    "label": _label(field.name),
                    "type": _DESCRIBE_TYPES.get(field.type, "string"),
                    "length": field.length or 0,
                    "custom": field.name.endswith("__c"),
                    "externalId": field.external_id,
                    "unique": field.unique,
                    "updateable": field.updateable,
                    "createable": field.updateable,
                    "nillable": field.type != "Checkbox" and field.name not in ("Id", "LastName"),
                    "restrictedPicklist": bool(field.picklist_values),
                    "picklistValues": picklist,
                }
            )
        return {
            "name": sobject,
            "label": sobject,
            "keyPrefix": self._prefixes[sobject],
            "createable": True,
            "updateable": True,
            "queryable": True,
            "fields": fields,
            "urls": {"sobject": f"{base}/sobjects/{sobject}"},
        }

    def _query(self, text: str, base: str) -> dict[str, Any]:
        if not text.strip():
            raise _ApiError(400, "MALFORMED_QUERY", "unexpected token: <EOF>")
        query = _SoqlParser(text, self._schemas).parse()
        fields = self._schemas[query.sobject]
        with self._lock:
            rows = [dict(r) for r in self._records[query.sobject].values()]
        if query.where is not None:
            rows = [row for row in rows if _matches(query.where, row, fields)]
        for name, descending, nulls_first in reversed(query.order):
            present = [row for row in rows if row.get(name) is not None]
            absent = [row for row in rows if row.get(name) is None]
            present.sort(key=lambda row: _comparable(fields[name].type, row[name]), reverse=descending)
            rows = absent + present if nulls_first else present + absent
        if query.limit is not None:
            rows = rows[: query.limit]
        records = [self._view(query.sobject, row, query.fields, base) for row in rows]
        return {"totalSize": len(records), "done": True, "records": records}

    def _view(self, sobject: str, record: Mapping[str, Any], names: tuple[str, ...], base: str) -> dict[str, Any]:
        view: dict[str, Any] = {"attributes": {"type": sobject, "url": f"{base}/sobjects/{sobject}/{record['Id']}"}}
        for name in names:
            view[name] = record.get(name)
        return view

    # ------------------------------------------------------------------------------------- writing

    def _parse_values(self, sobject: str, raw: Mapping[str, Any], raw_body: str) -> dict[str, Any]:
        """Resolve field names and coerce values; unknown fields and type errors fail the whole request."""
        values: dict[str, Any] = {}
        for key, value in raw.items():
            if key == "attributes":
                continue
            name = self._by_casefold[sobject].get(key.casefold())
            if name is None:
                raise _ApiError(400, "INVALID_FIELD", f"No such column '{key}' on sobject of type {sobject}")
            try:
                values[name] = _coerce(self._schemas[sobject][name], value)
            except _ParseError as error:
                column = raw_body.find(f'"{key}"') + 1 or 1
                message = f"{error} or request may be missing a required field at [line:1, column:{column}]"
                raise _ApiError(400, "JSON_PARSER_ERROR", message) from None
        return values

    def _index_key(self, value: Any) -> str:
        return str(value).casefold()

    def _put(self, sobject: str, record_id: str, record: dict[str, Any] | None) -> dict[str, Any] | None:
        """Replace a record (None deletes it), keeping the unique/external-id index in step; returns the old one."""
        previous = self._records[sobject].get(record_id)
        for (indexed_sobject, name), index in self._index.items():
            if indexed_sobject != sobject:
                continue
            if previous is not None and previous.get(name) is not None:
                index.get(self._index_key(previous[name]), set()).discard(record_id)
            if record is not None and record.get(name) is not None:
                index.setdefault(self._index_key(record[name]), set()).add(record_id)
        if record is None:
            self._records[sobject].pop(record_id, None)
        else:
            self._records[sobject][record_id] = record
        return previous

    def _new_id(self, sobject: str) -> str:
        return to_18_char_id(self._prefixes[sobject] + "5g000" + _base62(next(self._id_counter), 7))

    def _id_errors(self, sobject: str, record_id: str | None) -> tuple[str | None, list[dict[str, Any]]]:
        if not record_id:
            return None, [_record_error("MISSING_ARGUMENT", "Id not specified in an update call")]
        normal = canonical_id(record_id)
        if normal is None:
            return None, [_record_error("MALFORMED_ID", f"malformed id {record_id}")]
        if not normal.startswith(self._prefixes[sobject]):
            return None, [
                _record_error("MALFORMED_ID", f"{sobject} ID: id value of incorrect type: {record_id}", ["Id"])
            ]
        if normal in self._deleted:
            return normal, [_record_error("ENTITY_IS_DELETED", "entity is deleted")]
        if normal not in self._records[sobject]:
            return normal, [_record_error("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id")]
        return normal, []

    def _field_errors(self, field: SchemaField, value: Any) -> list[dict[str, Any]]:
        if value is None:
            return []
        label, name = _label(field.name), field.name
        if field.type == "Picklist" and field.picklist_values and value not in field.picklist_values:
            message = f"{label}: bad value for restricted picklist field: {value}"
            return [_record_error("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", message, [name])]
        if field.type in _TEXT_TYPES and field.length and len(value) > field.length:
            message = f"{label}: data value too large: {value} (max length={field.length})"
            return [_record_error("STRING_TOO_LONG", message, [name])]
        if field.type == "Email" and not _EMAIL.match(value):
            return [_record_error("INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {value}", [name])]
        if field.type in _ID_TYPES and canonical_id(value) is None:
            return [_record_error("MALFORMED_ID", f"{label}: id value of incorrect type: {value}", [name])]
        return []

    def _save(
        self,
        sobject: str,
        values: dict[str, Any],
        record_id: str | None,
        creating: bool,
        position: int,
        user_id: str,
        faults: list[_Fault],
    ) -> tuple[str | None, list[dict[str, Any]], dict[str, Any] | None]:
        """Validate and apply one record (caller holds the lock). Returns (id, errors, previous record)."""
        schema = self._schemas[sobject]
        if creating:
            record: dict[str, Any] = {name: (False if f.type == "Checkbox" else None) for name, f in schema.items()}
            if sobject == "Task":
                record.update({k: v for k, v in (("Status", "Not Started"), ("Priority", "Normal")) if k in schema})
            target_id = None
        else:
            target_id, errors = self._id_errors(sobject, record_id)
            if errors:
                return target_id, errors, None
            assert target_id is not None
            record = dict(self._records[sobject][target_id])
        errors = []
        if creating and "Id" in values:
            errors.append(
                _record_error("INVALID_FIELD_FOR_INSERT_UPDATE", "cannot specify Id in an insert call", ["Id"])
            )
        values = {name: value for name, value in values.items() if name != "Id"}
        locked = [name for name in values if not schema[name].updateable]
        if locked:
            message = (
                f"Unable to create/update fields: {', '.join(locked)}. Please check the security settings of this "
                "field and verify that it is read/write for your profile or permission set."
            )
            errors.append(_record_error("INVALID_FIELD_FOR_INSERT_UPDATE", message, locked))
        for name, value in values.items():
            if name not in locked:
                errors.extend(self._field_errors(schema[name], value))
                if schema[name].type in _ID_TYPES and value is not None and canonical_id(value):
                    values[name] = canonical_id(value)
        record.update({name: value for name, value in values.items() if name not in locked})
        if sobject == "Contact" and "LastName" in schema and not record.get("LastName"):
            errors.append(
                _record_error("REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ["LastName"])
            )
        for name, value in values.items():
            if value is None or not schema[name].unique or name in locked:
                continue
            holders = self._index[(sobject, name)].get(self._index_key(value), set()) - {target_id}
            if holders:
                message = f"duplicate value found: {name} duplicates value on record with id: {sorted(holders)[0]}"
                errors.append(_record_error("DUPLICATE_VALUE", message))
        for fault in faults:
            if not fault.applies_to(position):
                continue
            errors.append(_fault_error(fault, target_id))
        if errors:
            return target_id, errors, None
        now = _iso_millis(self._clock())
        if target_id is None:
            target_id = self._new_id(sobject)
            record.update(Id=target_id, CreatedDate=now, CreatedById=user_id)
        record.update(LastModifiedDate=now, SystemModstamp=now, LastModifiedById=user_id)
        previous = self._put(sobject, target_id, record)
        return target_id, [], previous

    def _body(self, body: bytes) -> tuple[Any, str]:
        text = body.decode("utf-8", "replace")
        try:
            return json.loads(text), text
        except ValueError as error:
            raise _ApiError(400, "JSON_PARSER_ERROR", f"Unexpected character: {error}") from None

    def _single_write(
        self, sobject: str, body: bytes, record_id: str | None, creating: bool, user: str
    ) -> tuple[str | None, list[dict[str, Any]]]:
        raw, text = self._body(body)
        if not isinstance(raw, dict):
            raise _ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from START_ARRAY")
        values = self._parse_values(sobject, raw, text)
        faults = self._take_write_faults()
        with self._lock:
            saved_id, errors, _ = self._save(sobject, values, record_id, creating, 0, user, faults)
        if not errors and saved_id is not None:
            self._written(sobject, [saved_id], user)
        return saved_id, errors

    def _create_one(self, sobject: str, body: bytes, user: str) -> tuple[int, Any]:
        saved_id, errors = self._single_write(sobject, body, None, True, user)
        if errors:
            return 400, _as_api_errors(errors)
        return 201, {"id": saved_id, "success": True, "errors": []}

    def _one_record(
        self, method: str, sobject: str, raw_id: str, params: dict[str, list[str]], body: bytes, base: str, user: str
    ) -> tuple[int, Any]:
        record_id = canonical_id(raw_id)
        if record_id is None or not record_id.startswith(self._prefixes[sobject]):
            raise _not_found(f"Provided external ID field does not exist or is not accessible: {raw_id}")
        with self._lock:
            if record_id in self._deleted:
                raise _ApiError(404, "ENTITY_IS_DELETED", "entity is deleted")
            record = self._records[sobject].get(record_id)
            record = dict(record) if record is not None else None
        if record is None:
            raise _not_found()
        if method == "GET":
            return 200, self._view(sobject, record, self._selected(sobject, params), base)
        if method == "PATCH":
            _, errors = self._single_write(sobject, body, record_id, False, user)
            return (400, _as_api_errors(errors)) if errors else (204, None)
        if method == "DELETE":
            faults = self._take_write_faults()
            if faults:
                return 400, _as_api_errors([_fault_error(fault, record_id) for fault in faults])
            with self._lock:
                self._put(sobject, record_id, None)
                self._deleted.add(record_id)
            return 204, None
        raise _ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are GET,PATCH,DELETE")

    def _selected(self, sobject: str, params: dict[str, list[str]]) -> tuple[str, ...]:
        wanted = (params.get("fields") or [""])[0]
        if not wanted:
            return tuple(self._schemas[sobject])
        names = []
        for raw in wanted.split(","):
            name = self._by_casefold[sobject].get(raw.strip().casefold())
            if name is None:
                raise _ApiError(400, "INVALID_FIELD", f"No such column '{raw.strip()}' on entity '{sobject}'")
            names.append(name)
        return tuple(names)

    def _by_external_id(
        self,
        method: str,
        sobject: str,
        field_name: str,
        value: str,
        params: dict[str, list[str]],
        body: bytes,
        version: str,
        base: str,
        user: str,
    ) -> tuple[int, Any]:
        name = self._by_casefold[sobject].get(field_name.casefold())
        if name is None or not self._schemas[sobject][name].external_id:
            raise _not_found(f"Provided external ID field does not exist or is not accessible: {field_name}")
        with self._lock:
            matches = sorted(self._index[(sobject, name)].get(self._index_key(value), set()))
        if len(matches) > 1:
            return 300, [f"{base}/sobjects/{sobject}/{match}" for match in matches]
        if method == "GET":
            if not matches:
                raise _not_found()
            with self._lock:
                record = dict(self._records[sobject][matches[0]])
            return 200, self._view(sobject, record, self._selected(sobject, params), base)
        if method != "PATCH":
            raise _ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are GET,PATCH")
        if not matches and (params.get("updateOnly") or [""])[0].lower() == "true":
            raise _not_found()
        raw, text = self._body(body)
        if not isinstance(raw, dict):
            raise _ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from START_ARRAY")
        values = self._parse_values(sobject, raw, text)
        values[name] = _coerce(self._schemas[sobject][name], value)
        faults = self._take_write_faults()
        with self._lock:
            saved_id, errors, _ = self._save(
                sobject, values, matches[0] if matches else None, not matches, 0, user, faults
            )
        if errors:
            return 400, _as_api_errors(errors)
        if saved_id is not None:
            self._written(sobject, [saved_id], user)
        if not matches:
            return 201, {"id": saved_id, "success": True, "errors": [], "created": True}
        if float(version) >= 46.0:
            return 200, {"id": saved_id, "success": True, "errors": [], "created": False}
        return 204, None

    def _delete_collection(self, params: dict[str, list[str]]) -> list[dict[str, Any]]:
        """sObject Collections delete: DELETE composite/sobjects?ids=<id>,<id>&allOrNone=false, one result each."""
        ids = [i for i in (params.get("ids") or [""])[0].split(",") if i]
        if not ids:
            raise _ApiError(400, "MISSING_ARGUMENT", "ids not specified")
        if len(ids) > MAX_COLLECTION_RECORDS:
            message = f"record limit reached. cannot submit more than {MAX_COLLECTION_RECORDS} records into this call"
            raise _ApiError(400, "EXCEEDED_ID_LIMIT", message)
        results = []
        with self._lock:
            for raw in ids:
                record_id = canonical_id(raw) or raw
                sobject = next((name for name, records in self._records.items() if record_id in records), None)
                if sobject is None:
                    code = "ENTITY_IS_DELETED" if record_id in self._deleted else "INVALID_CROSS_REFERENCE_KEY"
                    results.append({"id": raw, "success": False, "errors": [_record_error(code, "entity is deleted")]})
                    continue
                self._put(sobject, record_id, None)
                self._deleted.add(record_id)
                results.append({"id": record_id, "success": True, "errors": []})
        return results

    def _collection(self, method: str, body: bytes, upsert: tuple[str, str] | None, user: str) -> list[dict[str, Any]]:
        """sObject Collections: create (POST), update (PATCH), upsert (PATCH .../{type}/{externalIdField})."""
        raw, text = self._body(body)
        if not isinstance(raw, dict) or not isinstance(raw.get("records"), list):
            raise _ApiError(400, "JSON_PARSER_ERROR", "Cannot deserialize: the body needs a 'records' list")
        records: list[Any] = raw["records"]
        if len(records) > MAX_COLLECTION_RECORDS:
            message = f"record limit reached. cannot submit more than {MAX_COLLECTION_RECORDS} records into this call"
            raise _ApiError(400, "EXCEEDED_ID_LIMIT", message)
        all_or_none = bool(raw.get("allOrNone", False))
        external_field = None
        if upsert is not None:
            external_field = self._by_casefold[upsert[0]].get(upsert[1].casefold())
            if external_field is None or not self._schemas[upsert[0]][external_field].external_id:
                raise _not_found(f"Provided external ID field does not exist or is not accessible: {upsert[1]}")
        # Whole-request checks first, in order: record type, unknown fields, values the parser cannot read.
        parsed: list[tuple[str, dict[str, Any], str | None]] = []
        for item in records:
            attributes = item.get("attributes") if isinstance(item, dict) else None
            kind = attributes.get("type") if isinstance(attributes, dict) else None
            if not isinstance(kind, str):
                raise _ApiError(400, "INVALID_TYPE", "Must send a concrete entity type.")
            try:
                sobject = self._sobject(kind)
            except _ApiError:
                raise _ApiError(400, "INVALID_TYPE", f"sObject type '{kind}' is not supported.") from None
            if upsert is not None and sobject != upsert[0]:
                raise _ApiError(400, "INVALID_TYPE", f"Record type {kind} doesn't match the URL's {upsert[0]}")
            fields = {k: v for k, v in item.items() if method == "POST" or k.casefold() != "id"}
            record_id = next((v for k, v in item.items() if k.casefold() == "id"), None) if method == "PATCH" else None
            parsed.append((sobject, self._parse_values(sobject, fields, text), record_id))
        faults = self._take_write_faults()
        results: list[dict[str, Any]] = []
        undo: list[tuple[str, str, dict[str, Any] | None, bool]] = []
        with self._lock:
            for position, (sobject, values, record_id) in enumerate(parsed):
                creating = method == "POST"
                if external_field is not None:
                    key = values.get(external_field)
                    if key is None:
                        error = _record_error("MISSING_ARGUMENT", f"{external_field} not specified")
                        results.append({"success": False, "errors": [error], "created": False})
                        continue
                    holders = sorted(self._index[(sobject, external_field)].get(self._index_key(key), set()))
                    if len(holders) > 1:
                        message = f"{external_field}: more than one record found for external id field: {holders}"
                        error = _record_error("DUPLICATE_EXTERNAL_ID", message, [external_field])
                        results.append({"success": False, "errors": [error], "created": False})
                        continue
                    creating, record_id = not holders, (holders[0] if holders else None)
                elif method == "PATCH" and isinstance(record_id, str) and canonical_id(record_id):
                    record_id = canonical_id(record_id)
                if method == "PATCH" and not isinstance(record_id, str | None):
                    record_id = str(record_id)
                saved_id, errors, previous = self._save(sobject, values, record_id, creating, position, user, faults)
                result: dict[str, Any] = {"success": not errors, "errors": errors}
                if saved_id is not None:
                    result = {"id": saved_id, **result}
                if external_field is not None:
                    result["created"] = creating and not errors
                results.append(result)
                if not errors and saved_id is not None:
                    undo.append((sobject, saved_id, previous, creating))
            if all_or_none and any(not result["success"] for result in results):
                for sobject, saved_id, previous, _ in reversed(undo):
                    self._put(sobject, saved_id, previous)
                created_ids = {saved_id for _, saved_id, _, created in undo if created}
                rolled_back = _record_error(
                    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "Record rolled back because not all records were valid and the request was using AllOrNone header",
                )
                for result in results:
                    if result["success"]:
                        result.update(success=False, errors=[rolled_back])
                        if result.get("id") in created_ids:
                            del result["id"]
                        if "created" in result:
                            result["created"] = False
        for (sobject, _, _), result in zip(parsed, results, strict=True):
            if result["success"]:
                self._written(sobject, [str(result["id"])], user)
        return results


def _only(method: str, allowed: set[str], answer: tuple[int, Any]) -> tuple[int, Any]:
    if method not in allowed:
        allowed_text = ",".join(sorted(allowed))
        raise _ApiError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed_text}")
    return answer


def _fault_error(fault: _Fault, record_id: str | None) -> dict[str, Any]:
    if fault.kind == "UNABLE_TO_LOCK_ROW":
        message = f"unable to obtain exclusive access to this record or 1 records: {record_id or ''}".rstrip()
        return _record_error("UNABLE_TO_LOCK_ROW", message)
    message = "Loyalty fields cannot be changed right now (validation rule injected by the emulator)"
    return _record_error("FIELD_CUSTOM_VALIDATION_EXCEPTION", message)


def _as_api_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Single-record calls answer errors as {message, errorCode, fields}, Collections as {statusCode, ...}."""
    return [{"message": e["message"], "errorCode": e["statusCode"], "fields": e["fields"]} for e in errors]


def _json_response(status: int, payload: Any) -> _Response:
    return _Response(status, json.dumps(payload, separators=(",", ":")).encode())


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], emulator: SalesforceEmulator) -> None:
        self.emulator = emulator
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return  # the client gave up (e.g. during a TIMEOUT fault); nothing to report
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: request lines and headers may carry tokens."""

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        response = self.server.emulator._dispatch(self.command, self.path, headers, body)
        self.send_response(response.status)
        if response.status != 204:
            self.send_header("Content-Type", response.content_type)
        for key, value in response.headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.body:
            self.wfile.write(response.body)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle
