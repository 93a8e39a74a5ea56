"""The embedded stack for end-to-end tests: started once on free ports, driven over HTTP as the shops do."""

from __future__ import annotations

import json
import os
import shutil
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from infra.local.dynamodb_local import free_port
from infra.local.shop_emulator import sign_webhook
from infra.local.stack import LOCAL_TIME_SCALE, Ports, Stack

EVENTS = Path(__file__).resolve().parents[1] / "events"
SHOPIFY_SECRET = "e2e-shopify-secret"
WOOCOMMERCE_SECRET = "e2e-woocommerce-secret"


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    saved = dict(os.environ)
    ports = Ports(gateway=free_port(), dynamodb=free_port(), moto=free_port(), salesforce=free_port())
    secrets = {"SHOPIFY_WEBHOOK_SECRET": SHOPIFY_SECRET, "WOOCOMMERCE_WEBHOOK_SECRET": WOOCOMMERCE_SECRET}
    with Stack(ports=ports, secrets=secrets, time_scale=LOCAL_TIME_SCALE) as running:
        Shop(running).shopify("products/create", payload("shopify/products_create.json"))  # the catalogue
        running.wait_idle()
        yield running
    os.environ.clear()
    os.environ.update(saved)


class Shop:
    """Sends webhooks to the gateway exactly as the platforms do: signed over the exact bytes."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(self.stack.gateway_url + path, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(self.stack.gateway_url + path, timeout=30) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def shopify(
        self, topic: str, body: bytes, webhook_id: str | None = None, secret: str = SHOPIFY_SECRET, sign: bool = True
    ) -> tuple[int, dict[str, Any]]:
        headers = {
            "Content-Type": "application/json",
            "X-Shopify-Topic": topic,
            "X-Shopify-Shop-Domain": "nordic-outdoor.myshopify.com",
            "X-Shopify-Webhook-Id": webhook_id or str(uuid.uuid4()),
            "X-Shopify-API-Version": "2025-07",
        }
        if sign:
            headers["X-Shopify-Hmac-Sha256"] = sign_webhook(body, secret)
        return self.post("/webhooks/shopify", body, headers)

    def woocommerce(self, topic: str, body: bytes, secret: str = WOOCOMMERCE_SECRET) -> tuple[int, dict[str, Any]]:
        resource, event = topic.split(".", 1)
        headers = {
            "Content-Type": "application/json",
            "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource,
            "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Source": "https://kahvila.example.fi/",
            "X-WC-Webhook-ID": "12",
            "X-WC-Webhook-Delivery-ID": str(uuid.uuid4()),
            "X-WC-Webhook-Signature": sign_webhook(body, secret),
        }
        return self.post("/webhooks/woocommerce", body, headers)


@pytest.fixture
def shop(stack: Stack) -> Shop:
    return Shop(stack)


def payload(name: str, **changes: Any) -> bytes:
    """A payload file's bytes; with ``changes``, its JSON with those top-level fields replaced."""
    raw = (EVENTS / name).read_bytes()
    if not changes:
        return raw
    data = json.loads(raw)
    data.update(changes)
    return json.dumps(data).encode()


# Chromium as root, offline: no sandbox, and none of the background connections this machine refuses
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",  # a container's small /dev/shm
]


def chromium_path() -> str:
    found = os.environ.get("LOYALTY_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    assert found, "the browser tests need Chromium: apt-get install chromium (or set LOYALTY_CHROMIUM)"
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()
