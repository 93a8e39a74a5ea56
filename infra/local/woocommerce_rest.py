"""An emulated WooCommerce REST API (v3): the coupons the programme makes and the customers whose loyalty meta it
sets, for the embedded stack and the tests.

POST, GET (by id, or `?code=`) and DELETE (`?force=true`) /wp-json/wc/v3/coupons; GET and PUT (`meta_data`, each
entry updated by its key) /wp-json/wc/v3/customers/<id>; GET /wp-json/wc/v3/orders/<id>/refunds[/<refund id>],
each refund line naming the order line it took back in its meta data (`_refunded_item_id`); with HTTP basic
authentication by consumer key and secret, answered in WooCommerce's shapes: the coupon as stored, and errors as
`{"code": ..., "message": ..., "data": {"status": ...}}` (a code that exists, a discount type or amount
WooCommerce refuses, a date it cannot read). One emulator plays any number of sites: a path that starts
`/shops/<host>` is that site's (the address the stack gives the programme), else the Host header names it.
Faults can be injected: HTTP 5xx.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qs, urlsplit

from infra.local.json_server import JsonServer, shop_and_path

COUPONS = re.compile(r"^/wp-json/wc/v3/coupons(?:/(\d+))?$")
CUSTOMER = re.compile(r"^/wp-json/wc/v3/customers/(\d+)$")
REFUNDS = re.compile(r"^/wp-json/wc/v3/orders/(\d+)/refunds(?:/(\d+))?$")
CUSTOMER_FIELDS = {"email", "first_name", "last_name", "meta_data"}  # what the emulator lets a PUT change
DISCOUNT_TYPES = ("percent", "fixed_cart", "fixed_product")
FIELDS = {  # what a coupon may be given (WooCommerce ignores others; the emulator refuses them, to catch typos)
    "code", "amount", "discount_type", "description", "date_expires", "individual_use", "product_ids",
    "usage_limit", "usage_limit_per_user", "limit_usage_to_x_items", "free_shipping", "minimum_amount",
    "email_restrictions",
}  # fmt: skip


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, Any]]:
    return status, {"code": code, "message": message, "data": {"status": status}}


@dataclass
class WooCommerceRest:
    """The emulated API. ``keys`` maps each site's host to its (consumer key, consumer secret)."""

    keys: dict[str, tuple[str, str]] = field(default_factory=dict)
    coupons: dict[int, dict[str, Any]] = field(default_factory=dict)  # by id, each with its "site"
    customers: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)  # (site, id) -> the customer
    refunds: dict[tuple[str, int], list[dict[str, Any]]] = field(default_factory=dict)  # (site, order) -> refunds
    requests: int = 0
    _faults: int = 0
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(7001))
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self._server = JsonServer(self._http, "woocommerce-rest")

    def inject_server_errors(self, times: int = 1) -> None:
        with self._lock:
            self._faults += times

    def coupon(self, site: str, code: str) -> dict[str, Any] | None:
        with self._lock:
            return next((c for c in self.coupons.values() if c["site"] == site and c["code"] == code.lower()), None)

    def add_customer(self, site: str, customer_id: int, email: str) -> None:
        with self._lock:
            self.customers[(site, customer_id)] = {"id": customer_id, "email": email, "meta_data": []}

    def add_refund(self, site: str, order_id: int, refund_id: int, lines: dict[str, tuple[int, str]]) -> None:
        """A refund of the order as the shop's admin makes it: {order line id: (units, amount without tax)}."""
        items = [
            {"id": refund_id * 100 + n, "quantity": -units, "total": f"-{amount}", "subtotal": f"-{amount}",
             "meta_data": [{"id": refund_id * 1000 + n, "key": "_refunded_item_id", "value": line_id}]}
            for n, (line_id, (units, amount)) in enumerate(sorted(lines.items()))
        ]  # fmt: skip
        total = sum((Decimal(amount) for _, amount in lines.values()), Decimal(0))
        refund = {"id": refund_id, "amount": f"{total}", "reason": "", "line_items": items}
        with self._lock:
            self.refunds.setdefault((site, order_id), []).append(refund)

    def customer_meta(self, site: str, customer_id: int) -> dict[str, Any]:
        """The customer's meta as {key: value}."""
        with self._lock:
            found = self.customers.get((site, customer_id)) or {"meta_data": []}
            return {meta["key"]: meta["value"] for meta in found["meta_data"]}

    @property
    def url(self) -> str:
        return self._server.url

    def start(self, port: int = 0) -> WooCommerceRest:
        self._server.start(port)
        return self

    def stop(self) -> None:
        self._server.stop()

    def _http(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> tuple[int, Any]:
        site, path = shop_and_path(target, headers.get("Host", ""))
        return self.answer(method, path, site, headers.get("Authorization"), body)

    def answer(self, method: str, target: str, site: str, authorization: str | None, body: bytes) -> tuple[int, Any]:
        with self._lock:
            self.requests += 1
            fault, self._faults = self._faults > 0, max(0, self._faults - 1)
        split = urlsplit(target)
        route, customer, refunds = COUPONS.match(split.path), CUSTOMER.match(split.path), REFUNDS.match(split.path)
        if route is None and customer is None and refunds is None:
            return _error(404, "rest_no_route", "No route was found matching the URL and request method.")
        if not self._authorised(site, authorization):
            return _error(401, "woocommerce_rest_cannot_view", "Sorry, you cannot list resources.")
        if fault:
            return _error(503, "internal_server_error", "The site is experiencing technical difficulties.")
        if customer is not None:
            return self._customer(method, site, int(customer.group(1)), body)
        if refunds is not None:
            return self._refunds(method, site, int(refunds.group(1)), refunds.group(2))
        assert route is not None
        coupon_id = int(route.group(1)) if route.group(1) else None
        query = {name: values[-1] for name, values in parse_qs(split.query).items()}
        with self._lock:
            if method == "POST" and coupon_id is None:
                return self._create(site, body)
            if method == "GET" and coupon_id is None:
                code = query.get("code", "").lower()
                return 200, [c for c in self.coupons.values() if c["site"] == site and (not code or c["code"] == code)]
            found = self.coupons.get(coupon_id or -1)
            if found is None or found["site"] != site:
                return _error(404, "woocommerce_rest_shop_coupon_invalid_id", "Invalid ID.")
            if method == "GET":
                return 200, found
            if method == "DELETE":
                if query.get("force") != "true":
                    return _error(501, "woocommerce_rest_trash_not_supported", "Coupons do not support trashing.")
                return 200, self.coupons.pop(found["id"])
        return _error(404, "rest_no_route", "No route was found matching the URL and request method.")

    def _customer(self, method: str, site: str, customer_id: int, body: bytes) -> tuple[int, Any]:
        with self._lock:
            found = self.customers.get((site, customer_id))
            if found is None:
                return _error(400, "woocommerce_rest_invalid_id", "Invalid resource ID.")
            if method == "GET":
                return 200, found
            if method != "PUT":
                return _error(404, "rest_no_route", "No route was found matching the URL and request method.")
            given = _object(body, CUSTOMER_FIELDS)
            if isinstance(given, tuple):
                return given
            for meta in given.get("meta_data", []):
                if not isinstance(meta, dict) or not meta.get("key"):
                    return _error(400, "rest_invalid_param", "Invalid parameter(s): meta_data")
                kept = [m for m in found["meta_data"] if m["key"] != meta["key"]]
                found["meta_data"] = [*kept, {"id": len(kept) + 1, "key": meta["key"], "value": meta.get("value")}]
            found.update({k: v for k, v in given.items() if k != "meta_data"})
            return 200, found

    def _refunds(self, method: str, site: str, order_id: int, refund_id: str | None) -> tuple[int, Any]:
        if method != "GET":
            return _error(404, "rest_no_route", "No route was found matching the URL and request method.")
        with self._lock:
            found = self.refunds.get((site, order_id), [])
            if refund_id is None:
                return 200, found
            refund = next((r for r in found if r["id"] == int(refund_id)), None)
        if refund is None:
            return _error(404, "woocommerce_rest_invalid_id", "Invalid ID.")
        return 200, refund

    def _authorised(self, site: str, authorization: str | None) -> bool:
        expected = self.keys.get(site)
        if expected is None or not authorization or not authorization.startswith("Basic "):
            return False
        try:
            key, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
        except ValueError:
            return False
        return (key, secret) == expected

    def _create(self, site: str, body: bytes) -> tuple[int, Any]:
        given = _object(body, FIELDS)
        if isinstance(given, tuple):
            return given
        code = str(given.get("code") or "").strip().lower()
        if not code:
            return _error(400, "woocommerce_rest_empty_coupon_code", "The coupon code cannot be empty.")
        if any(c["site"] == site and c["code"] == code for c in self.coupons.values()):
            return _error(400, "woocommerce_rest_coupon_code_already_exists", "The coupon code already exists")
        if given.get("discount_type", "fixed_cart") not in DISCOUNT_TYPES:
            return _error(400, "rest_invalid_param", "Invalid parameter(s): discount_type")
        for name in ("amount", "minimum_amount"):
            if name in given and not _decimal_text(given[name]):
                return _error(400, "rest_invalid_param", f"Invalid parameter(s): {name}")
        if "date_expires" in given and not _date_text(given["date_expires"]):
            return _error(400, "rest_invalid_param", "Invalid parameter(s): date_expires")
        coupon = {
            "id": next(self._ids),
            "site": site,
            "code": code,
            "amount": str(given.get("amount", "0")),
            "discount_type": given.get("discount_type", "fixed_cart"),
            "description": given.get("description", ""),
            "date_expires": given.get("date_expires"),
            "usage_count": 0,
            "individual_use": bool(given.get("individual_use", False)),
            "product_ids": list(given.get("product_ids", [])),
            "usage_limit": given.get("usage_limit"),
            "usage_limit_per_user": given.get("usage_limit_per_user"),
            "limit_usage_to_x_items": given.get("limit_usage_to_x_items"),
            "free_shipping": bool(given.get("free_shipping", False)),
            "minimum_amount": str(given.get("minimum_amount", "0.00")),
            "email_restrictions": list(given.get("email_restrictions", [])),
            "used_by": [],
        }
        self.coupons[coupon["id"]] = coupon
        return 201, coupon


def _object(body: bytes, fields: set[str]) -> dict[str, Any] | tuple[int, dict[str, Any]]:
    """The body's JSON object, or WooCommerce's error for one that is not JSON, not an object, or has a parameter
    the emulator does not know (WooCommerce ignores those; refused here, to catch typos)."""
    try:
        given = json.loads(body)
    except ValueError:
        return _error(400, "rest_invalid_json", "Invalid JSON body passed.")
    if not isinstance(given, dict):
        return _error(400, "rest_invalid_json", "Invalid JSON body passed.")
    if unknown := set(given) - fields:
        return _error(400, "rest_invalid_param", f"Invalid parameter(s): {', '.join(sorted(unknown))}")
    return given


def _decimal_text(value: Any) -> bool:
    try:
        return isinstance(value, str | int) and Decimal(str(value)) >= 0
    except InvalidOperation:
        return False


def _date_text(value: Any) -> bool:
    try:
        date.fromisoformat(str(value)[:10])
    except ValueError:
        return False
    return True
