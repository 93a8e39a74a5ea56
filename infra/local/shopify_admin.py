"""An emulated Shopify Admin GraphQL API: the discount mutations and queries the programme uses, and the customer's
metafields and tags it sets, for the embedded stack and the tests.

Requests are parsed and validated by graphql-core against the schema below (the part of the Admin API we use,
with Shopify's type names), so a document or variables Shopify would refuse are refused here, with GraphQL
errors. On top of that, the checks Shopify makes come back as `userErrors` (a code taken, a blank title, a
percentage out of range, an end before the start), and every answer carries the `extensions.cost` Shopify
sends. Faults can be injected: `THROTTLED` (Shopify's throttle error, HTTP 200), HTTP 5xx, and a mutation's
userError (a refusal for good).

POST /admin/api/<version>/graphql.json with the header X-Shopify-Access-Token; one emulator plays any number of
shops: a path that starts `/shops/<domain>` is that shop's (the address the stack gives the programme), else the
Host header names it, as the URL's domain does in Shopify.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from graphql import GraphQLError, build_schema, graphql_sync

from infra.local.json_server import JsonServer, shop_and_path

API_PATH = re.compile(r"^/admin/api/(\d{4}-\d{2}|unstable)/graphql\.json$")
BUCKET = 2000  # a shop's query cost bucket, restored at RESTORE_RATE points a second (Shopify's standard plan)
RESTORE_RATE = 100
MUTATION_COST = 10
QUERY_COST = 1

SCHEMA = build_schema(
    """
    scalar DateTime
    scalar Decimal
    enum DiscountBuyerSelection { ALL }
    enum DiscountErrorCode { BLANK INVALID TAKEN TOO_LONG VALUE_OUTSIDE_RANGE INVALID_DATE_RANGE }
    input DiscountCustomersInput { add: [ID!] remove: [ID!] }
    input DiscountContextInput { all: DiscountBuyerSelection customers: DiscountCustomersInput }
    input DiscountAmountInput { amount: Decimal appliesOnEachItem: Boolean }
    input DiscountCustomerGetsValueInput { discountAmount: DiscountAmountInput percentage: Float }
    input DiscountProductsInput { productsToAdd: [ID!] productVariantsToAdd: [ID!] }
    input DiscountItemsInput { all: Boolean products: DiscountProductsInput }
    input DiscountCustomerGetsInput { value: DiscountCustomerGetsValueInput items: DiscountItemsInput }
    input DiscountMinimumSubtotalInput { greaterThanOrEqualToSubtotal: Decimal }
    input DiscountMinimumRequirementInput { subtotal: DiscountMinimumSubtotalInput }
    input DiscountShippingDestinationSelectionInput { all: Boolean }
    input DiscountCodeBasicInput {
      title: String code: String startsAt: DateTime endsAt: DateTime context: DiscountContextInput
      customerGets: DiscountCustomerGetsInput minimumRequirement: DiscountMinimumRequirementInput
      usageLimit: Int appliesOncePerCustomer: Boolean
    }
    input DiscountCodeFreeShippingInput {
      title: String code: String startsAt: DateTime endsAt: DateTime context: DiscountContextInput
      destination: DiscountShippingDestinationSelectionInput minimumRequirement: DiscountMinimumRequirementInput
      usageLimit: Int appliesOncePerCustomer: Boolean
    }
    type DiscountUserError { field: [String!] message: String! code: DiscountErrorCode }
    type DiscountCodeNode { id: ID! }
    type DiscountCodeBasicCreatePayload { codeDiscountNode: DiscountCodeNode userErrors: [DiscountUserError!]! }
    type DiscountCodeFreeShippingCreatePayload {
      codeDiscountNode: DiscountCodeNode userErrors: [DiscountUserError!]!
    }
    type DiscountCodeDeletePayload { deletedCodeDiscountId: ID userErrors: [DiscountUserError!]! }
    type Customer { id: ID! email: String }
    input MetafieldsSetInput { ownerId: ID! namespace: String key: String! type: String value: String! }
    input MetafieldIdentifierInput { ownerId: ID! namespace: String! key: String! }
    type MetafieldIdentifier { ownerId: ID! namespace: String! key: String! }
    type MetafieldsDeletePayload { deletedMetafields: [MetafieldIdentifier] userErrors: [UserError!]! }
    type Metafield { namespace: String! key: String! value: String! }
    type MetafieldsSetUserError { field: [String!] message: String! code: String }
    type MetafieldsSetPayload { metafields: [Metafield!] userErrors: [MetafieldsSetUserError!]! }
    type UserError { field: [String!] message: String! }
    type TagsAddPayload { node: Customer userErrors: [UserError!]! }
    type TagsRemovePayload { node: Customer userErrors: [UserError!]! }
    type CustomerConnection { nodes: [Customer!]! }
    type Query {
      codeDiscountNodeByCode(code: String!): DiscountCodeNode
      customers(first: Int, query: String): CustomerConnection!
    }
    type Mutation {
      discountCodeBasicCreate(basicCodeDiscount: DiscountCodeBasicInput!): DiscountCodeBasicCreatePayload
      discountCodeFreeShippingCreate(
        freeShippingCodeDiscount: DiscountCodeFreeShippingInput!
      ): DiscountCodeFreeShippingCreatePayload
      discountCodeDelete(id: ID!): DiscountCodeDeletePayload
      metafieldsSet(metafields: [MetafieldsSetInput!]!): MetafieldsSetPayload
      metafieldsDelete(metafields: [MetafieldIdentifierInput!]!): MetafieldsDeletePayload
      tagsAdd(id: ID!, tags: [String!]!): TagsAddPayload
      tagsRemove(id: ID!, tags: [String!]!): TagsRemovePayload
    }
    """
)


@dataclass
class Discount:
    """A code discount as the emulated shop holds it."""

    id: str
    shop: str
    code: str
    kind: str  # basic or free_shipping
    input: dict[str, Any]
    used: int = 0


def _user_error(field_path: list[str], message: str, code: str) -> dict[str, Any]:
    return {"field": field_path, "message": message, "code": code}


def _date(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class ShopifyAdmin:
    """The emulated API. ``tokens`` maps each shop domain to the Admin API access token it accepts."""

    tokens: dict[str, str] = field(default_factory=dict)
    discounts: dict[str, Discount] = field(default_factory=dict)  # by id
    customers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # shop -> [{id, email, tags, ...}]
    requests: int = 0
    _faults: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1_000_000_001))
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def __post_init__(self) -> None:
        self._server = JsonServer(self._http, "shopify-admin")

    # ------------------------------------------------------------ for tests and the demo

    def inject(self, fault: str, times: int = 1) -> None:
        """The next ``times`` requests fail with ``fault``: "throttled", "server_error" or "user_error" (a mutation
        refused with a userError; a query is answered)."""
        if fault not in ("throttled", "server_error", "user_error"):
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.extend([fault] * times)

    def discount(self, shop: str, code: str) -> Discount | None:
        with self._lock:
            return next((d for d in self.discounts.values() if d.shop == shop and d.code == code.upper()), None)

    def add_customer(self, shop: str, customer_id: int, email: str) -> None:
        with self._lock:
            self.customers.setdefault(shop, []).append(
                {"id": f"gid://shopify/Customer/{customer_id}", "email": email, "tags": set(), "metafields": {}}
            )

    def customer(self, shop: str, customer_id: int | str) -> dict[str, Any] | None:
        """The customer as the shop holds it: id, email, tags and metafields ({"namespace.key": value})."""
        wanted = customer_id if str(customer_id).startswith("gid://") else f"gid://shopify/Customer/{customer_id}"
        with self._lock:
            return next((c for c in self.customers.get(shop, []) if c["id"] == wanted), None)

    # ------------------------------------------------------------ serving

    @property
    def url(self) -> str:
        return self._server.url

    def start(self, port: int = 0) -> ShopifyAdmin:
        self._server.start(port)
        return self

    def stop(self) -> None:
        self._server.stop()

    def _http(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> tuple[int, Any]:
        if method != "POST":
            return 405, {"errors": "Method Not Allowed"}
        shop, path = shop_and_path(target, headers.get("Host", ""))
        return self.answer(path, shop, headers.get("X-Shopify-Access-Token"), body)

    # ------------------------------------------------------------ one request

    def answer(self, path: str, shop: str, token: str | None, body: bytes) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests += 1
            fault = self._faults.pop(0) if self._faults else None
        if not API_PATH.match(path.split("?")[0]):
            return 404, {"errors": "Not Found"}
        if not token or self.tokens.get(shop) != token:
            return 401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}
        if fault == "server_error":
            return 503, {"errors": "Service Unavailable"}
        try:
            request = json.loads(body)
            document, variables = request["query"], request.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return 400, {"errors": {"query": "Required parameter missing or invalid"}}
        mutation = document.lstrip().startswith("mutation")
        cost = MUTATION_COST if mutation else QUERY_COST
        if fault == "user_error" and not mutation:  # a refusal waits for the next mutation
            with self._lock:
                self._faults.insert(0, fault)
            fault = None
        if fault == "throttled":
            return 200, {
                "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                "extensions": {"cost": self._cost(cost, 0, available=0)},
            }
        root = _Root(self, shop, refuse=fault == "user_error")
        result = graphql_sync(SCHEMA, document, root_value=root, variable_values=variables)
        answer: dict[str, Any] = {"extensions": {"cost": self._cost(cost, cost, available=BUCKET - cost)}}
        if result.errors:
            answer["errors"] = [_error(e) for e in result.errors]
        if result.data is not None:
            answer["data"] = result.data
        return 200, answer

    @staticmethod
    def _cost(requested: int, actual: int, available: int) -> dict[str, Any]:
        return {
            "requestedQueryCost": requested,
            "actualQueryCost": actual,
            "throttleStatus": {
                "maximumAvailable": float(BUCKET),
                "currentlyAvailable": available,
                "restoreRate": float(RESTORE_RATE),
            },
        }

    # ------------------------------------------------------------ the resolvers' work

    def create(self, shop: str, kind: str, given: dict[str, Any], path: str, refuse: bool = False) -> dict[str, Any]:
        errors = _check(given, path, kind)
        if refuse:
            errors.append(
                _user_error([path], "Discount could not be created: the shop's plan does not allow it", "INVALID")
            )
        code = str(given.get("code") or "").strip()
        with self._lock:
            if code and self.discount(shop, code) is not None:
                errors.append(_user_error([path, "code"], "Code must be unique. Please try a different code.", "TAKEN"))
            if errors:
                return {"codeDiscountNode": None, "userErrors": errors}
            discount = Discount(f"gid://shopify/DiscountCodeNode/{next(self._ids)}", shop, code.upper(), kind, given)
            self.discounts[discount.id] = discount
        return {"codeDiscountNode": {"id": discount.id}, "userErrors": []}

    def set_metafields(self, shop: str, given: list[dict[str, Any]]) -> dict[str, Any]:
        errors, set_ = [], []
        with self._lock:
            for number, metafield in enumerate(given):
                owner = self.customer(shop, metafield["ownerId"])
                if owner is None:
                    errors.append({"field": ["metafields", str(number), "ownerId"], "message": "Owner does not exist",
                                   "code": "INVALID_VALUE"})  # fmt: skip
                elif not metafield.get("namespace") or not str(metafield["value"]).strip():
                    errors.append({"field": ["metafields", str(number), "value"], "message": "Value can't be blank",
                                   "code": "BLANK"})  # fmt: skip
                else:
                    set_.append(metafield)
            if errors:  # Shopify sets all of them or none
                return {"metafields": [], "userErrors": errors}
            for metafield in set_:
                owner = self.customer(shop, metafield["ownerId"])
                assert owner is not None
                owner["metafields"][f"{metafield['namespace']}.{metafield['key']}"] = metafield["value"]
        return {"metafields": [{k: m[k] for k in ("namespace", "key", "value")} for m in set_], "userErrors": []}

    def delete_metafields(self, shop: str, given: list[dict[str, Any]]) -> dict[str, Any]:
        deleted: list[dict[str, Any] | None] = []
        with self._lock:
            for metafield in given:
                owner = self.customer(shop, metafield["ownerId"])
                name = f"{metafield['namespace']}.{metafield['key']}"
                deleted.append(metafield if owner is not None and owner["metafields"].pop(name, None) else None)
        return {"deletedMetafields": deleted, "userErrors": []}  # one that was not there: null, as Shopify says

    def change_tags(self, shop: str, customer_id: str, tags: list[str], add: bool) -> dict[str, Any]:
        with self._lock:
            owner = self.customer(shop, customer_id)
            if owner is None:
                return {"node": None, "userErrors": [{"field": ["id"], "message": "Customer does not exist"}]}
            owner["tags"] = owner["tags"] | set(tags) if add else owner["tags"] - set(tags)
            return {"node": {"id": owner["id"], "email": owner["email"]}, "userErrors": []}

    def delete(self, shop: str, discount_id: str) -> dict[str, Any]:
        with self._lock:
            found = self.discounts.get(discount_id)
            if found is None or found.shop != shop:
                return {
                    "deletedCodeDiscountId": None,
                    "userErrors": [_user_error(["id"], "Discount does not exist", "INVALID")],
                }
            del self.discounts[discount_id]
        return {"deletedCodeDiscountId": discount_id, "userErrors": []}


def _check(given: dict[str, Any], path: str, kind: str) -> list[dict[str, Any]]:
    """The userErrors Shopify gives for what the programme could get wrong."""
    errors = []
    for name in ("title", "code", "startsAt"):
        if not str(given.get(name) or "").strip():
            errors.append(_user_error([path, name], f"{name[0].upper()}{name[1:]} can't be blank", "BLANK"))
    if len(str(given.get("code") or "")) > 255:
        errors.append(_user_error([path, "code"], "Code is too long (maximum is 255 characters)", "TOO_LONG"))
    if given.get("context") is None:
        errors.append(_user_error([path, "context"], "Context can't be blank", "BLANK"))
    starts, ends = _date(given.get("startsAt")), _date(given.get("endsAt"))
    if given.get("endsAt") is not None and (ends is None or (starts is not None and ends <= starts)):
        errors.append(_user_error([path, "endsAt"], "Ends at needs to be after starts_at", "INVALID_DATE_RANGE"))
    if kind == "basic":
        value = ((given.get("customerGets") or {}).get("value")) or {}
        percentage, amount = value.get("percentage"), (value.get("discountAmount") or {}).get("amount")
        if percentage is None and amount is None:
            errors.append(_user_error([path, "customerGets", "value"], "Value can't be blank", "BLANK"))
        if percentage is not None and not 0 < percentage <= 1:
            errors.append(
                _user_error([path, "customerGets", "value", "percentage"], "Value must be between 0.0 and 1.0",
                            "VALUE_OUTSIDE_RANGE")
            )  # fmt: skip
        if amount is not None and not _positive(amount):
            errors.append(
                _user_error([path, "customerGets", "value", "discountAmount", "amount"],
                            "Value must be greater than 0", "VALUE_OUTSIDE_RANGE")
            )  # fmt: skip
    usage = given.get("usageLimit")
    if usage is not None and usage < 1:
        errors.append(_user_error([path, "usageLimit"], "Usage limit must be greater than 0", "VALUE_OUTSIDE_RANGE"))
    return errors


def _positive(amount: Any) -> bool:
    try:
        return Decimal(str(amount)) > 0
    except InvalidOperation:
        return False


def _error(error: GraphQLError) -> dict[str, Any]:
    answer: dict[str, Any] = {"message": error.message}
    if error.locations:
        answer["locations"] = [{"line": loc.line, "column": loc.column} for loc in error.locations]
    if error.path:
        answer["path"] = list(error.path)
    return answer


class _Root:
    """The operations' resolvers (graphql-core calls root fields as methods of the root value)."""

    def __init__(self, admin: ShopifyAdmin, shop: str, refuse: bool = False) -> None:
        self.admin, self.shop, self.refuse = admin, shop, refuse

    def discountCodeBasicCreate(self, _info: Any, basicCodeDiscount: dict[str, Any]) -> dict[str, Any]:
        return self.admin.create(self.shop, "basic", basicCodeDiscount, "basicCodeDiscount", self.refuse)

    def discountCodeFreeShippingCreate(self, _info: Any, freeShippingCodeDiscount: dict[str, Any]) -> dict[str, Any]:
        given, path = freeShippingCodeDiscount, "freeShippingCodeDiscount"
        return self.admin.create(self.shop, "free_shipping", given, path, self.refuse)

    def discountCodeDelete(self, _info: Any, id: str) -> dict[str, Any]:
        return self.admin.delete(self.shop, id)

    def codeDiscountNodeByCode(self, _info: Any, code: str) -> dict[str, Any] | None:
        found = self.admin.discount(self.shop, code)
        return {"id": found.id} if found is not None else None

    def customers(self, _info: Any, first: int | None = None, query: str | None = None) -> dict[str, Any]:
        wanted = (query or "").removeprefix("email:").strip().strip('"').lower()
        with self.admin._lock:
            nodes = [c for c in self.admin.customers.get(self.shop, []) if not wanted or c["email"].lower() == wanted]
        return {"nodes": nodes[: first or 50]}

    def metafieldsSet(self, _info: Any, metafields: list[dict[str, Any]]) -> dict[str, Any]:
        return self.admin.set_metafields(self.shop, metafields)

    def metafieldsDelete(self, _info: Any, metafields: list[dict[str, Any]]) -> dict[str, Any]:
        return self.admin.delete_metafields(self.shop, metafields)

    def tagsAdd(self, _info: Any, id: str, tags: list[str]) -> dict[str, Any]:
        return self.admin.change_tags(self.shop, id, tags, add=True)

    def tagsRemove(self, _info: Any, id: str, tags: list[str]) -> dict[str, Any]:
        return self.admin.change_tags(self.shop, id, tags, add=False)
