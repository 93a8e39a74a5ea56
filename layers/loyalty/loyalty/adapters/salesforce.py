"""Salesforce REST through simple-salesforce: JWT bearer auth, bounded retries, and the daily limit watched.

The only module that imports simple_salesforce or knows Salesforce's wire format. simple-salesforce has no
retry and its own re-login can loop, so this wraps it: backoff and retry on UNABLE_TO_LOCK_ROW,
REQUEST_LIMIT_EXCEEDED, 5xx and timeouts, at most ``max_attempts`` tries; exactly one re-authentication on
INVALID_SESSION_ID. The session (access token) is reused for the container's life.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar
from urllib.parse import urlsplit

import jwt
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from loyalty.crm.fields import EMAIL, MEMBER_ID, RECORD_ID
from loyalty.errors import CrmAuthError, CrmRequestError, CrmRetryableError
from loyalty.observability import logger
from loyalty.ports.crm import RETRYABLE_CODES, RecordResult

T = TypeVar("T")
API_VERSION = "62.0"
COLLECTION_LIMIT = 200  # records per sObject Collections request
SLOW_DOWN_FROM = 0.8  # share of the daily API limit from which pushes are slowed


@dataclass(frozen=True)
class JwtCredentials:
    """From Secrets Manager: the External Client App's consumer key, its certificate's private key, the
    integration user, and the login URL (https://login.salesforce.com, https://test.salesforce.com or My Domain)."""

    consumer_key: str
    private_key: str
    username: str
    login_url: str

    @classmethod
    def from_secret(cls, secret: str | dict[str, Any]) -> JwtCredentials:
        try:
            values = json.loads(secret) if isinstance(secret, str) else secret
        except json.JSONDecodeError:
            raise CrmAuthError("the Salesforce secret is not JSON") from None
        try:
            return cls(
                consumer_key=values["consumer_key"],
                private_key=values["private_key"],
                username=values["username"],
                login_url=values.get("login_url", "https://login.salesforce.com").rstrip("/"),
            )
        except KeyError as missing:
            raise CrmAuthError(f"the Salesforce secret has no {missing.args[0]!r}") from None


class _PlainHttp(HTTPAdapter):
    """simple-salesforce builds https:// URLs; an instance URL on http (the local org emulator) is reached on http."""

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        request.url = (request.url or "").replace("https://", "http://", 1)
        return super().send(request, *args, **kwargs)


@dataclass
class SalesforceClient:
    credentials: Callable[[], JwtCredentials]
    timeout_seconds: float = 10.0
    max_attempts: int = 5
    backoff_seconds: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    _sf: Salesforce | None = field(default=None, init=False, repr=False)
    api_usage: tuple[int, int] | None = field(default=None, init=False)  # (used, daily limit) as last reported

    # ------------------------------------------------------------ auth

    def _login(self) -> Salesforce:
        creds = self.credentials()
        assertion = jwt.encode(
            {"iss": creds.consumer_key, "sub": creds.username, "aud": creds.login_url, "exp": int(time.time()) + 180},
            creds.private_key,
            algorithm="RS256",
        )
        try:
            response = requests.post(
                f"{creds.login_url}/services/oauth2/token",
                data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
                timeout=self.timeout_seconds,
            )
        except requests.RequestException as error:
            raise CrmRetryableError(f"Salesforce login did not answer: {type(error).__name__}") from error
        if response.status_code != 200:
            raise CrmAuthError(f"Salesforce refused the JWT bearer login ({response.status_code})")
        token = response.json()
        session = requests.Session()
        instance = token["instance_url"]
        if instance.startswith("http://"):
            session.mount(f"https://{urlsplit(instance).netloc}/", _PlainHttp())
        return Salesforce(instance_url=instance, session_id=token["access_token"], version=API_VERSION, session=session)

    def _session(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._login()
        return self._sf

    # ------------------------------------------------------------ calls

    def _call(self, name: str, operation: Callable[[Salesforce], T]) -> T:
        reauthenticated = False
        for attempt in range(1, self.max_attempts + 1):
            try:
                result = operation(self._session())
                self._watch_limits()
                return result
            except SalesforceExpiredSession as error:
                if reauthenticated:
                    raise CrmAuthError("Salesforce session invalid right after logging in again") from error
                logger.info("salesforce session expired; logging in again")
                self._sf = None
                reauthenticated = True
                continue
            except SalesforceError as error:
                codes = _error_codes(error.content)
                if error.status < 500 and not codes & RETRYABLE_CODES:
                    raise CrmRequestError(f"{name} refused ({error.status}): {', '.join(sorted(codes))}") from error
                reason = f"{error.status} {', '.join(sorted(codes))}".strip()
            except (requests.Timeout, requests.ConnectionError) as error:
                reason = type(error).__name__
            if attempt < self.max_attempts:
                delay = self.backoff_seconds * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
                logger.warning("salesforce call will be retried", call=name, reason=reason, attempt=attempt)
                self.sleep(delay)
        raise CrmRetryableError(f"{name} still failing after {self.max_attempts} attempts")

    def _watch_limits(self) -> None:
        assert self._sf is not None
        usage = self._sf.api_usage.get("api-usage")
        if usage is None:
            return
        used, total = int(usage.used), int(usage.total)
        self.api_usage = (used, total)
        share = used / total if total else 0.0
        if share >= SLOW_DOWN_FROM:
            delay = min(5.0, (share - SLOW_DOWN_FROM) / (1 - SLOW_DOWN_FROM) * 5.0)
            logger.warning("near the daily Salesforce API limit: slowing pushes", used=used, limit=total)
            self.sleep(delay)

    # ------------------------------------------------------------ what the plugin does

    def contacts_by_member_id(self, member_ids: Iterable[str]) -> dict[str, str]:
        """Contact id by loyalty member id, one query per 200 ids."""
        found: dict[str, str] = {}
        for chunk in _chunks(sorted(set(member_ids)), COLLECTION_LIMIT):
            soql = f"SELECT {RECORD_ID}, {MEMBER_ID} FROM Contact WHERE {MEMBER_ID} IN ({_quoted(chunk)})"
            for record in self._query(soql):
                found[record[MEMBER_ID]] = record[RECORD_ID]
        return found

    def contacts_by_email(self, emails: Iterable[str]) -> dict[str, list[str]]:
        """Contact ids by lower-cased e-mail (Salesforce compares text case-insensitively), one query per 200."""
        found: dict[str, list[str]] = {}
        for chunk in _chunks(sorted({e.lower() for e in emails}), COLLECTION_LIMIT):
            soql = f"SELECT {RECORD_ID}, {EMAIL}, {MEMBER_ID} FROM Contact WHERE {EMAIL} IN ({_quoted(chunk)})"
            for record in self._query(soql):
                if record.get(EMAIL):
                    found.setdefault(record[EMAIL].lower(), []).append(record[RECORD_ID])
        return found

    def ids_before(self, sobject: str, field: str, before: datetime, limit: int) -> list[str]:
        """One query: ids of the oldest records whose DateTime ``field`` is earlier than ``before``."""
        moment = before.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        soql = f"SELECT {RECORD_ID} FROM {sobject} WHERE {field} < {moment} ORDER BY {field} LIMIT {int(limit)}"
        return [record[RECORD_ID] for record in self._query(soql)]

    def ids_where(self, sobject: str, field: str, values: Sequence[str], set_field: str | None = None) -> list[str]:
        """One query per 200 values (all pages)."""
        found: list[str] = []
        for chunk in _chunks(sorted(set(values)), COLLECTION_LIMIT):
            soql = f"SELECT {RECORD_ID} FROM {sobject} WHERE {field} IN ({_quoted(chunk)})"
            if set_field:
                soql += f" AND {set_field} != null"
            found += [record[RECORD_ID] for record in self._query(soql)]
        return found

    def delete_records(self, sobject: str, ids: Sequence[str]) -> list[RecordResult]:
        """Delete through sObject Collections (DELETE composite/sobjects?ids=...), 200 a request, all-or-none off."""
        results: list[RecordResult] = []
        for chunk in _chunks(list(ids), COLLECTION_LIMIT):
            params = {"ids": ",".join(chunk), "allOrNone": "false"}
            answer = self._call("DELETE composite/sobjects", partial(self._delete_collection, params=params))
            results += [
                RecordResult(
                    record_id=item.get("id"),
                    success=bool(item.get("success")),
                    errors=tuple((e.get("statusCode", ""), e.get("message", "")) for e in item.get("errors") or ()),
                )
                for item in answer or ()
            ]
        return results

    def _query(self, soql: str) -> list[dict[str, Any]]:
        result = self._call("query", lambda sf: sf.query_all(soql, timeout=self.timeout_seconds))
        return list(result.get("records", []))

    def update_records(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[RecordResult]:
        """Update records (each with ``Id``) through sObject Collections, 200 a request, all-or-none off."""
        return self._collections("PATCH", sobject, records)

    def create_records(self, sobject: str, records: Sequence[dict[str, Any]]) -> list[RecordResult]:
        return self._collections("POST", sobject, records)

    def upsert_records(
        self, sobject: str, external_id_field: str, records: Sequence[dict[str, Any]]
    ) -> list[RecordResult]:
        """Create or update records matched by ``external_id_field`` (each record carries its value, never an
        ``Id``) through sObject Collections upsert (API 46.0+), 200 a request, all-or-none off. A retried push
        updates what the first one created; ``RecordResult.created`` says which happened."""
        return self._collections("PATCH", sobject, records, f"composite/sobjects/{sobject}/{external_id_field}")

    def _collections(
        self, method: str, sobject: str, records: Sequence[dict[str, Any]], path: str = "composite/sobjects"
    ) -> list[RecordResult]:
        results: list[RecordResult] = []
        for chunk in _chunks(list(records), COLLECTION_LIMIT):
            body = {"allOrNone": False, "records": [{"attributes": {"type": sobject}, **r} for r in chunk]}
            answer = self._call(f"{method} {path}", partial(self._send_collection, method=method, path=path, body=body))
            results += [
                RecordResult(
                    record_id=item.get("id"),
                    success=bool(item.get("success")),
                    errors=tuple((e.get("statusCode", ""), e.get("message", "")) for e in item.get("errors") or ()),
                    created=item.get("created"),
                )
                for item in answer or ()
            ]
        return results

    def _delete_collection(self, sf: Salesforce, params: dict[str, str]) -> Any:
        return sf.restful("composite/sobjects", method="DELETE", params=params, timeout=self.timeout_seconds)

    def _send_collection(self, sf: Salesforce, method: str, path: str, body: dict[str, Any]) -> Any:
        return sf.restful(path, method=method, json=body, timeout=self.timeout_seconds)


def _error_codes(content: Any) -> set[str]:
    if isinstance(content, list):
        return {str(item.get("errorCode", "")) for item in content if isinstance(item, dict)} - {""}
    return set()


def _quoted(values: Sequence[str]) -> str:
    return ", ".join("'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'" for value in values)


def _chunks(items: Sequence[T], size: int) -> list[Sequence[T]]:
    return [items[start : start + size] for start in range(0, len(items), size)]
