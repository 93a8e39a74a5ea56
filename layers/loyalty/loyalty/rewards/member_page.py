"""The member's own page (``/apps/loyalty``): their points, tier, next expiry, the rewards they can afford with a
button to redeem, their codes and their latest entries, in their language, as plain server-rendered HTML.

Who is looking is proven one of two ways, never by anything the browser could simply claim:

- **Through the shop** (a Shopify App Proxy): Shopify forwards the storefront's ``/apps/loyalty`` with ``shop``,
  ``logged_in_customer_id``, ``path_prefix``, ``timestamp`` and ``signature``, the hex HMAC-SHA256 of the other
  parameters sorted by name, each ``name=value`` (several values joined by commas), joined with nothing, under
  the app's secret (each shop's ``appSecret`` in the shop credentials). A signature more than 90 seconds from now
  is refused, as Shopify's own libraries refuse it. The member is the one the shop's customer is linked to.
  Such a page may redeem directly.
- **A link in an e-mail**, signed by the programme (``m``, ``e`` the end as a Unix time, ``s``): it shows the page
  for 30 days and cannot spend points. Its button mails the member a one-time link (``n``, its nonce), valid 15
  minutes, from which one redemption can be made: the nonce is that redemption's Idempotency-Key.

Every form carries a token signed for the member and the page (so another site cannot post for them); a
redemption through the shop is keyed by its form's token, so a double click or a reload redeems once.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from importlib.resources import files
from typing import Any
from urllib.parse import urlencode

import yaml
from jinja2 import Environment, PackageLoader, select_autoescape

from loyalty.errors import (
    IdempotencyKeyReusedError,
    InvalidAmountError,
    MalformedPayloadError,
    RedemptionRefusedError,
    UnknownMemberError,
    UnknownRewardError,
)
from loyalty.ledger.member_view import RECENT_ENTRIES
from loyalty.ledger.model import Entry, EntryKind
from loyalty.ledger.service import Ledger
from loyalty.ledger.state import UNUSED, Redemption, RedemptionStatus
from loyalty.observability import logger, metrics
from loyalty.offers.messages import LANGUAGES, language_for, local_date, local_number
from loyalty.offers.programme import programme_request
from loyalty.offers.records import OfferQueue
from loyalty.offers.requests import Trigger
from loyalty.offers.rules import OfferRules
from loyalty.ports.directory import Directory
from loyalty.ports.privacy import EXPORT_LINK_DAYS
from loyalty.programme.rewards import RewardCatalogue
from loyalty.rewards.member_api import MemberRewards
from loyalty.rewards.page_links import Query, app_proxy_signature, export_asked, page_link, same, signed

PAGE_PATH = "/apps/loyalty"
SHOPIFY_PARAMETERS = ("shop", "logged_in_customer_id", "path_prefix", "timestamp", "signature")
APP_PROXY_TOLERANCE = timedelta(seconds=90)
REDEEM_LINK_MINUTES = 15
FORM_MAX_AGE = timedelta(hours=1)
SHOWN_CODES = 10
KNOWN_LANGUAGES = ("sv", "nb", "nn", "no", "da", "fi", "en")
HTML = "text/html; charset=utf-8"

# ---------------------------------------------------------------- who is looking


@dataclass(frozen=True)
class Visit:
    member_id: str
    shop: str | None  # the shop the page is seen in (the ledger's name); None from an e-mail link
    can_redeem: bool
    link_nonce: str = ""  # a one-time link's nonce: its one redemption's key
    context: str = ""  # what a form token is bound to besides the member


class PageRefused(Exception):
    """The request cannot be shown a member's page: ``status`` and the words key of what to tell them."""

    def __init__(self, status: int, words_key: str, login_url: str | None = None) -> None:
        super().__init__(words_key)
        self.status, self.words_key, self.login_url = status, words_key, login_url


@dataclass(frozen=True)
class PageAnswer:
    status: int
    html: str


# ---------------------------------------------------------------- words and templates


