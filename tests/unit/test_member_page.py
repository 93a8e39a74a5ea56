"""The member's own page on fakes: who may see it (a Shopify App Proxy signature, a signed e-mail link), what it
shows in the member's language, and its buttons: a redemption through the shop once per form, a view-only link
that mails a one-time link, and that link spending points once."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import date, timedelta
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from loyalty.fakes import Fakes
from loyalty.fakes.shops import InMemoryShopCodes
from loyalty.ledger.model import EntryKind
from loyalty.ledger.service import Ledger
from loyalty.offers.messages import MessageFacts, render_email
from loyalty.offers.requests import Trigger
from loyalty.offers.rules import load_offer_rules
from loyalty.privacy import Privacy
from loyalty.programme.rewards import load_rewards
from loyalty.programme.rules import ProgramRules
from loyalty.rewards.member_api import MemberRewards
from loyalty.rewards.member_page import MemberPage, PageAnswer
from loyalty.rewards.page_links import app_proxy_signature, export_link, page_link, view_link
from tests.conftest import FakeClock

DOMAIN = "demo-shop.myshopify.com"
SHOP = f"shopify:{DOMAIN}"
APP_SECRET = "app-secret-of-the-demo-shop"
PAGE_SECRET = "page-secret"
PAGE_URL = "https://loyalty.example/apps/loyalty"


class Page(HTMLParser):
    """What a test reads of a page: its text, its forms (fields by name) and the elements by data-testid."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.text: list[str] = []
        self.forms: list[dict[str, str]] = []
        self.by_test_id: dict[str, str] = {}
        self._test_id: str | None = None
        self._select: str | None = None
        self._skip = False
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag in ("style", "title"):
            self._skip = True
        if tag == "form":
            self.forms.append({})
        if tag in ("input", "select") and self.forms and "name" in found:
            self.forms[-1].setdefault(found["name"], found.get("value", ""))
            self._select = found["name"] if tag == "select" else None
        if tag == "option" and self.forms and self._select and not self.forms[-1][self._select]:
            self.forms[-1][self._select] = found.get("value", "")  # the first option: selected
        if "data-testid" in found:
            self._test_id = found["data-testid"]

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        self._skip = self._skip and tag not in ("style", "title")

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        self.text.append(data)
        if self._test_id is not None:
            self.by_test_id[self._test_id] = data.strip()
            self._test_id = None

    def says(self, words: str) -> bool:
        return words in " ".join(" ".join(self.text).split())

    def redeem_form(self, reward_id: str) -> dict[str, str]:
        return next(form for form in self.forms if form.get("reward") == reward_id)


@pytest.fixture
def queue(fakes: Fakes) -> Any:
    return fakes.offer_queue


@pytest.fixture
def privacy(fakes: Fakes, ledger: Ledger) -> Privacy:
    def download_link(member_id: str, name: str) -> str:
        return export_link(PAGE_URL, PAGE_SECRET, member_id, name, ledger.clock() + timedelta(days=7))

    return Privacy(
        ledger, fakes.directory, fakes.offer_records, fakes.nps_answers, fakes.exports, fakes.dead_letters,
        download_link=download_link,
    )  # fmt: skip


@pytest.fixture
def page(fakes: Fakes, ledger: Ledger, rules: ProgramRules, privacy: Privacy) -> MemberPage:
    catalogue = load_rewards(rules)
    return MemberPage(
        rewards=MemberRewards(ledger, catalogue, InMemoryShopCodes()),
        directory=fakes.directory,
        offer_queue=fakes.offer_queue,
        offer_rules=load_offer_rules(),
        page_secret=lambda: PAGE_SECRET,
        app_secret=lambda shop: APP_SECRET if shop == SHOP else None,
        page_url=PAGE_URL,
        programme_name="Nordic Club",
        export_member=privacy.export,
        erase_member=privacy.erase,
        read_export=fakes.exports.read,
    )


def member(
    fakes: Fakes, ledger: Ledger, clock: FakeClock, points: int, locale: str = "en_GB", name: str = "Ada"
) -> str:
    member_id = "m-page"
    ledger.enrol(member_id)
    fakes.directory.update_profile(member_id, {"first_name": name, "locale": locale}, clock.now)
    fakes.directory.link_customer(SHOP, "1001", member_id)
    if points:
        ledger.adjust(member_id, points, "agent-1", "Welcome gift", f"open-{member_id}")
    return member_id


