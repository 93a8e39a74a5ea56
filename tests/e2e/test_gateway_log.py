"""The embedded gateway's access log (what `make serve` prints for each request) shows no contact details."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request

import pytest

from infra.local.stack import Stack

QUERIES = ("email=anna.berg%40example.com&day=2026-12-01", "email=anna.berg@example.com", "phone=%2B46701234567")
SECRET = "k3M9pQ2vX7sLw4Rt"


def test_the_access_log_masks_e_mail_addresses_and_phone_numbers_in_the_query(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the gateway logging each request, as under `make serve`
    monkeypatch.setattr(stack, "quiet", False)
    capsys.readouterr()
    # When members are looked up by e-mail (encoded, as browsers send it, and as curl sends it) and by phone
    for query in QUERIES:
        with contextlib.suppress(urllib.error.HTTPError):  # whatever the answer: the request is logged
            urllib.request.urlopen(f"{stack.gateway_url}/members?{query}", timeout=30).close()
    # Then the log lines show them masked as the product's logs do, and the rest of the query as it was
    log = capsys.readouterr().err
    assert '"GET /members?email=a***@e***.com&day=2026-12-01 HTTP/1.1"' in log
    assert '"GET /members?email=a***@e***.com HTTP/1.1"' in log
    assert '"GET /members?phone=***67 HTTP/1.1"' in log
    assert "anna.berg" not in log
    assert "example.com" not in log
    assert "4670123" not in log


def test_the_access_log_hides_the_outbound_token_and_the_unsubscribe_signature(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "quiet", False)
    capsys.readouterr()
    for path in (f"/webhooks/salesforce/outbound?token={SECRET}", f"/unsubscribe?m=m1&c=email&t={SECRET}"):
        request = urllib.request.Request(f"{stack.gateway_url}{path}", data=b"<x/>", method="POST")
        with contextlib.suppress(urllib.error.HTTPError):
            urllib.request.urlopen(request, timeout=30).close()
    log = capsys.readouterr().err
    assert '"POST /webhooks/salesforce/outbound?token=*** HTTP/1.1"' in log
    assert '"POST /unsubscribe?m=m1&c=email&t=*** HTTP/1.1"' in log
    assert SECRET not in log