@cache
def _words() -> dict[str, dict[str, str]]:
    raw = yaml.safe_load(files("loyalty.rewards").joinpath("page_words.yaml").read_text(encoding="utf-8"))
    english = raw["en"]
    for language in LANGUAGES:
        missing = set(english) - set(raw.get(language) or {})
        if missing:
            raise ValueError(f"page_words.yaml: {language} lacks {', '.join(sorted(missing))}")
    return {language: {key: str(value) for key, value in raw[language].items()} for language in LANGUAGES}


@cache
def _templates() -> Environment:
    environment = Environment(
        loader=PackageLoader("loyalty.rewards", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return environment


def _asked_language(query: Mapping[str, str], accept_language: str | None) -> str:
    """The language of a page shown before the member is known: ``?lang=``, else the browser's first of ours."""
    if query.get("lang"):
        return language_for(query["lang"])
    for part in (accept_language or "").split(","):
        primary = re.split(r"[-_;]", part.strip().lower(), maxsplit=1)[0]
        if primary in KNOWN_LANGUAGES:
            return language_for(primary)
    return "en"


def _for_the_member(entry: Entry) -> str:
    """An entry's reason without what is for the programme's staff: who made it (a CRM user's id) and what they
    noted for a tier they set, the workings in brackets (the shop, the Flow) and an order's calculation (pending
    dates, tier, campaigns)."""
    reason = re.sub(r" \((?:shopify|woocommerce):[^)]*\)| \(Flow [^)]*\)", "", entry.reason)
    if entry.actor:
        head, by, rest = reason.partition(f" by {entry.actor}")
        if by:  # "Goodwill by <actor>: <what the member is told>"; "Tier set to ... by <actor>: <staff's note>"
            reason = head if entry.kind is EntryKind.TIER_OVERRIDE else rest.removeprefix(":").strip() or head
    return reason.split(": ", 1)[0] if reason.startswith("Order ") else reason


# ---------------------------------------------------------------- the page


@dataclass
class MemberPage:
    rewards: MemberRewards  # the ledger and the catalogue, and redeeming as the member API does
    directory: Directory
    offer_queue: OfferQueue  # the one-time link goes out as a service e-mail
    offer_rules: OfferRules
    page_secret: Callable[[], str]  # signs e-mail links and form tokens
    app_secret: Callable[[str], str | None]  # a Shopify shop's app secret (the ledger's shop name), if any
    page_url: str  # where e-mail links point: the deployed ``/apps/loyalty``
    programme_name: str = "Loyalty Club"
    new_nonce: Callable[[], str] = field(default=lambda: secrets.token_urlsafe(16))
    export_member: Callable[[str, str], str] | None = None  # (member, name) -> a link to their data (privacy)
    erase_member: Callable[[str], Any] | None = None  # their personal data erased, amounts kept (privacy)
    read_export: Callable[[str, str], bytes | None] | None = None  # (member, name) -> their data export, if kept

    @property
    def ledger(self) -> Ledger:
        return self.rewards.ledger

    @property
    def catalogue(self) -> RewardCatalogue:
        return self.rewards.catalogue

    # ------------------------------------------------------------ requests

    def show(self, query: Query, accept_language: str | None = None) -> PageAnswer:
        """``GET /apps/loyalty``."""
        asked = dict(query)
        try:
            visit = self._visit(query)
        except PageRefused as refused:
            return self._refused(refused, _asked_language(asked, accept_language))
        metrics.add_metric(name="MemberPageShown", unit="Count", value=1)
        return self._page(visit, asked.get("lang"))

    def act(self, query: Query, form: Mapping[str, str], accept_language: str | None = None) -> PageAnswer:
        """``POST /apps/loyalty``: the page's buttons (``action`` redeem, send_link, export_data, leave or erase),
        with the form's token. Leaving and erasing need what redeeming needs (the shop's signed page, or a one-time
        link) and the member's tick to confirm."""
        asked = dict(query)
        try:
            visit = self._visit(query)
            nonce = self._checked_token(visit, form.get("token", ""))
        except PageRefused as refused:
            return self._refused(refused, _asked_language(asked, accept_language))
        action = form.get("action")
        if action == "send_link":
            return self._page(visit, asked.get("lang"), notice=self._send_link(visit))
        if action == "redeem" and visit.can_redeem:
            return self._page(visit, asked.get("lang"), notice=self._redeem(visit, form, nonce))
        if action == "export_data" and self.export_member is not None:
            return self._page(visit, asked.get("lang"), notice=self._send_data(visit))
        if action == "leave" and visit.can_redeem:
            if form.get("confirm") != "yes":
                return self._page(visit, asked.get("lang"), notice={"kind": "leave_unconfirmed"})
            on = self.ledger.leave(visit.member_id)
            logger.info("member leaves the programme at their own request", member_id=visit.member_id)
            metrics.add_metric(name="MemberPageLeft", unit="Count", value=1)
            return self._page(visit, asked.get("lang"), notice={"kind": "leaving", "on": on.isoformat()})
        if action == "erase" and visit.can_redeem and self.erase_member is not None:
            if form.get("confirm") != "yes":
                return self._page(visit, asked.get("lang"), notice={"kind": "erase_unconfirmed"})
            self.erase_member(visit.member_id)
            logger.info("member erased at their own request", member_id=visit.member_id)
            metrics.add_metric(name="MemberPageErased", unit="Count", value=1)
            language = _asked_language(asked, accept_language)
            return self._refused(PageRefused(200, "erased"), language)
        return self._refused(PageRefused(400, "error_bad_request"), _asked_language(asked, accept_language))

    # ------------------------------------------------------------ who

    def _visit(self, query: Query) -> Visit:
        asked = dict(query)
        if "signature" in asked:
            return self._through_shop(query, asked)
        if {"m", "e", "s"} <= asked.keys():
            return self._by_link(asked)
        raise PageRefused(401, "error_no_signature")

    def _through_shop(self, query: Query, asked: dict[str, str]) -> Visit:
        names = [name for name, _ in query]
        if any(names.count(name) > 1 for name in SHOPIFY_PARAMETERS):  # one value each: what is signed is read
            raise PageRefused(401, "error_no_signature")
        shop = self.catalogue.shop(asked.get("shop", ""))
        secret = self.app_secret(shop) if shop and shop.startswith("shopify:") else None
        if shop is None or not secret or not same(app_proxy_signature(secret, query), asked["signature"]):
            logger.warning("member page: App Proxy signature refused", shop=asked.get("shop", "")[:100])
            metrics.add_metric(name="MemberPageRefused", unit="Count", value=1)
            raise PageRefused(401, "error_no_signature")
        try:
            signed_at = datetime.fromtimestamp(int(asked.get("timestamp", "")), tz=self.ledger.clock().tzinfo)
        except (ValueError, OverflowError, OSError):
            raise PageRefused(401, "error_no_signature") from None
        if abs(self.ledger.clock() - signed_at) > APP_PROXY_TOLERANCE:
            raise PageRefused(401, "error_expired_signature")
        customer = asked.get("logged_in_customer_id", "").strip()
        if not customer:
            prefix = asked.get("path_prefix") or PAGE_PATH
            raise PageRefused(200, "log_in", login_url="/account/login?" + urlencode({"return_url": prefix}))
        member_id = self.directory.member_for_customer(shop, customer)
        if member_id is None:
            raise PageRefused(200, "not_a_member")
        return Visit(member_id=member_id, shop=shop, can_redeem=True, context=shop)

    def _by_link(self, asked: dict[str, str]) -> Visit:
        member_id, end, nonce = asked["m"], asked["e"], asked.get("n", "")
        if not same(signed(self.page_secret(), "page", member_id, end, nonce), asked["s"]):
            metrics.add_metric(name="MemberPageRefused", unit="Count", value=1)
            raise PageRefused(401, "error_bad_link")
        if not end.isdigit() or int(end) < self.ledger.clock().timestamp():
            raise PageRefused(401, "error_old_link" if not nonce else "error_old_redeem_link")
        return Visit(member_id=member_id, shop=None, can_redeem=bool(nonce), link_nonce=nonce, context=f"link:{nonce}")

    # ------------------------------------------------------------ form tokens

    def _token(self, visit: Visit) -> str:
        issued, nonce = str(int(self.ledger.clock().timestamp())), self.new_nonce()
        return f"{issued}.{nonce}.{signed(self.page_secret(), 'form', visit.member_id, visit.context, issued, nonce)}"

    def _checked_token(self, visit: Visit, token: str) -> str:
        """The nonce of a valid form token, else PageRefused."""
        issued, _, rest = token.partition(".")
        nonce, _, signature = rest.partition(".")
        expected = signed(self.page_secret(), "form", visit.member_id, visit.context, issued, nonce)
        if not (issued.isdigit() and nonce and same(expected, signature)):
            metrics.add_metric(name="MemberPageRefused", unit="Count", value=1)
            raise PageRefused(400, "error_bad_form")
        if self.ledger.clock().timestamp() - int(issued) > FORM_MAX_AGE.total_seconds():
            raise PageRefused(400, "error_old_form")
        return nonce

    # ------------------------------------------------------------ buttons

    def _redeem(self, visit: Visit, form: Mapping[str, str], nonce: str) -> dict[str, Any]:
        reward_id = form.get("reward", "")
        shop = visit.shop or form.get("shop") or None
        key = f"link:{visit.link_nonce}" if visit.link_nonce else f"page:{nonce}"
        try:
            made, _ = self.rewards.redeem(visit.member_id, {"rewardId": reward_id, "shop": shop}, key)
        except RedemptionRefusedError as refused:
            return {"kind": "refused", "rule": refused.rule, **{k: str(v) for k, v in refused.details.items()}}
        except IdempotencyKeyReusedError:
            return {"kind": "link_used"}
        except (UnknownRewardError, MalformedPayloadError, InvalidAmountError):  # a form not made by this page
            return {"kind": "refused", "rule": "form"}
        metrics.add_metric(name="MemberPageRedeemed", unit="Count", value=1)
        return {"kind": "redeemed", "redemption": made}

    def _send_link(self, visit: Visit) -> dict[str, Any]:
        """A one-time redeem link mailed to the member: at most one e-mail per member in each 15-minute window."""
        now = self.ledger.clock()
        window = int(now.timestamp()) // (REDEEM_LINK_MINUTES * 60)
        link = page_link(
            self.page_url, self.page_secret(), visit.member_id,
            now + timedelta(minutes=REDEEM_LINK_MINUTES), self.new_nonce(),
        )  # fmt: skip
        self._mail(Trigger.REDEEM_LINK, visit, window, {"link": link, "minutes": REDEEM_LINK_MINUTES})
        metrics.add_metric(name="MemberPageRedeemLinkSent", unit="Count", value=1)
        return {"kind": "link_sent", "minutes": REDEEM_LINK_MINUTES}

    def download(self, query: Query) -> bytes | None:
        """``GET /apps/loyalty/export``: the member's data export the signed link names, while the link lasts and
        the file is kept (None: a link not signed by the programme, over, or for a file that is gone)."""
        asked = export_asked(self.page_secret(), query, self.ledger.clock())
        if asked is None or self.read_export is None:
            return None
        found = self.read_export(*asked)
        if found is not None:
            metrics.add_metric(name="MemberDataDownloaded", unit="Count", value=1)
        return found

    def _send_data(self, visit: Visit) -> dict[str, Any]:
        """The member's data as a file, its link mailed to them: at most one e-mail per member in each 15-minute
        window (the export is made again each time: the link in the last e-mail works)."""
        assert self.export_member is not None
        now = self.ledger.clock()
        window = int(now.timestamp()) // (REDEEM_LINK_MINUTES * 60)
        link = self.export_member(visit.member_id, f"member-page-{window}")
        self._mail(Trigger.DATA_EXPORT, visit, window, {"link": link, "days": EXPORT_LINK_DAYS})
        metrics.add_metric(name="MemberPageDataSent", unit="Count", value=1)
        return {"kind": "data_sent", "days": EXPORT_LINK_DAYS}

    def _mail(self, trigger: Trigger, visit: Visit, window: int, details: dict[str, str | int]) -> None:
        """A service e-mail the member asked for on their page, once per member and 15-minute ``window``."""
        now = self.ledger.clock()
        request = programme_request(
            self.offer_rules, trigger, visit.member_id, f"{window}", self.ledger.rules.local_date(now), now, details
        )
        self.offer_queue.send([request])

    # ------------------------------------------------------------ rendering

    def _page(self, visit: Visit, language: str | None, notice: dict[str, Any] | None = None) -> PageAnswer:
        try:
            summary = self.ledger.summary(visit.member_id)
        except UnknownMemberError:
            return self._refused(PageRefused(200, "not_a_member"), language_for(language))
        offer = self.rewards.offer(visit.member_id, language)
        shown = offer["language"]
        history = self.ledger.history(visit.member_id, limit=RECENT_ENTRIES)
        codes = [r for r in self.ledger.redemptions(visit.member_id) if r.status in UNUSED and r.code]
        rules = self.ledger.rules
        qualifying, to_next = summary.qualifying, summary.points_to_next_tier
        progress = 100 if not to_next else min(100, round(100 * qualifying / max(1, qualifying + to_next)))
        shops = list(self.catalogue.shops) if visit.shop is None else [visit.shop]
        for reward in offer["rewards"]:
            reward["minTierName"] = rules.tier(reward["minTier"]).display_name if reward["minTier"] else None
        affordable = [reward for reward in offer["rewards"] if reward["canRedeem"]]
        for reward in affordable:
            reward["shopChoices"] = [s for s in reward["shops"] if s in shops] if reward["kind"] not in (
                "donation", "experience") else []  # fmt: skip
        body = (
            _templates()
            .get_template("member_page.html")
            .render(
                w=_words()[shown],
                language=shown,
                programme_name=self.programme_name,
                first_name=summary.profile.first_name,
                number=lambda value: local_number(int(value), shown),
                day=lambda value: local_date(value if isinstance(value, date) else date.fromisoformat(value), shown),
                available=summary.available,
                pending=summary.pending,
                tier=rules.tier(summary.tier).display_name,
                next_tier=rules.tier(summary.next_tier).display_name if summary.next_tier else None,
                points_to_next=to_next,
                progress=progress,
                next_expiry=(summary.next_expiry_on, summary.next_expiry_points) if summary.next_expiry_on else None,
                affordable=affordable,
                later=[reward for reward in offer["rewards"] if not reward["canRedeem"]],
                codes=[self._code_view(r, shown) for r in codes[:SHOWN_CODES]],
                entries=[self._entry_view(entry, shown) for entry in history.entries],
                visit=visit,
                token=lambda: self._token(visit),  # one per form: a redemption is keyed by its form's token
                notice=notice,
                leaving_on=summary.profile.leaving_on,
                leave_days=rules.enrolment.leave_notice_days,
                shop_names={shop: shop.partition(":")[2] for shop in self.catalogue.shops},
            )
        )
        return PageAnswer(200, body)

    def _code_view(self, redemption: Redemption, language: str) -> dict[str, Any]:
        try:
            reward = self.catalogue.reward(redemption.reward_id).name.in_language(language)
        except UnknownRewardError:
            reward = redemption.reward_id
        return {
            "reward": reward,
            "code": redemption.code,
            "validUntil": redemption.valid_until,
            "pending": redemption.status is RedemptionStatus.PENDING,
            "applyUrl": redemption.apply_url,
        }

    @staticmethod
    def _entry_view(entry: Entry, language: str) -> dict[str, Any]:
        points = entry.points or entry.pending  # an order's points are on the way until they are released
        return {
            "date": local_date(entry.created_at.date(), language),
            "label": _words()[language][f"kind_{entry.kind.value}"],
            "reason": _for_the_member(entry),
            "points": ("+" if points > 0 else "") + local_number(points, language) if points else "",
        }

    def _refused(self, refused: PageRefused, language: str) -> PageAnswer:
        body = (
            _templates()
            .get_template("member_page_message.html")
            .render(
                w=_words()[language],
                language=language,
                programme_name=self.programme_name,
                message=_words()[language][refused.words_key],
                login_url=refused.login_url,
            )
        )
        return PageAnswer(refused.status, body)
