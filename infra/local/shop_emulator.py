"""Plays a Shopify store: builds webhook bodies in Shopify's REST shape, signs them and posts them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

import urllib3

from infra.local.simulation import PRODUCTS, Enrol, OrderPaid, Refund

VAT = Decimal("0.25")  # Swedish VAT, included in the prices
DISCOUNT = Decimal("0.15")  # what a discount code takes off every line


def sign_webhook(body: bytes, secret: str) -> str:
    """Shopify and WooCommerce sign alike: base64 HMAC-SHA256 of the body with the shared secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


def _customer_id(member_id: str) -> int:
    return 7_000_000_000_000 + int(member_id.rsplit("-", 1)[1])


def customer_payload(happening: Enrol) -> dict[str, Any]:
    number = happening.member_id.rsplit("-", 1)[1]
    return {
        "id": _customer_id(happening.member_id),
        "email": happening.email,
        "first_name": f"Member{number}",
        "last_name": "Demo",
        "phone": None,
        "locale": "sv-SE",
        "created_at": _iso(happening.at),
        "updated_at": _iso(happening.at),
        "email_marketing_consent": {"state": "subscribed", "opt_in_level": "single_opt_in"},
        "sms_marketing_consent": None,
    }


def product_payload(product_id: str, at: datetime) -> dict[str, Any]:
    title, price, categories = PRODUCTS[product_id]
    return {
        "id": int(product_id.removeprefix("p-")),
        "title": title,
        "product_type": categories[0] if categories else "",
        "tags": ", ".join(categories[1:]),
        "created_at": _iso(at),
        "updated_at": _iso(at),
        "variants": [{"id": int(product_id.removeprefix("p-")) * 10, "price": f"{price}.00"}],
    }


def order_payload(happening: OrderPaid, email: str) -> dict[str, Any]:
    lines = []
    codes = []
    for line_id, product_id, quantity in happening.lines:
        title, price, _ = PRODUCTS[product_id]
        gross = Decimal(price) * quantity
        discount = (gross * DISCOUNT).quantize(Decimal("0.01")) if happening.discount_code else Decimal(0)
        tax = ((gross - discount) * VAT / (1 + VAT)).quantize(Decimal("0.01"))
        lines.append(
            {
                "id": int(happening.order_id) * 10 + int(line_id),
                "product_id": int(product_id.removeprefix("p-")),
                "title": title,
                "quantity": quantity,
                "price": f"{price}.00",
                "total_discount": str(discount),
                "discount_allocations": [{"amount": str(discount), "discount_application_index": 0}]
                if discount
                else [],
                "tax_lines": [{"price": str(tax), "rate": 0.25, "title": "SE Moms"}],
                "gift_card": False,
            }
        )
        if discount:
            codes.append(discount)
    discount_codes = (
        [{"code": happening.discount_code, "amount": str(sum(codes, Decimal(0))), "type": "percentage"}]
        if happening.discount_code
        else []
    )
    return {
        "id": int(happening.order_id),
        "name": f"#{happening.order_id}",
        "email": email,
        "currency": "SEK",
        "taxes_included": True,
        "financial_status": "paid",
        "created_at": _iso(happening.at),
        "processed_at": _iso(happening.at),
        "updated_at": _iso(happening.at),
        "customer": {"id": _customer_id(happening.member_id), "email": email},
        "line_items": lines,
        "shipping_lines": [{"price": "49.00", "title": "PostNord"}],
        "discount_codes": discount_codes,
    }


def refund_payload(happening: Refund) -> dict[str, Any]:
    return {
        "id": int(happening.order_id) * 100 + int(happening.refund_id.rsplit("-r", 1)[1]),
        "order_id": int(happening.order_id),
        "created_at": _iso(happening.at),
        "refund_line_items": [
            {"line_item_id": int(happening.order_id) * 10 + int(line_id), "quantity": quantity}
            for line_id, quantity in happening.lines
        ],
    }


class ShopifyStore:
    """Posts signed webhooks as a store does, over connections kept alive (one per sender thread at most)."""

    def __init__(
        self, gateway_url: str, secret: str, domain: str = "demo-shop.myshopify.com", connections: int = 8
    ) -> None:
        self.url = gateway_url + "/webhooks/shopify"
        self.secret = secret
        self.domain = domain
        self.http = urllib3.PoolManager(maxsize=connections, block=True, retries=False, timeout=30.0)

    def send(self, topic: str, payload: dict[str, Any], webhook_id: str | None = None) -> int:
        body = json.dumps(payload).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": self.domain,
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-Hmac-Sha256": sign_webhook(body, self.secret),
        }
        return int(self.http.request("POST", self.url, body=body, headers=headers).status)
