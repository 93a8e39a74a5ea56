"""The signatures of the member's page: Shopify's App Proxy signature, and the programme's own links and form
tokens (HMAC-SHA256 under the page's secret). Apart from the page itself, so that the offer sender signs the link
in every e-mail without loading the page's templates."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime, timedelta
from urllib.parse import urlencode

VIEW_LINK_DAYS = 30

Query = Sequence[tuple[str, str]]  # the query string's pairs, in order, repeats kept


def app_proxy_signature(secret: str, query: Query) -> str:
    """Shopify's App Proxy signature of a forwarded query (every parameter but ``signature``)."""
    values: dict[str, list[str]] = {}
    for name, value in query:
        if name != "signature":
            values.setdefault(name, []).append(value)
    message = "".join(f"{name}={','.join(found)}" for name, found in sorted(values.items()))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed(secret: str, *parts: str) -> str:
    return hmac.new(secret.encode(), "\n".join(parts).encode(), hashlib.sha256).hexdigest()[:32]


def same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode(), given.encode("utf-8", "surrogatepass"))


def page_link(base_url: str, secret: str, member_id: str, ends: datetime, nonce: str = "") -> str:
    """The page's link for a member: view only until ``ends``, or with a ``nonce`` a one-time redeem link."""
    end = str(int(ends.timestamp()))
    query = {"m": member_id, "e": end} | ({"n": nonce} if nonce else {})
    query["s"] = signed(secret, "page", member_id, end, nonce)
    return f"{base_url.rstrip('/')}?{urlencode(query)}"


def export_link(base_url: str, secret: str, member_id: str, name: str, ends: datetime) -> str:
    """The download link of a member's data export (``<page>/export``), until ``ends``: whoever has it may download
    the file (it goes to the member's own e-mail, or to a CRM user), so it lasts no longer than the file."""
    end = str(int(ends.timestamp()))
    query = {"m": member_id, "f": name, "e": end, "s": signed(secret, "export", member_id, name, end)}
    return f"{base_url.rstrip('/')}/export?{urlencode(query)}"


def export_asked(secret: str, query: Query, now: datetime) -> tuple[str, str] | None:
    """The (member, export name) a download link asks for, if it is signed under ``secret`` and not over."""
    asked = dict(query)
    member_id, name, end, given = (asked.get(key, "") for key in ("m", "f", "e", "s"))
    if not (member_id and name and end.isdigit() and same(signed(secret, "export", member_id, name, end), given)):
        return None
    return (member_id, name) if int(end) >= now.timestamp() else None


def view_link(base_url: str, secret: str, member_id: str, now: datetime) -> str:
    """The link every e-mail carries: the member's page, view only, for 30 days."""
    return page_link(base_url, secret, member_id, now + timedelta(days=VIEW_LINK_DAYS))
