"""The programme in the shops: discount codes, and the member's tier and segment on their customer. Shopify
through the Admin GraphQL API, WooCommerce through its REST API.

Credentials come per shop from one secret (JSON, keyed by the shop as the ledger names it):
``{"shopify:<domain>": {"accessToken": "shpat_..."}, "woocommerce:<host>": {"consumerKey": "ck_...",
"consumerSecret": "cs_..."}}``; an optional ``apiUrl`` replaces ``https://<domain or host>`` (the embedded
stack's emulators, a shop behind another address).

Both retry a bounded number of times where the shop asks for patience (Shopify's THROTTLED, with the wait its
cost extension implies; HTTP 429 and 5xx; a connection that fails) and then raise ShopRetryableError; what the
shop refuses for good (Shopify's userErrors, WooCommerce's 4xx) raises ShopRefusedError with the shop's words.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

import urllib3
from pydantic import ValidationError

from loyalty.errors import ShopRefusedError, ShopRetryableError
from loyalty.ports.shops import CodeRequest, CustomerLabels, RefundedLine, ShopCode
from loyalty.shop.woocommerce import refund_lines
from loyalty.wire_json import describe

SHOPIFY_API_VERSION = "2025-07"
ATTEMPTS = 4
MAX_WAIT_SECONDS = 4.0
TIMEOUT = urllib3.Timeout(connect=3.0, read=10.0)

_CODE_FIELDS = "codeDiscountNode { id } userErrors { field message code }"
BASIC_CREATE = f"""mutation discountCodeBasicCreate($basicCodeDiscount: DiscountCodeBasicInput!) {{
  discountCodeBasicCreate(basicCodeDiscount: $basicCodeDiscount) {{ {_CODE_FIELDS} }}
}}"""
FREE_SHIPPING_CREATE = f"""mutation discountCodeFreeShippingCreate(
  $freeShippingCodeDiscount: DiscountCodeFreeShippingInput!) {{
  discountCodeFreeShippingCreate(freeShippingCodeDiscount: $freeShippingCodeDiscount) {{ {_CODE_FIELDS} }}
}}"""
DELETE = """mutation discountCodeDelete($id: ID!) {
  discountCodeDelete(id: $id) { deletedCodeDiscountId userErrors { field message code } }
}"""
BY_CODE = "query codeDiscountNodeByCode($code: String!) { codeDiscountNodeByCode(code: $code) { id } }"
CUSTOMER = "query customers($query: String!) { customers(first: 1, query: $query) { nodes { id } } }"
LABELS = """mutation loyaltyLabels(
  $metafields: [MetafieldsSetInput!]!, $id: ID!, $add: [String!]!, $remove: [String!]!) {
  metafieldsSet(metafields: $metafields) { userErrors { field message code } }
  tagsAdd(id: $id, tags: $add) { userErrors { field message } }
  tagsRemove(id: $id, tags: $remove) { userErrors { field message } }
}"""
CLEAR_SEGMENT = """mutation loyaltySegmentCleared($metafields: [MetafieldIdentifierInput!]!) {
  metafieldsDelete(metafields: $metafields) { userErrors { field message } }
}"""
METAFIELD_NAMESPACE = "loyalty"
TIER_TAG = "loyalty-tier-{}"


def _money(value: Decimal) -> str:
    return f"{value:.2f}"


class ShopCodesBySecret:
    """The ShopCodes and ShopCustomers ports for every shop in the credentials, each to its platform's client."""

    def __init__(self, credentials: Callable[[], Mapping[str, Mapping[str, str]]], sleep: Callable[[float], None]
                 = time.sleep) -> None:  # fmt: skip
        self._credentials = credentials
        self._http = urllib3.PoolManager(timeout=TIMEOUT, retries=False)
        self._sleep = sleep

    def _client(self, shop: str) -> ShopifyCodes | WooCommerceCodes:
        found = self._credentials().get(shop)
        if found is None:
            raise ShopRetryableError(f"no credentials for {shop} in the shop credentials secret")
        platform, _, name = shop.partition(":")
        base = str(found.get("apiUrl") or f"https://{name}").rstrip("/")
        if platform == "shopify":
            return ShopifyCodes(self._http, name, base, str(found.get("accessToken", "")), self._sleep)
        if platform == "woocommerce":
            key, secret = str(found.get("consumerKey", "")), str(found.get("consumerSecret", ""))
            return WooCommerceCodes(self._http, name, base, key, secret, self._sleep)
        raise ShopRefusedError(f"{shop} is on no platform the programme knows")

    def create(self, request: CodeRequest) -> ShopCode:
        return self._client(request.shop).create(request)

    def remove(self, shop: str, shop_code_id: str) -> None:
        self._client(shop).remove(shop_code_id)

    def label(self, labels: CustomerLabels) -> None:
        self._client(labels.shop).label(labels)

    def refund_lines(self, shop: str, order_id: str, refund_id: str) -> dict[str, RefundedLine]:
        client = self._client(shop)
        if not isinstance(client, WooCommerceCodes):
            raise ShopRefusedError(f"{shop}: its refunds come with their lines")
        return client.refund_lines(order_id, refund_id)


