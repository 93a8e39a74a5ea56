"""The embedded gateway's access log (what `make serve` prints for each request) shows no contact details."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request

import pytest

from infra.local.stack import Stack

QUERIES = ("email=anna.berg%40example.com&day=2026-12-01", "email=anna.berg@example.com", "phone=%2B46701234567")


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
