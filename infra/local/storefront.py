"""An emulated Shopify storefront for one shop, for the embedded stack and the browser test: a customer login and
the App Proxy at ``/apps/loyalty``.

As Shopify does, the proxy forwards a request under its prefix (``/apps/loyalty`` and below, GET or POST with its
body) to the proxy URL, adding ``shop``, ``logged_in_customer_id`` (blank when nobody is logged in),
``path_prefix`` and ``timestamp`` to the query, and ``signature``: the hex HMAC-SHA256, under the app's secret, of
every parameter but ``signature`` sorted by name, each ``name=value`` (several values joined by commas), joined
with nothing. The answer comes back as it is. The login is the emulator's own: ``/account/login?customer_id=N``
(or its form) logs customer N in with a session cookie and goes to ``return_url``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
import urllib.error
import urllib.request
from html import escape
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

PROXY_PREFIX = "/apps/loyalty"
SESSION_COOKIE = "storefront_customer"
SAFE_RETURN = re.compile(r"/(?![/\\])[A-Za-z0-9/_.~%?=&-]*")
FORWARDED_HEADERS = ("content-type", "accept-language", "user-agent")
RETURNED_HEADERS = ("content-type", "cache-control", "referrer-policy", "content-security-policy")


def proxy_signature(secret: str, query: list[tuple[str, str]]) -> str:
    """Written from Shopify's description, apart from the programme's own check, so that a mistake in one shows."""
    values: dict[str, list[str]] = {}
    for name, value in query:
        if name != "signature":
            values.setdefault(name, []).append(value)
    message = "".join(f"{name}={','.join(found)}" for name, found in sorted(values.items()))
    return hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()


def signed_proxy_query(secret: str, shop: str, customer_id: str, query: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The query Shopify forwards: the customer's own parameters and Shopify's, signed."""
    added = [
        ("shop", shop),
        ("logged_in_customer_id", customer_id),
        ("path_prefix", PROXY_PREFIX),
        ("timestamp", str(int(time.time()))),
    ]
    forwarded = [(k, v) for k, v in query if k not in {name for name, _ in added} | {"signature"}] + added
    return [*forwarded, ("signature", proxy_signature(secret, forwarded))]


class Storefront:
    """One shop's storefront, forwarding its App Proxy to ``proxy_url`` (the member page's address)."""

    def __init__(self, shop: str, app_secret: str, proxy_url: str) -> None:
        self.shop, self.app_secret, self.proxy_url = shop, app_secret, proxy_url
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, f"the storefront of {self.shop} is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def login_url(self, customer_id: int | str) -> str:
        """Where a customer logs in and lands on their loyalty page."""
        return f"{self.url}/account/login?" + urlencode({"customer_id": customer_id, "return_url": PROXY_PREFIX})

    def start(self, port: int = 0) -> Storefront:
        storefront = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, data = storefront.answer(self.command, self.path, dict(self.headers.items()), body)
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        name = f"storefront-{self.shop}"
        threading.Thread(target=self._server.serve_forever, args=(0.05,), name=name, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    # ------------------------------------------------------------ requests

    def answer(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        split = urlsplit(target)
        query = parse_qsl(split.query, keep_blank_values=True)
        if split.path == "/account/login":
            return self._login(method, query, body)
        if split.path == PROXY_PREFIX or split.path.startswith(PROXY_PREFIX + "/"):
            return self._proxy(method, split.path.removeprefix(PROXY_PREFIX), query, headers, body)
        return 404, [("Content-Type", "text/plain; charset=utf-8")], b"Not Found"

    def _login(
        self, method: str, query: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        given = dict(query) | (dict(parse_qsl(body.decode("utf-8", "replace"))) if method == "POST" else {})
        customer, back = given.get("customer_id", "").strip(), given.get("return_url") or PROXY_PREFIX
        if not SAFE_RETURN.fullmatch(back):  # a path of this shop only: never another site, nor a header break
            back = PROXY_PREFIX
        if not customer.isdigit():
            page = (
                '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Log in</title></head><body><main>'
                f"<h1>Log in to {escape(self.shop)}</h1>"
                '<form method="post"><label for="customer">Customer id</label> '
                '<input id="customer" name="customer_id" inputmode="numeric"> '
                f'<input type="hidden" name="return_url" value="{escape(back)}">'
                '<button type="submit">Log in</button></form></main></body></html>'
            )
            return 200, [("Content-Type", "text/html; charset=utf-8")], page.encode()
        cookie = f"{SESSION_COOKIE}={customer}; Path=/; HttpOnly; SameSite=Lax"
        return 303, [("Location", back), ("Set-Cookie", cookie)], b""

    def _proxy(
        self, method: str, rest: str, query: list[tuple[str, str]], headers: dict[str, str], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        lowered = {name.lower(): value for name, value in headers.items()}
        cookies = SimpleCookie(lowered.get("cookie", ""))
        customer = cookies[SESSION_COOKIE].value if SESSION_COOKIE in cookies else ""
        signed = signed_proxy_query(self.app_secret, self.shop, customer, query)
        request = urllib.request.Request(
            f"{self.proxy_url.rstrip('/')}{rest}?{urlencode(signed)}",
            data=body if method == "POST" else None,
            headers={name: lowered[name] for name in FORWARDED_HEADERS if name in lowered},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                status, answer, data = response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            status, answer, data = error.code, error.headers, error.read()
        returned = [(name, answer[name]) for name in RETURNED_HEADERS if answer.get(name)]
        return status, returned, data