class ShopifyCodes:
    def __init__(
        self, http: urllib3.PoolManager, domain: str, base: str, token: str, sleep: Callable[[float], None]
    ) -> None:
        self.http, self.domain, self.token, self.sleep = http, domain, token, sleep
        self.url = f"{base}/admin/api/{SHOPIFY_API_VERSION}/graphql.json"

    def create(self, request: CodeRequest) -> ShopCode:
        customer = self._customer(request.customer_email) if request.customer_email else None
        common: dict[str, Any] = {
            "title": request.title,
            "code": request.code,
            "startsAt": request.starts_at.isoformat(),
            "endsAt": request.ends_at.isoformat(),
            "context": {"customers": {"add": [customer]}} if customer else {"all": "ALL"},
            "usageLimit": 1,
            "appliesOncePerCustomer": True,
        }
        if request.min_subtotal is not None:
            common["minimumRequirement"] = {"subtotal": {"greaterThanOrEqualToSubtotal": _money(request.min_subtotal)}}
        if request.kind == "free_shipping":
            document, name, variable = (
                FREE_SHIPPING_CREATE,
                "discountCodeFreeShippingCreate",
                "freeShippingCodeDiscount",
            )
            given = common | {"destination": {"all": True}}
        else:
            document, name, variable = BASIC_CREATE, "discountCodeBasicCreate", "basicCodeDiscount"
            given = common | {"customerGets": self._gets(request)}
        payload = self._call(document, {variable: given})[name]
        errors = payload.get("userErrors") or []
        if any(error.get("code") == "TAKEN" for error in errors):  # an earlier attempt made it
            found = self._call(BY_CODE, {"code": request.code}).get("codeDiscountNodeByCode")
            if found:
                return ShopCode(found["id"], self._apply_url(request.code))
        if errors or not payload.get("codeDiscountNode"):
            raise ShopRefusedError("; ".join(str(error.get("message")) for error in errors) or "no discount made")
        return ShopCode(payload["codeDiscountNode"]["id"], self._apply_url(request.code))

    def remove(self, shop_code_id: str) -> None:
        self._call(DELETE, {"id": shop_code_id})  # a discount already gone answers a userError: nothing to do

    def label(self, labels: CustomerLabels) -> None:
        customer = f"gid://shopify/Customer/{labels.customer_id}"
        fields = {"tier": labels.tier} | ({"segment": labels.segment} if labels.segment else {})
        metafields = [
            {"ownerId": customer, "namespace": METAFIELD_NAMESPACE, "key": key, "type": "single_line_text_field",
             "value": value}
            for key, value in fields.items()
        ]  # fmt: skip
        answer = self._call(
            LABELS,
            {
                "metafields": metafields,
                "id": customer,
                "add": [TIER_TAG.format(labels.tier)],
                "remove": [TIER_TAG.format(tier) for tier in labels.other_tiers],
            },
        )
        if labels.segment is None:  # no segment yet (or any more): none shown
            cleared = {"ownerId": customer, "namespace": METAFIELD_NAMESPACE, "key": "segment"}
            answer |= self._call(CLEAR_SEGMENT, {"metafields": [cleared]})
        errors = [error for part in answer.values() if part for error in part.get("userErrors") or []]
        if errors:
            raise ShopRefusedError("; ".join(str(error.get("message")) for error in errors))

    def _gets(self, request: CodeRequest) -> dict[str, Any]:
        if request.kind == "amount_off" and request.amount is not None:
            return {"value": {"discountAmount": {"amount": _money(request.amount), "appliesOnEachItem": False}},
                    "items": {"all": True}}  # fmt: skip
        if request.kind == "percent_off" and request.percent is not None:
            return {"value": {"percentage": float(request.percent / 100)}, "items": {"all": True}}
        if request.kind == "free_product" and request.product:
            kind = "productsToAdd" if "/Product/" in request.product else "productVariantsToAdd"
            gid = (
                request.product
                if request.product.startswith("gid://")
                else f"gid://shopify/ProductVariant/{request.product}"
            )
            return {"value": {"percentage": 1.0}, "items": {"products": {kind: [gid]}}}
        raise ShopRefusedError(f"a {request.kind} code needs its amount, percent or product for {self.domain}")

    def _customer(self, email: str) -> str | None:
        nodes = self._call(CUSTOMER, {"query": f'email:"{email}"'})["customers"]["nodes"]
        return str(nodes[0]["id"]) if nodes else None

    def _apply_url(self, code: str) -> str:
        return f"https://{self.domain}/discount/{code}"

    def _call(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps({"query": document, "variables": variables}).encode()
        headers = {"Content-Type": "application/json", "X-Shopify-Access-Token": self.token}
        for attempt in range(ATTEMPTS):
            wait = min(MAX_WAIT_SECONDS, 0.25 * 2**attempt)
            try:
                response = self.http.request("POST", self.url, body=body, headers=headers)
            except urllib3.exceptions.HTTPError:
                self.sleep(wait)
                continue
            if response.status in (429,) or response.status >= 500:
                self.sleep(float(response.headers.get("Retry-After") or wait))
                continue
            if response.status in (401, 403):
                raise ShopRetryableError(f"Shopify refused the access token of {self.domain} ({response.status})")
            if response.status != 200:
                raise ShopRefusedError(f"Shopify answered {response.status}: {response.data[:200]!r}")
            answer = json.loads(response.data)
            errors = answer.get("errors") or []
            if any((error.get("extensions") or {}).get("code") == "THROTTLED" for error in errors):
                self.sleep(min(MAX_WAIT_SECONDS, _throttle_wait(answer)))
                continue
            if errors:
                raise ShopRefusedError("; ".join(str(error.get("message")) for error in errors))
            return dict(answer["data"])
        raise ShopRetryableError(f"Shopify ({self.domain}) did not answer after {ATTEMPTS} attempts")


def _throttle_wait(answer: dict[str, Any]) -> float:
    """Seconds until the bucket holds what the request costs (Shopify's cost extension), at least a little."""
    cost = (answer.get("extensions") or {}).get("cost") or {}
    status = cost.get("throttleStatus") or {}
    needed = float(cost.get("requestedQueryCost") or 10) - float(status.get("currentlyAvailable") or 0)
    return max(0.1, needed / max(1.0, float(status.get("restoreRate") or 50)))


class WooCommerceCodes:
    """Coupons through the WooCommerce REST API v3 (basic authentication with the consumer key and secret)."""

    def __init__(
        self, http: urllib3.PoolManager, host: str, base: str, key: str, secret: str, sleep: Callable[[float], None]
    ) -> None:
        self.http, self.host, self.sleep = http, host, sleep
        self.url = f"{base}/wp-json/wc/v3/coupons"
        self.customers_url = f"{base}/wp-json/wc/v3/customers"
        self.orders_url = f"{base}/wp-json/wc/v3/orders"
        self.auth = "Basic " + base64.b64encode(f"{key}:{secret}".encode()).decode()

    def create(self, request: CodeRequest) -> ShopCode:
        coupon = self._coupon(request)
        status, answer = self._send("POST", self.url, coupon)
        if status in (200, 201):
            return ShopCode(str(answer["id"]), None)
        if status == 400 and answer.get("code") == "woocommerce_rest_coupon_code_already_exists":
            status, found = self._send("GET", f"{self.url}?code={request.code}", None)
            if status == 200 and found:
                return ShopCode(str(found[0]["id"]), None)
        raise ShopRefusedError(f"WooCommerce refused the coupon: {answer.get('message') or status}")

    def remove(self, shop_code_id: str) -> None:
        status, answer = self._send("DELETE", f"{self.url}/{shop_code_id}?force=true", None)
        if status not in (200, 404):
            raise ShopRefusedError(f"WooCommerce did not remove the coupon: {answer.get('message') or status}")

    def label(self, labels: CustomerLabels) -> None:
        meta = [
            {"key": "loyalty_tier", "value": labels.tier},
            {"key": "loyalty_segment", "value": labels.segment or ""},
        ]
        status, answer = self._send("PUT", f"{self.customers_url}/{labels.customer_id}", {"meta_data": meta})
        if status != 200:
            raise ShopRefusedError(f"WooCommerce did not update the customer: {answer.get('message') or status}")

    def refund_lines(self, order_id: str, refund_id: str) -> dict[str, RefundedLine]:
        status, answer = self._send("GET", f"{self.orders_url}/{order_id}/refunds/{refund_id}", None)
        if status != 200:
            raise ShopRefusedError(f"WooCommerce did not give refund {refund_id}: {answer.get('message') or status}")
        try:
            return refund_lines(answer)
        except ValidationError as error:
            raise ShopRefusedError(f"WooCommerce's refund {refund_id} could not be read: {describe(error)}") from None

    @staticmethod
    def _coupon(request: CodeRequest) -> dict[str, Any]:
        last_day = request.ends_at.date() - timedelta(days=1)  # the code ends at midnight after its last day
        coupon: dict[str, Any] = {
            "code": request.code,
            "description": request.title,
            "usage_limit": 1,
            "usage_limit_per_user": 1,
            "individual_use": True,
            "date_expires": last_day.isoformat(),  # WooCommerce keeps the expiry as a day
        }
        if request.customer_email:
            coupon["email_restrictions"] = [request.customer_email]
        if request.min_subtotal is not None:
            coupon["minimum_amount"] = _money(request.min_subtotal)
        if request.kind == "amount_off" and request.amount is not None:
            coupon |= {"discount_type": "fixed_cart", "amount": _money(request.amount)}
        elif request.kind == "percent_off" and request.percent is not None:
            coupon |= {"discount_type": "percent", "amount": f"{request.percent}"}
        elif request.kind == "free_shipping":
            coupon |= {"discount_type": "fixed_cart", "amount": "0", "free_shipping": True}
        elif request.kind == "free_product" and request.product:
            coupon |= {"discount_type": "percent", "amount": "100", "product_ids": [int(request.product)],
                       "limit_usage_to_x_items": 1}  # fmt: skip
        else:
            raise ShopRefusedError(f"a {request.kind} coupon needs its amount, percent or product")
        return coupon

    def _send(self, method: str, url: str, body: dict[str, Any] | None) -> tuple[int, Any]:
        headers = {"Authorization": self.auth, "Content-Type": "application/json"}
        data = json.dumps(body).encode() if body is not None else None
        for attempt in range(ATTEMPTS):
            wait = min(MAX_WAIT_SECONDS, 0.25 * 2**attempt)
            try:
                response = self.http.request(method, url, body=data, headers=headers)
            except urllib3.exceptions.HTTPError:
                self.sleep(wait)
                continue
            if response.status == 429 or response.status >= 500:
                self.sleep(float(response.headers.get("Retry-After") or wait))
                continue
            if response.status in (401, 403):
                raise ShopRetryableError(f"WooCommerce refused the API keys of {self.host} ({response.status})")
            try:
                return response.status, json.loads(response.data or b"{}")
            except ValueError:
                return response.status, {"message": response.data[:200].decode(errors="replace")}
        raise ShopRetryableError(f"WooCommerce ({self.host}) did not answer after {ATTEMPTS} attempts")
