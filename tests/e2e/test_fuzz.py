"""Hostile callers on every route of the running stack: generated bodies, headers, paths and query strings.

Whatever comes, the answer is a status below 500 on a connection that stays up, and a request to a signed route
(the shops, Flow, Outbound Messages, unsubscribe) without a valid signature or token writes nothing: every item
of the tables is as it was, and no message was queued. Signed hostile bodies get the same answers a shop could
act on (never a 5xx).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import re
import string
import urllib.parse
from collections import Counter
from typing import Any

import boto3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.local.stack import Stack
from tests.e2e.conftest import EVENTS, SHOPIFY_SECRET, WOOCOMMERCE_SECRET

EXAMPLES = 150  # unsigned requests per route (and kind): they write nothing, so they are cheap
SIGNED_EXAMPLES = 30  # signed ones per route: what the shops' receiver queues is retried, then dead-lettered

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


def _mutated(name: str) -> st.SearchStrategy[bytes]:
    """A captured payload with some of its top-level fields replaced by anything; its e-mail addresses are the
    fuzzer's own, so what it earns goes to members no other test looks at."""
    captured = json.loads(re.sub(r"[\w.+-]+@", lambda m: "fuzz-" + m.group(0), (EVENTS / name).read_text()))
    keys = sorted(captured)
    replacements = st.dictionaries(st.sampled_from(keys) | st.text(max_size=8), json_values, min_size=1, max_size=4)
    return replacements.map(lambda changes: json.dumps({**captured, **changes}).encode())


def _nested(depth: int) -> bytes:
    return b'{"id": 1, "line_items": ' + b"[" * depth + b"]" * depth + b"}"


bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda value: json.dumps(value).encode()),
    st.integers(min_value=30, max_value=5_000).map(_nested),
    _mutated("shopify/orders_paid.json"),
    _mutated("woocommerce/order_completed.json"),
    _mutated("salesforce/flow_points_adjustment.json"),
    st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")),
)
header_text = st.text(alphabet=string.printable.strip() + "éÿ", max_size=60)  # what HTTP/1.1 headers carry
query_text = st.text(max_size=80)
SHOPIFY_TOPICS = ["orders/paid", "refunds/create", "customers/create", "products/update"]
WOO_TOPICS = ["order.updated", "customer.created", "product.updated"]


def _sign(body: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


class Client:
    """One keep-alive connection to the gateway; a dropped connection fails the test."""

    def __init__(self, stack: Stack) -> None:
        self.host, _, port = stack.gateway_url.removeprefix("http://").partition(":")
        self.port = int(port)
        self.statuses: Counter[int] = Counter()
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=30)

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> int:
        try:
            self.connection.request(method, path, body=body, headers=headers or {})
            response = self.connection.getresponse()
            response.read()
        except (http.client.HTTPException, OSError) as error:
            self.connection.close()  # the next request opens a new one
            raise AssertionError(f"{method} {path[:80]}: the connection dropped ({error!r})") from None
        self.statuses[response.status] += 1
        assert response.status < 500, f"{method} {path[:80]} answered {response.status}"
        return response.status


def _written(stack: Stack) -> tuple[str, int]:
    """A digest of every item of the stack's tables, and how many messages were ever sent to its queues."""
    dynamodb, digest = boto3.client("dynamodb"), hashlib.sha256()
    for name in ("LoyaltyTable", "IdempotencyTable"):
        pages = dynamodb.get_paginator("scan").paginate(TableName=stack.names[name], ConsistentRead=True)
        items = sorted(json.dumps(item, sort_keys=True) for page in pages for item in page["Items"])
        digest.update("\n".join(items).encode())
    return digest.hexdigest(), stack.activity.sends


def _run(test: Any, examples: int = EXAMPLES) -> None:
    settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))(test)()


