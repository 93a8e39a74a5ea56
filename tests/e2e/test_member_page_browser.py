"""The member's own page in a real browser (Debian's Chromium, driven by Playwright) through the embedded stack:
a customer logs in to the emulated Shopify storefront and opens /apps/loyalty through its App Proxy (each request
signed by the shop), redeems 500 points, sees the code that the shop now has, uses it in an order and sees it used;
the link in their e-mail shows the page, mails a one-time link, and that link redeems once. Every page is checked
with axe-core and photographed at phone and desktop widths under .artifacts/."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Browser, Page

from infra.local.stack import Stack
from tests.e2e.conftest import Shop
from tests.e2e.test_offers import emails_to
from tests.e2e.test_rewards_api import SHOP, call, redemption
from tests.e2e.test_salesforce import CALLOUT_SECRET, callout
from tests.e2e.test_webshop_pipeline import shopify_order, unique_email

ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
LINK = re.compile(r"https?://[^\s\"<>]+/apps/loyalty\?[^\s\"<>]+")


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, locale="en-GB")
    opened = context.new_page()
    yield opened
    context.close()


def accessible_and_photographed(page: Page, name: str) -> None:
    """No axe-core violation; screenshots at phone and desktop widths."""
    results = Axe().run(page)
    assert results.violations_count == 0, results.generate_report()
    ARTIFACTS.mkdir(exist_ok=True)
    for width, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        page.screenshot(path=str(ARTIFACTS / f"member-page-{name}-{width}.png"), full_page=True)
    page.set_viewport_size(PHONE)


def customer_with_points(stack: Stack, shop: Shop, points: int) -> tuple[int, str, str]:
    """A Shopify customer enrolled by their first order and given ``points``: (customer id, e-mail, member id)."""
    email, customer_id = unique_email(), int(time.time() * 1000)
    assert shop.shopify("orders/paid", shopify_order(email, customer_id=customer_id))[0] == 200
    stack.wait_idle()
    member_id = shop.get(f"/members?email={email}")[1]["memberId"]
    body = callout(stack, "points.adjustment", contact={"id": None, "loyaltyMemberId": member_id, "email": None})
    body["adjustment"]["points"] = points
    url = f"{stack.gateway_url}/webhooks/salesforce/flow"
    assert stack.salesforce.send_flow_callout(url, body, CALLOUT_SECRET)[0] == 202
    stack.wait_idle()
    return customer_id, email, member_id


def available(stack: Stack, member_id: str) -> int:
    _, member = call(stack, "GET", f"/members/{member_id}")
    return int(member["points"]["available"])


def shown_points(page: Page) -> int:
    return int(re.sub(r"\D", "", page.get_by_test_id("available").inner_text()))


def page_links(stack: Stack, email: str, contains: str = "") -> list[str]:
    """The member page links in the e-mails sent to ``email`` (those with ``contains`` in their text)."""
    links: set[str] = set()  # an e-mail's text and HTML bodies carry the same link
    for message in emails_to(stack, email):
        if contains in message["body"]:
            links |= {html.unescape(link) for link in re.findall(LINK, message["body"])}
    return sorted(links)


def test_a_member_redeems_on_their_page_through_the_shop_and_uses_the_code(
    stack: Stack, shop: Shop, page: Page
) -> None:
    customer_id, email, member_id = customer_with_points(stack, shop, 1000)
    before = available(stack, member_id)
    storefront = stack.storefronts[SHOP]
    # The customer logs in to the shop and opens the loyalty page (the shop's App Proxy signs each request)
    page.goto(storefront.login_url(customer_id))
    assert page.url == f"{storefront.url}/apps/loyalty"
    assert shown_points(page) == before
    accessible_and_photographed(page, "shop")
    # They redeem 500 points for 50 off
    page.locator('button[data-reward="50-off"]').click()
    code = page.get_by_test_id("new-code").inner_text()
    assert code.startswith("LOY-") and shown_points(page) == before - 500
    accessible_and_photographed(page, "redeemed")
    page.reload()  # the browser posts the form again: the same redemption, not a second
    assert page.get_by_test_id("new-code").inner_text() == code
    # The code exists in the shop, and the member's next order uses it
    stack.wait_idle()
    assert stack.shopify.discount(SHOP, code) is not None
    [made] = call(stack, "GET", f"/members/{member_id}/redemptions")[1]["redemptions"]
    assert (made["code"], made["status"], available(stack, member_id)) == (code, "active", before - 500)
    order = json.loads(shopify_order(email, customer_id=customer_id))
    order["discount_codes"] = [{"code": code, "amount": "50.00", "type": "fixed_amount"}]
    assert shop.shopify("orders/paid", json.dumps(order).encode())[0] == 200
    stack.wait_idle()
    assert redemption(stack, member_id, made["redemptionId"])["status"] == "used"
    page.goto(f"{storefront.url}/apps/loyalty")
    assert code not in page.content()  # used: no longer among the member's codes to use


def test_the_link_in_an_email_shows_the_page_and_a_one_time_link_redeems_once(
    stack: Stack, shop: Shop, page: Page
) -> None:
    _, email, member_id = customer_with_points(stack, shop, 1200)
    before = available(stack, member_id)
    status, made = call(
        stack, "POST", f"/members/{member_id}/redemptions", {"rewardId": "free-shipping", "shop": SHOP}, "mail-1"
    )
    assert status == 201
    stack.wait_idle()
    [view] = page_links(stack, email, made["code"])  # the e-mail with the code links to the member's page
    page.goto(view)
    assert shown_points(page) == before - 300
    assert page.locator("button[data-reward]").count() == 0  # this link cannot spend points
    accessible_and_photographed(page, "email-link")
    page.get_by_role("button", name="E-mail me a link to spend points").click()
    assert "We have e-mailed you a link" in page.content()
    stack.wait_idle()
    [one_time] = [link for link in page_links(stack, email, "15 minutes") if "&n=" in link]
    page.goto(one_time)
    page.locator('form:has(button[data-reward="50-off"]) select').select_option(f"shopify:{SHOP}")
    page.locator('button[data-reward="50-off"]').click()
    assert page.get_by_test_id("new-code").inner_text().startswith("LOY-")
    page.goto(one_time)
    page.locator('button[data-reward="plant-a-tree"]').click()  # the same link once more, for another reward
    assert "This link has been used" in page.content()
    assert available(stack, member_id) == before - 300 - 500
    assert len(call(stack, "GET", f"/members/{member_id}/redemptions")[1]["redemptions"]) == 2


def test_the_page_is_refused_without_the_shops_signature(stack: Stack, page: Page) -> None:
    response = page.goto(f"{stack.gateway_url}/apps/loyalty?shop={SHOP}&logged_in_customer_id=1&timestamp=1")
    assert response is not None and response.status == 401
    assert "opens from the shop" in page.content()


def test_nobody_logged_in_is_sent_to_the_shops_login(stack: Stack, page: Page) -> None:
    storefront = stack.storefronts[SHOP]
    page.context.clear_cookies()
    page.goto(f"{storefront.url}/apps/loyalty")
    page.get_by_role("link", name="Log in").click()
    assert page.url.startswith(f"{storefront.url}/account/login")
