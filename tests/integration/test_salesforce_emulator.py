"""The local Salesforce emulator answers in the shapes Salesforce documents, so the plugin can be tested without an org.

Driven through simple-salesforce where it can be (as the plugin drives a real org) and raw HTTP otherwise.
"""

from __future__ import annotations

import json
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest

from infra.local.salesforce_emulator import DEFAULT_CRM_USER_15, JWT_BEARER, SalesforceEmulator, to_18_char_id
from infra.local.salesforce_schema import SchemaField, contact_fields

API = "/services/data/v59.0"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
ACK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<soapenv:Envelope xmlns:soapenv="{SOAP_NS}"><soapenv:Body>'
    f'<notificationsResponse xmlns="{OUTBOUND_NS}"><Ack>true</Ack></notificationsResponse>'
    "</soapenv:Body></soapenv:Envelope>"
)
CRM_USER = "0055g00000CrmUsAAC"


def _first_field(predicate: Any) -> SchemaField:
    return next(field for field in contact_fields().values() if predicate(field))


# Fields taken from the metadata in infra/salesforce, so the tests follow the real schema.
PICKLIST = _first_field(lambda f: f.type == "Picklist" and f.picklist_values and f.name.endswith("__c"))
MEMBER_ID = _first_field(lambda f: f.external_id and f.unique).name
POINTS = _first_field(lambda f: f.type == "Number" and f.name.endswith("__c")).name


class _PlainHttpAdapter(HTTPAdapter):
    """simple-salesforce always builds https:// URLs; the emulator speaks plain HTTP on localhost."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if request.url is not None and request.url.startswith("https://"):
            request.url = "http://" + request.url.removeprefix("https://")
        return super().send(request, *args, **kwargs)


class _Receiver:
    """A tiny HTTP endpoint that records every request and answers from a script, then with a default."""

    def __init__(self, answers: list[tuple[int, str]] | None = None, default: tuple[int, str] = (200, ACK)) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        answers_left = list(answers or [])
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                received.append(({k.lower(): v for k, v in self.headers.items()}, body))
                status, text = answers_left.pop(0) if answers_left else default
                payload = text.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json" if text.startswith("{") else "text/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/salesforce/outbound"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def emulator() -> Iterator[SalesforceEmulator]:
    with SalesforceEmulator(port=0) as running:
        yield running


def _integration_session(emulator: SalesforceEmulator) -> str:
    """A session of the integration user, logged in as the plugin logs in (the JWT bearer grant)."""
    data = {"grant_type": JWT_BEARER, "assertion": "header.claims.signature"}
    return str(requests.post(f"{emulator.url}/services/oauth2/token", data=data, timeout=5).json()["access_token"])


@pytest.fixture
def sf(emulator: SalesforceEmulator) -> Salesforce:
    """simple-salesforce as the plugin uses it: the integration user's session."""
    session = requests.Session()
    session.mount(emulator.url.replace("http://", "https://"), _PlainHttpAdapter())
    return Salesforce(instance_url=emulator.url, session_id=_integration_session(emulator), session=session)