def test_unsigned_requests_on_every_route_get_a_4xx_and_write_nothing(stack: Stack) -> None:
    client = Client(stack)
    stack.wait_idle()
    before = _written(stack)

    @given(body=bodies, topic=st.sampled_from(SHOPIFY_TOPICS) | header_text, signature=st.none() | header_text)
    def shopify(body: bytes, topic: str, signature: str | None) -> None:
        headers = {"Content-Type": "application/json", "X-Shopify-Topic": topic, "X-Shopify-Webhook-Id": "fuzz"}
        headers |= {"X-Shopify-Shop-Domain": "fuzz.myshopify.com"}
        if signature is not None:
            headers["X-Shopify-Hmac-Sha256"] = signature
        assert client.request("POST", "/webhooks/shopify", body, headers) in (400, 401, 413)

    @given(body=bodies, topic=st.sampled_from(WOO_TOPICS) | header_text, signature=st.none() | header_text)
    def woocommerce(body: bytes, topic: str, signature: str | None) -> None:
        headers = {"Content-Type": "application/json", "X-WC-Webhook-Topic": topic}
        headers |= {"X-WC-Webhook-Source": "https://fuzz.example.com/"}
        if signature is not None:
            headers["X-WC-Webhook-Signature"] = signature
        status = client.request("POST", "/webhooks/woocommerce", body, headers)
        assert status in (400, 401, 413) or (status == 200 and body.strip().startswith(b"webhook_id="))  # a ping

    @given(body=bodies, token=st.none() | query_text)
    def outbound(body: bytes, token: str | None) -> None:
        query = "" if token is None else "?" + urllib.parse.urlencode({"token": token})
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        assert client.request("POST", f"/webhooks/salesforce/outbound{query}", body, headers) == 401

    @given(body=bodies, secret=st.none() | header_text)
    def flow(body: bytes, secret: str | None) -> None:
        headers = {"Content-Type": "application/json"} | ({} if secret is None else {"X-Loyalty-Secret": secret})
        assert client.request("POST", "/webhooks/salesforce/flow", body, headers) in (401, 413)

    @given(member=st.text(min_size=1, max_size=3_000), email=query_text)
    def members(member: str, email: str) -> None:
        client.request("GET", "/members/" + urllib.parse.quote(member, safe=""))
        client.request("GET", "/members?" + urllib.parse.urlencode({"email": email}))

    @given(query=st.dictionaries(st.sampled_from(["m", "c", "t", "x"]), query_text, max_size=4), post=st.booleans())
    def unsubscribe(query: dict[str, str], post: bool) -> None:
        path = "/unsubscribe?" + urllib.parse.urlencode(query)
        assert client.request("POST" if post else "GET", path) < 500

    for route in (shopify, woocommerce, outbound, flow, members, unsubscribe):
        _run(route)
    stack.wait_idle()
    assert _written(stack) == before
    assert sum(client.statuses.values()) >= 6 * EXAMPLES


def test_signed_hostile_bodies_never_get_a_5xx(stack: Stack) -> None:
    client = Client(stack)

    @given(body=bodies, topic=st.sampled_from(SHOPIFY_TOPICS), webhook_id=st.uuids())
    def shopify(body: bytes, topic: str, webhook_id: Any) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Webhook-Id": str(webhook_id),
        }
        headers |= {"X-Shopify-Shop-Domain": "fuzz.myshopify.com", "X-Shopify-Hmac-Sha256": _sign(body, SHOPIFY_SECRET)}
        assert client.request("POST", "/webhooks/shopify", body, headers) in (200, 400, 413)

    @given(body=bodies, topic=st.sampled_from(WOO_TOPICS))
    def woocommerce(body: bytes, topic: str) -> None:
        headers = {"Content-Type": "application/json", "X-WC-Webhook-Topic": topic}
        headers |= {"X-WC-Webhook-Source": "https://fuzz.example.com/"}
        headers["X-WC-Webhook-Signature"] = _sign(body, WOOCOMMERCE_SECRET)
        assert client.request("POST", "/webhooks/woocommerce", body, headers) in (200, 400, 413)

    @given(body=bodies)
    def flow(body: bytes) -> None:
        headers = {"Content-Type": "application/json", "X-Loyalty-Secret": stack.secrets["SALESFORCE_CALLOUT_SECRET"]}
        assert client.request("POST", "/webhooks/salesforce/flow", body, headers) in (202, 400, 403, 404, 409, 413)

    @given(body=bodies)
    def outbound(body: bytes) -> None:
        token = urllib.parse.urlencode({"token": stack.secrets["SALESFORCE_OUTBOUND_TOKEN"]})
        headers = {"Content-Type": "text/xml; charset=utf-8"}
        assert client.request("POST", f"/webhooks/salesforce/outbound?{token}", body, headers) in (200, 400, 403, 413)

    for route in (shopify, woocommerce, flow, outbound):
        _run(route, SIGNED_EXAMPLES)
    stack.wait_idle(timeout=300)  # every delivery the mapping cannot read has reached the dead-letter queue
    assert client.statuses[400] > 0 and client.statuses[200] > 0
    sqs = boto3.client("sqs")  # the dead letters are the fuzzer's: the tests that read the queues find theirs alone
    for queue in ("LedgerDeadLetterQueue", "OfferDeadLetterQueue"):
        sqs.purge_queue(QueueUrl=stack.queue_url(queue))