def proxied(
    clock: FakeClock, customer: str = "1001", secret: str = APP_SECRET, **changes: str
) -> list[tuple[str, str]]:
    """The query Shopify's App Proxy forwards for the logged-in ``customer``, signed."""
    query = {
        "shop": DOMAIN,
        "logged_in_customer_id": customer,
        "path_prefix": "/apps/loyalty",
        "timestamp": str(int(clock.now.timestamp())),
    } | changes
    pairs = list(query.items())
    message = "".join(f"{name}={value}" for name, value in sorted(pairs))
    return [*pairs, ("signature", hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest())]


def link_query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def shown(answer: PageAnswer, status: int = 200) -> Page:
    assert answer.status == status, answer.html
    return Page(answer.html)


# ---------------------------------------------------------------- signatures


def test_the_app_proxy_signature_is_shopifys() -> None:
    # Shopify's documented example: shared secret "hush", two values of `extra`, customer 1 logged in
    query = [
        ("extra", "1"),
        ("extra", "2"),
        ("shop", "shop-name.myshopify.com"),
        ("logged_in_customer_id", "1"),
        ("path_prefix", "/apps/awesome_reviews"),
        ("timestamp", "1317327555"),
    ]
    assert app_proxy_signature("hush", query) == "4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb"


def test_through_the_shop_the_logged_in_customer_sees_their_page(
    page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    member(fakes, ledger, clock, 800)
    seen = shown(page.show(proxied(clock)))
    assert seen.says("Hello Ada!")
    assert seen.by_test_id["available"] == "800"
    assert seen.says("Your tier: Bronze") and seen.by_test_id["to-next"].endswith("points to Silver")
    assert seen.says("Welcome gift")  # the latest entries with their reasons
    assert seen.redeem_form("50-off")["action"] == "redeem"  # 500 points: within reach, with its button
    assert not any(form.get("reward") == "10-percent" for form in seen.forms)  # 1,000 points: no button yet


@pytest.mark.parametrize(
    ("tamper", "why"),
    [
        (lambda q, c: [(n, "1002" if n == "logged_in_customer_id" else v) for n, v in q], "another customer"),
        (lambda q, c: proxied(c, secret="guessed"), "another secret"),
        (lambda q, c: [(n, v) for n, v in q if n != "signature"], "no signature"),
        (lambda q, c: [*q, ("shop", "other.myshopify.com")], "the shop twice"),
        (lambda q, c: proxied(c, timestamp=str(int(c.now.timestamp()) - 300)), "signed five minutes ago"),
    ],
)
def test_an_app_proxy_request_not_signed_by_the_shop_now_is_refused(
    page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock, tamper: Any, why: str
) -> None:
    member(fakes, ledger, clock, 800)
    seen = shown(page.show(tamper(proxied(clock), clock)), 401)
    assert not seen.says("800"), why


def test_nobody_logged_in_is_asked_to_log_in_and_a_stranger_is_told_how_to_join(
    page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    member(fakes, ledger, clock, 800)
    login = page.show(proxied(clock, customer=""))
    assert login.status == 200 and 'href="/account/login?return_url=%2Fapps%2Floyalty"' in login.html
    assert shown(page.show(proxied(clock, customer="555"))).says("You are not a member yet")


def test_the_page_speaks_the_members_language_and_escapes_what_it_shows(
    page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    member(fakes, ledger, clock, 1200, locale="sv_SE", name="<b>Ada</b>")
    answer = page.show(proxied(clock))
    seen = shown(answer)
    assert '<html lang="sv">' in answer.html
    assert seen.says("Hej <b>Ada</b>!") and "&lt;b&gt;Ada&lt;/b&gt;" in answer.html  # text, never markup
    assert seen.by_test_id["available"] == "1\u00a0200"  # written the Swedish way
    assert seen.says("Använd 500 poäng")


# ---------------------------------------------------------------- redeeming through the shop


def test_a_redemption_through_the_shop_is_made_once_per_form(
    page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    member_id = member(fakes, ledger, clock, 800)
    first_page = shown(page.show(proxied(clock)))
    form, other = first_page.redeem_form("50-off"), first_page.redeem_form("free-shipping")
    assert form["token"] != other["token"]  # each button its own
    done = shown(page.act(proxied(clock), form))
    code = done.by_test_id["new-code"]
    assert code.startswith("LOY-") and done.by_test_id["available"] == "300"
    again = shown(page.act(proxied(clock), form))  # a double click, a reload
    assert again.by_test_id["new-code"] == code and again.by_test_id["available"] == "300"
    assert [r.code for r in ledger.redemptions(member_id)] == [code]
    later = shown(page.act(proxied(clock), other))  # another reward from the same page, after going back
    assert later.by_test_id["available"] == "0" and len(ledger.redemptions(member_id)) == 2


def test_a_form_not_made_for_the_member_writes_nothing(
    page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    member_id = member(fakes, ledger, clock, 800)
    fakes.directory.link_customer(SHOP, "2002", "m-other")
    ledger.enrol("m-other")
    form = shown(page.show(proxied(clock))).redeem_form("50-off")
    forged = form | {"token": form["token"][:-1] + ("0" if form["token"][-1] != "0" else "1")}
    assert page.act(proxied(clock), forged).status == 400
    assert page.act(proxied(clock, customer="2002"), form).status == 400  # another member's page
    assert page.act(proxied(clock), {k: v for k, v in form.items() if k != "token"}).status == 400
    clock.advance(hours=2)
    assert page.act(proxied(clock), form).status == 400  # a form left open for hours
    assert ledger.redemptions(member_id) == [] and ledger.summary(member_id).available == 800


def test_a_refused_redemption_says_why_and_writes_nothing(
    page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    member_id = member(fakes, ledger, clock, 800)
    form = shown(page.show(proxied(clock))).redeem_form("50-off")
    ledger.adjust(member_id, -500, "agent-1", "correction", "corr-1")  # spent elsewhere meanwhile
    seen = shown(page.act(proxied(clock), form))
    assert seen.says("You need 200 more points for this reward.")
    assert ledger.redemptions(member_id) == []


# ---------------------------------------------------------------- the e-mail link


def test_the_email_link_shows_the_page_for_30_days_and_cannot_spend(
    page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    member_id = member(fakes, ledger, clock, 800)
    link = link_query(view_link(PAGE_URL, PAGE_SECRET, member_id, clock.now))
    seen = shown(page.show(link))
    assert seen.by_test_id["available"] == "800" and seen.says("we e-mail you a link that works for 15 minutes")
    assert not any(form.get("action") in ("redeem", "erase") for form in seen.forms)  # no redeem or erase button
    token = seen.forms[0]["token"]
    refused = page.act(link, {"token": token, "action": "redeem", "reward": "50-off", "shop": SHOP})
    assert refused.status == 400 and ledger.redemptions(member_id) == []
    tampered = [(n, "m-other" if n == "m" else v) for n, v in link]
    assert page.show(tampered).status == 401
    clock.advance(days=31)
    assert page.show(link).status == 401


def test_the_one_time_link_spends_points_once(
    page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock, queue: Any
) -> None:
    member_id = member(fakes, ledger, clock, 1200)
    link = link_query(view_link(PAGE_URL, PAGE_SECRET, member_id, clock.now))
    asked = shown(page.act(link, shown(page.show(link)).forms[0]))
    assert asked.says("We have e-mailed you a link. It works for 15 minutes.")
    [request] = queue.take()
    assert request.trigger is Trigger.REDEEM_LINK and request.member_id == member_id and request.service
    one_time = link_query(str(request.details["link"]))
    assert str(request.details["link"]).startswith(PAGE_URL + "?")
    seen = shown(page.show(one_time))
    first = shown(page.act(one_time, seen.redeem_form("50-off")))
    assert first.by_test_id["new-code"].startswith("LOY-")
    second = shown(page.act(one_time, seen.redeem_form("10-percent")))  # the same link again, another reward
    assert second.says("This link has been used.")
    assert len(ledger.redemptions(member_id)) == 1 and ledger.summary(member_id).available == 700
    clock.advance(minutes=16)
    assert page.show(one_time).status == 401


def test_asking_again_within_the_window_mails_no_second_link(
    page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock, queue: Any
) -> None:
    member_id = member(fakes, ledger, clock, 800)
    link = link_query(view_link(PAGE_URL, PAGE_SECRET, member_id, clock.now))
    form = shown(page.show(link)).forms[0]
    page.act(link, form)
    page.act(link, form)
    assert len({request.request_id for request in queue.take()}) == 1  # the sender sends each request id once


def test_a_link_signed_with_another_key_or_mangled_is_refused(
    page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    member_id = member(fakes, ledger, clock, 800)
    ends = clock.now + timedelta(days=1)
    assert page.show(link_query(page_link(PAGE_URL, "another-key", member_id, ends))).status == 401
    assert page.show([("m", member_id), ("e", "x"), ("s", "y")]).status == 401
    assert page.show([]).status == 401


# ---------------------------------------------------------------- the link in every e-mail


def test_every_email_carries_the_members_page_link() -> None:
    facts = MessageFacts(
        first_name="Ada",
        locale="fi_FI",
        points_available=120,
        tier="Silver",
        next_tier="Gold",
        points_to_next=300,
        unsubscribe_url="https://loyalty.example/unsubscribe?m=1&c=email&t=x",
        page_url="https://loyalty.example/apps/loyalty?m=1&e=2&s=3",
    )
    email = render_email("tier_nudge", facts)
    assert "Pisteesi ja palkintosi: https://loyalty.example/apps/loyalty?m=1&e=2&s=3" in email.text
    assert 'href="https://loyalty.example/apps/loyalty?m=1&amp;e=2&amp;s=3"' in email.html


def test_entries_show_their_kind_and_reason(page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock) -> None:
    member_id = member(fakes, ledger, clock, 800)
    ledger.adjust(member_id, -100, "agent-1", "Damaged parcel correction", "corr-2")
    seen = shown(page.show(proxied(clock)))
    assert seen.says("Adjustment · Damaged parcel correction -100") and not seen.says("agent-1")  # staff: not shown
    assert [e.kind for e in ledger.history(member_id, limit=5).entries][:1] == [EntryKind.ADJUSTMENT]
    assert seen.says("Tote bag · 1,500 For Silver members and up")  # the tier's name as members know it
    ledger.override_tier(member_id, "gold", date(2026, 12, 31), "Note: friend of the owner", "005ABCDEF", "ov-1")
    seen = shown(page.show(proxied(clock)))
    assert seen.says("Tier · Tier set to Gold until 2026-12-31")
    assert not seen.says("005ABCDEF") and not seen.says("friend of the owner")  # the CRM user and their note


def test_a_member_gets_their_data_by_email_from_any_page_of_theirs(
    page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock, queue: Any
) -> None:
    member_id = member(fakes, ledger, clock, 800)
    link = link_query(view_link(PAGE_URL, PAGE_SECRET, member_id, clock.now))
    form = next(form for form in shown(page.show(link)).forms if form.get("action") == "export_data")
    asked = shown(page.act(link, form))
    assert asked.says("We have e-mailed you a link to your data. It works for 7 days.")
    [request] = queue.take()
    assert request.trigger is Trigger.DATA_EXPORT and request.member_id == member_id and request.service
    # The e-mailed link downloads their data for 7 days; a link changed or over downloads nothing
    download = str(request.details["link"])
    assert download.startswith(f"{PAGE_URL}/export?")
    found = page.download(link_query(download))
    assert found is not None and json.loads(found)["member"]["first_name"] == "Ada"
    tampered = [(n, "m-other" if n == "m" else v) for n, v in link_query(download)]
    assert page.download(tampered) is None
    clock.advance(days=8)
    assert page.download(link_query(download)) is None


def test_a_member_erases_their_data_through_the_shop_once_they_confirm(
    page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    member_id = member(fakes, ledger, clock, 800)
    form = next(form for form in shown(page.show(proxied(clock))).forms if form.get("action") == "erase")
    # When they press the button without ticking the box, nothing is erased
    unconfirmed = shown(page.act(proxied(clock), {**form, "confirm": ""}))
    assert unconfirmed.says("Tick the box to confirm that your data should be erased.")
    assert ledger.summary(member_id).profile.first_name == "Ada"
    # When they tick it
    done = shown(page.act(proxied(clock), {**form, "confirm": "yes"}))
    # Then their data is erased, their points stay, and the shop's page no longer finds them
    assert done.says("Your personal data is erased.")
    summary = ledger.summary(member_id)
    assert summary.profile.first_name is None and summary.available == 800
    assert shown(page.show(proxied(clock))).says("You are not a member yet")


def test_a_member_leaves_through_the_shop_once_they_confirm_and_the_page_says_when(
    page: MemberPage, fakes: Fakes, ledger: Ledger, clock: FakeClock
) -> None:
    member_id = member(fakes, ledger, clock, 800)
    form = next(form for form in shown(page.show(proxied(clock))).forms if form.get("action") == "leave")
    assert shown(page.act(proxied(clock), {**form, "confirm": ""})).says("Tick the box to confirm that you want")
    assert ledger.summary(member_id).profile.leaving_on is None
    done = shown(page.act(proxied(clock), {**form, "confirm": "yes"}))
    leaving_on = ledger.summary(member_id).profile.leaving_on
    assert leaving_on == ledger.rules.local_date(clock.now) + timedelta(days=30)
    assert done.says("You leave the programme on") and done.by_test_id["leaving"].startswith("You leave")
    assert not any(form.get("action") == "leave" for form in done.forms)
    assert done.by_test_id["available"] == "800"  # theirs to spend until then