@pytest.fixture
def api(emulator: SalesforceEmulator) -> requests.Session:
    """Raw HTTP with the integration user's session."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {_integration_session(emulator)}"
    return session


@pytest.fixture
def crm_user() -> requests.Session:
    """Raw HTTP as a CRM user: any bearer token the token endpoint did not issue (as a curl user would send)."""
    session = requests.Session()
    session.headers["Authorization"] = "Bearer a-crm-users-session"
    return session


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    endpoint = _Receiver()
    yield endpoint
    endpoint.close()


def _url(emulator: SalesforceEmulator, path: str) -> str:
    return f"{emulator.url}{API}/{path}"


def _seed(emulator: SalesforceEmulator, count: int) -> list[str]:
    """Contacts that already exist in the org (written as the integration user: no outbound message, no API call)."""
    return [
        emulator.create_contact_as_user(
            {"LastName": f"Member{n}", "Email": f"member{n}@example.com", MEMBER_ID: f"M-{n}"},
            user_id=emulator.integration_user_id,
        )
        for n in range(count)
    ]


def _collection(records: list[dict[str, Any]], all_or_none: bool = False) -> dict[str, Any]:
    return {"allOrNone": all_or_none, "records": [{"attributes": {"type": "Contact"}, **r} for r in records]}


# ------------------------------------------------------------------------------------------------ auth


def test_token_endpoint_issues_a_bearer_token_for_the_jwt_grant(emulator: SalesforceEmulator) -> None:
    # Given a signed JWT (the emulator does not check the signature)
    assertion = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJpbnRlZ3JhdGlvbkBleGFtcGxlLmNvbSJ9.c2lnbmF0dXJl"

    # When the plugin exchanges it at the token endpoint
    response = requests.post(
        f"{emulator.url}/services/oauth2/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
        timeout=5,
    )

    # Then it gets the documented token response, naming the org and the integration user
    assert response.status_code == 200
    token = response.json()
    assert token["access_token"].startswith(emulator.organization_id[:15] + "!")
    assert token["instance_url"] == emulator.url
    assert token["id"] == f"{emulator.url}/id/{emulator.organization_id}/{emulator.integration_user_id}"
    assert token["token_type"] == "Bearer"
    assert token["scope"] == "api"
    assert token["issued_at"].isdigit()


def test_token_endpoint_refuses_other_grant_types(emulator: SalesforceEmulator) -> None:
    # Given / When a password grant (SOAP-era login) is attempted
    response = requests.post(
        f"{emulator.url}/services/oauth2/token",
        data={"grant_type": "password", "username": "u", "password": "p"},
        timeout=5,
    )

    # Then it is refused as an unsupported grant type
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


def test_request_without_bearer_token_is_refused_as_invalid_session(emulator: SalesforceEmulator) -> None:
    # Given / When a data request carries no Authorization header
    response = requests.get(_url(emulator, "limits"), timeout=5)

    # Then it is 401 with Salesforce's error list, and it does not count as an API call
    assert response.status_code == 401
    assert response.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    assert emulator.api_calls == 0


# ------------------------------------------------------------------------------------ read resources


def test_versions_and_limits_have_the_documented_shape(emulator: SalesforceEmulator, api: requests.Session) -> None:
    # Given / When the versions list (no auth needed) and the org limits are read
    versions = requests.get(f"{emulator.url}/services/data/", timeout=5)
    limits = api.get(_url(emulator, "limits"), timeout=5)

    # Then versions list label/url/version, and limits report the daily API allocation after this call
    assert versions.status_code == 200
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions.json()
    assert "Sforce-Limit-Info" not in versions.headers
    assert limits.status_code == 200
    assert limits.json()["DailyApiRequests"] == {"Max": 15000, "Remaining": 14999}


def test_every_data_request_reports_usage_and_counts_exactly_one_call(
    emulator: SalesforceEmulator, api: requests.Session
) -> None:
    # Given an org that has used 100 calls today
    [contact_id] = _seed(emulator, 1)
    emulator.set_api_usage(100)
    calls_before = emulator.api_calls
    requests_to_make = [
        ("GET", "limits", None),
        ("GET", "query?q=SELECT+Id+FROM+Contact", None),
        ("GET", f"sobjects/Contact/{contact_id}", None),
        ("PATCH", f"sobjects/Contact/{contact_id}", {"FirstName": "Ada"}),
        ("PATCH", "composite/sobjects", _collection([{"id": contact_id, "FirstName": "Grace"}])),
        ("GET", "query?q=SELECT+Nope+FROM+Contact", None),  # errors count too
    ]

    for number, (method, path, body) in enumerate(requests_to_make, start=1):
        # When one more request is made
        response = api.request(method, _url(emulator, path), json=body, timeout=5)

        # Then its answer reports usage including itself, and the counter moved by exactly one
        assert response.headers["Sforce-Limit-Info"] == f"api-usage={100 + number}/15000"
        assert emulator.api_calls == calls_before + number

    # And the token endpoint and the versions list are not API calls
    requests.get(f"{emulator.url}/services/data/", timeout=5)
    assert emulator.api_calls == calls_before + len(requests_to_make)


# ------------------------------------------------------------------------------- simple-salesforce CRUD


def test_contact_created_queried_and_updated_through_simple_salesforce(
    emulator: SalesforceEmulator, sf: Salesforce
) -> None:
    # Given a Contact created through the REST API
    contacts = sf.Contact  # simple-salesforce builds a new SFType (with its own api_usage) on every attribute access
    created = contacts.create({"LastName": "Lovelace", "Email": "Ada@Example.com", POINTS: 120})
    contact_id = created["id"]
    assert created["success"] is True and created["errors"] == []
    assert contact_id.startswith("003") and len(contact_id) == 18

    # When it is found by e-mail (in another case) and its points are updated
    found = sf.query(f"SELECT Id, Email, {POINTS} FROM Contact WHERE Email = 'ada@example.COM'")
    status = contacts.update(contact_id, {POINTS: 150})

    # Then the query answers the documented shape and the update is applied, stamped by the integration user
    assert found["totalSize"] == 1 and found["done"] is True
    record = found["records"][0]
    assert record["attributes"] == {"type": "Contact", "url": f"{API}/sobjects/Contact/{contact_id}"}
    assert record["Email"] == "Ada@Example.com" and record[POINTS] == 120
    assert status == 204
    fetched = contacts.get(contact_id)
    assert fetched[POINTS] == 150
    assert fetched["LastModifiedById"] == emulator.integration_user_id
    assert fetched["LastModifiedDate"] >= fetched["CreatedDate"]
    assert fetched["LastModifiedDate"].endswith("+0000")
    assert contacts.api_usage["api-usage"].used == emulator.api_calls  # parsed from Sforce-Limit-Info


def test_upsert_by_external_id_creates_then_updates(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    # Given no Contact with this member id
    # When it is upserted twice by the external id
    first = sf.Contact.upsert(f"{MEMBER_ID}/M-77", {"LastName": "Hopper", POINTS: 10}, raw_response=True)
    second = sf.Contact.upsert(f"{MEMBER_ID}/M-77", {POINTS: 20}, raw_response=True)

    # Then the first creates (201), the second updates the same record (200, created false since v46.0)
    assert first.status_code == 201 and first.json()["created"] is True
    assert second.status_code == 200 and second.json() == {
        "id": first.json()["id"],
        "success": True,
        "errors": [],
        "created": False,
    }
    [contact] = emulator.contacts()
    assert contact[MEMBER_ID] == "M-77" and contact[POINTS] == 20


def test_last_name_is_required_as_in_every_org(sf: Salesforce) -> None:
    # Given / When a Contact is created without LastName
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Contact.create({"Email": "nolastname@example.com"})

    # Then the single-record call answers 400 with a list of errors using errorCode
    assert refused.value.status == 400
    assert refused.value.content == [
        {
            "message": "Required fields are missing: [LastName]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["LastName"],
        }
    ]


# ------------------------------------------------------------------------------------------- query


def test_query_matches_in_lists_and_email_case_insensitively(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    # Given three members
    ids = _seed(emulator, 3)

    # When the plugin looks them up by member id and by e-mail, with quotes escaped the SOQL way
    by_member = sf.query(f"SELECT Id, {MEMBER_ID} FROM Contact WHERE {MEMBER_ID} IN ('m-0', 'M-2', 'M-9')")
    by_email = sf.query("SELECT Id FROM Contact WHERE Email = 'MEMBER1@EXAMPLE.COM' OR Email = 'o\\'brien@x.se'")
    unset = sf.query(f"SELECT Id FROM Contact WHERE {POINTS} = null AND Email != null LIMIT 2")

    # Then text comparisons ignore case, as Salesforce's do
    assert sorted(r["Id"] for r in by_member["records"]) == sorted([ids[0], ids[2]])
    assert [r["Id"] for r in by_email["records"]] == [ids[1]]
    assert unset["totalSize"] == 2


def test_query_with_unknown_column_or_bad_syntax_is_refused(
    emulator: SalesforceEmulator, api: requests.Session
) -> None:
    # Given / When a query names a column the org does not have, and another is not SOQL
    unknown = api.get(_url(emulator, "query"), params={"q": "SELECT Id, Loyalty_Pints__c FROM Contact"}, timeout=5)
    unknown_in_where = api.get(_url(emulator, "query"), params={"q": "SELECT Id FROM Contact WHERE Tier = 'Gold'"})
    malformed = api.get(_url(emulator, "query"), params={"q": "SELECT FROM Contact WHERE"}, timeout=5)

    # Then both answer 400 with a list holding Salesforce's error code and message
    assert unknown.status_code == 400
    [error] = unknown.json()
    assert error["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Loyalty_Pints__c' on entity 'Contact'" in error["message"]
    assert unknown_in_where.json()[0]["errorCode"] == "INVALID_FIELD"
    assert malformed.status_code == 400
    assert malformed.json()[0]["errorCode"] == "MALFORMED_QUERY"


# ------------------------------------------------------------------------------- sObject Collections


def test_collections_update_reports_a_locked_row_by_position(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    # Given three Contacts, and a row lock that will hit the record at position 1
    ids = _seed(emulator, 3)
    emulator.inject("UNABLE_TO_LOCK_ROW", record_positions=(1,))

    # When all three are updated in one Collections call
    body = _collection([{"id": contact_id, POINTS: 10 * (n + 1)} for n, contact_id in enumerate(ids)])
    results = sf.restful("composite/sobjects", method="PATCH", json=body)

    # Then results match the request by position: only position 1 failed, with its errors as a list
    assert [r["success"] for r in results] == [True, False, True]
    assert results[0] == {"id": ids[0], "success": True, "errors": []}
    assert isinstance(results[1]["errors"], list)
    assert results[1]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert results[1]["errors"][0]["fields"] == []
    assert [emulator.contact(i)[POINTS] for i in ids] == [10, None, 30]


def test_collections_all_or_none_rolls_back_every_record(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    # Given two Contacts, and one bad value in a request that asks for all or none
    ids = _seed(emulator, 2)
    body = _collection(
        [{"id": ids[0], POINTS: 5}, {"id": ids[1], PICKLIST.name: "Not-a-value"}, {"LastName": "x"}],
        all_or_none=True,
    )

    # When it is sent
    results = sf.restful("composite/sobjects", method="PATCH", json=body)

    # Then nothing is applied and every record says why
    codes = [r["errors"][0]["statusCode"] for r in results]
    assert codes == [
        "ALL_OR_NONE_OPERATION_ROLLED_BACK",
        "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
        "MISSING_ARGUMENT",
    ]
    assert emulator.contact(ids[0])[POINTS] is None


def test_restricted_picklist_violation_fails_only_that_record(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    # Given a valid and an invalid value for a restricted picklist
    body = _collection(
        [
            {"LastName": "Bad", PICKLIST.name: PICKLIST.picklist_values[0].upper() + "!"},
            {"LastName": "Good", PICKLIST.name: PICKLIST.picklist_values[0]},
        ]
    )

    # When both are created in one call
    results = sf.restful("composite/sobjects", method="POST", json=body)

    # Then the bad one fails on its own, naming the field; the good one is created
    assert results[0]["success"] is False and "id" not in results[0]
    assert results[0]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert results[0]["errors"][0]["fields"] == [PICKLIST.name]
    assert results[1]["success"] is True
    assert [c["LastName"] for c in emulator.contacts()] == ["Good"]


def test_unknown_field_fails_the_whole_request(
    emulator: SalesforceEmulator, sf: Salesforce, api: requests.Session
) -> None:
    # Given one good record and one with a misspelt field
    [contact_id] = _seed(emulator, 1)
    body = _collection([{"id": contact_id, POINTS: 1}, {"id": contact_id, "Loyalty_Pints__c": 2}])

    # When sent as a Collections update, and as a single-record create through simple-salesforce
    response = api.patch(_url(emulator, "composite/sobjects"), json=body, timeout=5)
    with pytest.raises(SalesforceMalformedRequest) as refused:
        sf.Contact.create({"LastName": "X", "Loyalty_Pints__c": 2})

    # Then the whole request is 400 INVALID_FIELD, as a list, and nothing is written
    assert response.status_code == 400
    assert response.json() == [
        {"message": "No such column 'Loyalty_Pints__c' on sobject of type Contact", "errorCode": "INVALID_FIELD"}
    ]
    assert refused.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert emulator.contact(contact_id)[POINTS] is None
    assert len(emulator.contacts()) == 1


def test_value_of_the_wrong_type_fails_the_whole_request(emulator: SalesforceEmulator, api: requests.Session) -> None:
    # Given a number field sent text, as the JSON deserializer of a real org sees it
    [contact_id] = _seed(emulator, 1)
    body = _collection([{"id": contact_id, POINTS: "lots"}])

    # When it is sent
    response = api.patch(_url(emulator, "composite/sobjects"), json=body, timeout=5)

    # Then Salesforce's parser error comes back for the whole request
    assert response.status_code == 400
    [error] = response.json()
    assert error["errorCode"] == "JSON_PARSER_ERROR"
    assert error["message"].startswith("Cannot deserialize instance of double from VALUE_STRING value lots")


def test_more_than_200_records_are_refused(emulator: SalesforceEmulator, api: requests.Session) -> None:
    # Given 201 records
    body = _collection([{"LastName": f"L{n}"} for n in range(201)])

    # When they are sent in one Collections call
    response = api.post(_url(emulator, "composite/sobjects"), json=body, timeout=5)

    # Then the call is refused as a whole and nothing is created
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "EXCEEDED_ID_LIMIT"
    assert emulator.contacts() == []


def test_duplicate_member_id_and_unknown_or_deleted_ids_fail_per_record(
    emulator: SalesforceEmulator, sf: Salesforce
) -> None:
    # Given two members, one of them then deleted, and an id that never existed
    first, second = _seed(emulator, 2)
    sf.Contact.delete(second)
    never_existed = "0035g000000ZZZZAAA"

    # When one update reuses another member's id and the others target the missing records
    body = _collection(
        [
            {"id": first, MEMBER_ID: "m-1"},
            {"id": second, POINTS: 1},
            {"id": never_existed, POINTS: 1},
            {"id": "not-an-id", POINTS: 1},
        ]
    )
    _seed_third = emulator.create_contact_as_user(
        {"LastName": "Third", MEMBER_ID: "M-1"}, user_id=emulator.integration_user_id
    )
    results = sf.restful("composite/sobjects", method="PATCH", json=body)

    # Then each fails on its own with the code a real org uses
    assert [r["errors"][0]["statusCode"] for r in results] == [
        "DUPLICATE_VALUE",
        "ENTITY_IS_DELETED",
        "INVALID_CROSS_REFERENCE_KEY",
        "MALFORMED_ID",
    ]
    assert _seed_third in results[0]["errors"][0]["message"]


# ------------------------------------------------------------------------------------------- faults


def test_fault_request_limit_exceeded(emulator: SalesforceEmulator, api: requests.Session) -> None:
    # Given the daily limit is injected as exceeded once
    emulator.inject("REQUEST_LIMIT_EXCEEDED")

    # When two requests are made
    refused = api.get(_url(emulator, "limits"), timeout=5)
    allowed = api.get(_url(emulator, "limits"), timeout=5)

    # Then the first is 403 with Salesforce's body, the next one passes
    assert refused.status_code == 403
    assert refused.json() == [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert allowed.status_code == 200


def test_real_limit_is_enforced_near_the_daily_maximum(emulator: SalesforceEmulator, api: requests.Session) -> None:
    # Given an org one call short of its daily allocation
    emulator.set_api_usage(14999)

    # When two calls are made
    last = api.get(_url(emulator, "limits"), timeout=5)
    over = api.get(_url(emulator, "limits"), timeout=5)

    # Then the last allowed call says so, and the next is refused
    assert last.headers["Sforce-Limit-Info"] == "api-usage=15000/15000"
    assert over.status_code == 403 and over.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"


def test_fault_server_error(emulator: SalesforceEmulator, api: requests.Session) -> None:
    # Given a server error injected once
    emulator.inject("SERVER_ERROR")

    # When a query is made twice
    failed = api.get(_url(emulator, "query"), params={"q": "SELECT Id FROM Contact"}, timeout=5)
    retried = api.get(_url(emulator, "query"), params={"q": "SELECT Id FROM Contact"}, timeout=5)

    # Then the first gets a 503 page that is not JSON (clients must cope), the retry succeeds
    assert failed.status_code == 503
    assert failed.headers["Content-Type"].startswith("text/html")
    assert retried.status_code == 200


def test_fault_invalid_session_even_with_a_token(emulator: SalesforceEmulator, api: requests.Session) -> None:
    # Given the session is injected as expired once
    emulator.inject("INVALID_SESSION_ID")

    # When a request carries a bearer token
    expired = api.get(_url(emulator, "limits"), timeout=5)

    # Then it is 401 INVALID_SESSION_ID (the plugin re-authenticates once), and the next passes
    assert expired.status_code == 401
    assert expired.json()[0]["errorCode"] == "INVALID_SESSION_ID"
    assert api.get(_url(emulator, "limits"), timeout=5).status_code == 200


def test_fault_timeout_delays_the_answer_but_still_applies_the_write(
    emulator: SalesforceEmulator, api: requests.Session
) -> None:
    # Given a Contact, and a slow answer longer than the client waits
    [contact_id] = _seed(emulator, 1)
    emulator.inject("TIMEOUT", seconds=0.4)

    # When the client updates it with a short timeout
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.patch(_url(emulator, f"sobjects/Contact/{contact_id}"), json={POINTS: 7}, timeout=0.1)

    # Then the write still lands (as with a real org, a timed-out call may have succeeded)
    deadline = time.monotonic() + 3
    while emulator.contact(contact_id)[POINTS] is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emulator.contact(contact_id)[POINTS] == 7


def test_fault_unable_to_lock_row_on_single_record_calls(emulator: SalesforceEmulator, api: requests.Session) -> None:
    # Given a row lock injected for two requests
    [contact_id] = _seed(emulator, 1)
    emulator.inject("UNABLE_TO_LOCK_ROW", times=2)
    url = _url(emulator, f"sobjects/Contact/{contact_id}")

    # When the same update is tried three times
    statuses = [api.patch(url, json={POINTS: 3}, timeout=5) for _ in range(3)]

    # Then the first two fail with 400 UNABLE_TO_LOCK_ROW and the third is applied
    assert [r.status_code for r in statuses] == [400, 400, 204]
    assert statuses[0].json()[0]["errorCode"] == "UNABLE_TO_LOCK_ROW"
    assert emulator.contact(contact_id)[POINTS] == 3


def test_fault_validation_stays_until_cleared(emulator: SalesforceEmulator, sf: Salesforce) -> None:
    # Given a validation rule that rejects the record at position 0
    ids = _seed(emulator, 2)
    emulator.inject("VALIDATION", record_positions=(0,))
    body = _collection([{"id": ids[0], POINTS: 1}, {"id": ids[1], POINTS: 1}])

    # When the same update is sent twice, then once more after the rule is cleared
    first = sf.restful("composite/sobjects", method="PATCH", json=body)
    second = sf.restful("composite/sobjects", method="PATCH", json=body)
    emulator.clear_faults()
    third = sf.restful("composite/sobjects", method="PATCH", json=body)

    # Then the rule is permanent until cleared, and it only touches its position
    for results in (first, second):
        assert [r["success"] for r in results] == [False, True]
        assert results[0]["errors"][0]["statusCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
        assert results[0]["errors"][0]["message"]
    assert [r["success"] for r in third] == [True, True]


def test_faults_can_be_injected_over_http(emulator: SalesforceEmulator, api: requests.Session) -> None:
    # Given a `make serve` user who injects a fault with curl
    injected = requests.post(f"{emulator.url}/_emulator/faults", json={"kind": "SERVER_ERROR", "times": 1}, timeout=5)
    bad = requests.post(f"{emulator.url}/_emulator/faults", json={"kind": "NOPE"}, timeout=5)

    # When the plugin makes a call
    response = api.get(_url(emulator, "limits"), timeout=5)

    # Then the fault applies once, and unknown kinds are refused
    assert injected.status_code == 200 and injected.json()["faults"][0]["kind"] == "SERVER_ERROR"
    assert bad.status_code == 400
    assert response.status_code == 503
    assert api.get(_url(emulator, "limits"), timeout=5).status_code == 200


# --------------------------------------------------------------------------------- the org's side


def test_user_edit_sends_an_outbound_message_and_an_api_edit_does_not(
    emulator: SalesforceEmulator, sf: Salesforce, receiver: _Receiver
) -> None:
    # Given an Outbound Message on Contact for e-mail and phone, and a member in the org
    emulator.configure_outbound(receiver.url, ("Email", "MobilePhone"), emulator.integration_user_id)
    [contact_id] = _seed(emulator, 1)

    # When a CRM user changes the e-mail, and then the plugin (the integration user) writes points
    emulator.update_contact_as_user(contact_id, {"Email": "new&address@example.com"}, user_id=CRM_USER)
    sf.Contact.update(contact_id, {POINTS: 99})
    assert emulator.wait_for_outbound(timeout=5)

    # Then exactly one notification was delivered and acknowledged
    assert len(receiver.received) == 1
    [delivery] = emulator.outbound_deliveries
    assert delivery.contact_id == contact_id and delivery.status == 200 and delivery.acked
    headers, body = receiver.received[0]
    assert headers["content-type"] == "text/xml; charset=utf-8"
    assert headers["soapaction"] == '""'

    # And it has Salesforce's SOAP shape
    envelope = ET.fromstring(body)
    assert envelope.tag == f"{{{SOAP_NS}}}Envelope"
    notifications = envelope.find(f"{{{SOAP_NS}}}Body/{{{OUTBOUND_NS}}}notifications")
    assert notifications is not None
    assert notifications.findtext(f"{{{OUTBOUND_NS}}}OrganizationId") == emulator.organization_id
    assert (notifications.findtext(f"{{{OUTBOUND_NS}}}ActionId") or "").startswith("04k")
    session = notifications.find(f"{{{OUTBOUND_NS}}}SessionId")
    assert session is not None and session.get(f"{{{XSI_NS}}}nil") == "true"
    assert "/services/Soap/c/" in (notifications.findtext(f"{{{OUTBOUND_NS}}}EnterpriseUrl") or "")
    assert "/services/Soap/u/" in (notifications.findtext(f"{{{OUTBOUND_NS}}}PartnerUrl") or "")
    [notification] = notifications.findall(f"{{{OUTBOUND_NS}}}Notification")
    assert notification.findtext(f"{{{OUTBOUND_NS}}}Id") == delivery.notification_id
    assert delivery.notification_id.startswith("04l")
    sobject = notification.find(f"{{{OUTBOUND_NS}}}sObject")
    assert sobject is not None and sobject.get(f"{{{XSI_NS}}}type") == "sf:Contact"
    fields = {child.tag.removeprefix(f"{{{SOBJECT_NS}}}"): child for child in sobject}
    assert list(fields) == ["Id", "Email", "LastModifiedDate", "MobilePhone"]
    assert fields["Id"].text == contact_id
    assert fields["Email"].text == "new&address@example.com"
    assert fields["MobilePhone"].get(f"{{{XSI_NS}}}nil") == "true"
    assert emulator.contact(contact_id)["LastModifiedById"] == emulator.integration_user_id


def test_a_crm_users_rest_writes_send_outbound_messages_and_the_integration_users_do_not(
    emulator: SalesforceEmulator, api: requests.Session, crm_user: requests.Session, receiver: _Receiver
) -> None:
    # Given an Outbound Message on Contact, and a Contact the integration user wrote
    emulator.configure_outbound(receiver.url, ("Email",), emulator.integration_user_id)
    [seeded] = _seed(emulator, 1)

    # When a CRM user creates a Contact over REST, edits one, and edits another through Collections
    created = crm_user.post(
        _url(emulator, "sobjects/Contact"), json={"LastName": "New", "Email": "new@x.se"}, timeout=5
    )
    assert created.status_code == 201
    new_id = created.json()["id"]
    patched = crm_user.patch(_url(emulator, f"sobjects/Contact/{new_id}"), json={"Email": "newer@x.se"}, timeout=5)
    collection = crm_user.patch(
        _url(emulator, "composite/sobjects"), json=_collection([{"id": seeded, "Email": "seeded@x.se"}]), timeout=5
    )
    assert patched.status_code == 204 and collection.json()[0]["success"]
    assert emulator.wait_for_outbound(timeout=5)

    # Then each write sent a notification, stamped as the CRM user's
    delivered = [d for d in emulator.outbound_deliveries if d.acked]
    assert [d.contact_id for d in delivered].count(new_id) == 2 and [d.contact_id for d in delivered].count(seeded) == 1
    rest_user = to_18_char_id(DEFAULT_CRM_USER_15)
    assert emulator.contact(new_id)["CreatedById"] == emulator.contact(seeded)["LastModifiedById"] == rest_user

    # When the integration user (a session from the token endpoint) writes, one record and a collection
    api.patch(_url(emulator, f"sobjects/Contact/{new_id}"), json={POINTS: 10}, timeout=5).raise_for_status()
    api.post(_url(emulator, "composite/sobjects"), json=_collection([{"LastName": "Pushed"}]), timeout=5)
    assert emulator.wait_for_outbound(timeout=5)

    # Then nothing more is sent: the plugin's own writes never echo back
    assert len(emulator.outbound_deliveries) == len(delivered) == 3
    assert emulator.contact(new_id)["LastModifiedById"] == emulator.integration_user_id


def test_outbound_message_is_retried_until_acknowledged(emulator: SalesforceEmulator) -> None:
    # Given an endpoint that fails once, then answers without an ack, then acknowledges
    receiver = _Receiver(answers=[(500, "<error/>"), (200, "<nope/>")])
    try:
        emulator.configure_outbound(receiver.url, ("Email",), emulator.integration_user_id, backoff_seconds=0.01)

        # When a CRM user creates a Contact
        contact_id = emulator.create_contact_as_user({"LastName": "New", "Email": "new@example.com"})
        assert emulator.wait_for_outbound(timeout=5)
    finally:
        receiver.close()

    # Then the same notification was sent three times, and only the last one counts as acknowledged
    deliveries = emulator.outbound_deliveries
    assert [(d.attempt, d.status, d.acked) for d in deliveries] == [(1, 500, False), (2, 200, False), (3, 200, True)]
    assert {d.notification_id for d in deliveries} == {deliveries[0].notification_id}
    assert all(d.contact_id == contact_id for d in deliveries)


def test_flow_callout_carries_the_secret_header(emulator: SalesforceEmulator) -> None:
    # Given the plugin's callout endpoint
    receiver = _Receiver(default=(202, '{"status": "accepted"}'))
    try:
        # When a Flow calls out with an offer request
        status, answer = emulator.send_flow_callout(receiver.url, {"request_id": "r-1", "kind": "offer"}, "s3cret")
    finally:
        receiver.close()

    # Then our JSON arrives with the secret header the External Credential adds
    assert (status, answer) == (202, {"status": "accepted"})
    [(headers, body)] = receiver.received
    assert headers["x-loyalty-secret"] == "s3cret"
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == {"request_id": "r-1", "kind": "offer"}
