"""Offer messages: every template in every language, HTML escaping, SMS in GSM-7 within 160 septets, and
numbers and dates written the local way."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from html.parser import HTMLParser
from typing import Any

import pytest

from loyalty.offers import messages as offer_messages
from loyalty.offers.messages import (
    LANGUAGES,
    MessageFacts,
    TemplateError,
    gsm7_length,
    language_for,
    render_email,
    render_sms,
    template_keys,
)
from loyalty.offers.requests import Offer, OfferKind

NBSP = "\u00a0"
UNSUBSCRIBE_URL = "https://example.com/unsubscribe?member=m-1&sig=abc123"
OFFER_KIND_OF_TEMPLATE = {
    "offer_points_multiplier": OfferKind.POINTS_MULTIPLIER,
    "offer_bonus_points": OfferKind.BONUS_POINTS,
    "offer_voucher": OfferKind.VOUCHER,
    "offer_free_shipping": OfferKind.FREE_SHIPPING,
}
NOTICE_TEMPLATES = (
    "birthday",
    "tier_upgrade",
    "tier_nudge",
    "expiry_warning",
    "win_back",
    "category_affinity",
    "reward_redeemed",
    "redeem_link",
    "data_export",
)
OFFER_OPTIONAL = ("birthday", "win_back", "category_affinity")  # a variant with the offer, one without
POINTS_12345 = {"sv": f"12{NBSP}345", "nb": f"12{NBSP}345", "da": f"12{NBSP}345", "fi": f"12{NBSP}345", "en": "12,345"}


def an_offer(kind: OfferKind = OfferKind.POINTS_MULTIPLIER, **changes: Any) -> Offer:
    fields: dict[str, Any] = {
        "code": "AUTUMN27",
        "kind": kind,
        "multiplier": "2" if kind is OfferKind.POINTS_MULTIPLIER else None,
        "bonus_points": 200 if kind is OfferKind.BONUS_POINTS else None,
        "valid_from": date(2027, 3, 1),
        "valid_until": date(2027, 3, 31),
    }
    return Offer(**(fields | changes))


def some_facts(**changes: Any) -> MessageFacts:
    facts = MessageFacts(
        first_name="Anna",
        locale="sv_SE",
        points_available=12345,
        tier="Gold",
        next_tier="Platinum",
        points_to_next=750,
        unsubscribe_url=UNSUBSCRIBE_URL,
        details={
            "points": 200,
            "expires_on": "2027-03-31",
            "category": "outdoor",
            "reward": "50 kr rabatt",
            "code": "LOY-ABCD-EFGH",
            "link": "https://loyalty.example/apps/loyalty?m=m-1&e=1767225600&n=x1&s=y2",
            "minutes": 15,
            "days": 7,
        },
    )
    return replace(facts, **changes)


def every_message() -> list[tuple[str, str, Offer | None]]:
    """(template key, language, offer): every offer the template can show, and none where it can do without."""
    cases: list[tuple[str, str, Offer | None]] = []
    for key in sorted(template_keys()):
        offers: list[Offer | None] = [None]
        if key in OFFER_KIND_OF_TEMPLATE:
            offers = [an_offer(OFFER_KIND_OF_TEMPLATE[key])]
        elif key in OFFER_OPTIONAL:
            offers = [None, *(an_offer(kind) for kind in OfferKind)]
        cases += [(key, language, offer) for language in LANGUAGES for offer in offers]
    return cases


def case_id(case: tuple[str, str, Offer | None]) -> str:
    key, language, offer = case
    return f"{key}-{language}-{'offer' if offer else 'plain'}"


class _TagChecker(HTMLParser):
    """Records the document's lang, its links, and whether every element that opens also closes."""

    VOID = frozenset({"meta", "br"})

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.problems: list[str] = []
        self.lang: str | None = None
        self.hrefs: list[str | None] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.lang = dict(attrs).get("lang")
        if tag == "a":
            self.hrefs.append(dict(attrs).get("href"))
        if tag not in self.VOID:
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.open or self.open.pop() != tag:
            self.problems.append(f"unexpected </{tag}>")


def check_html(document: str) -> _TagChecker:
    checker = _TagChecker()
    checker.feed(document)
    checker.close()
    assert checker.problems == [] and checker.open == [], (checker.problems, checker.open)
    return checker


def test_the_twelve_template_keys_are_shipped() -> None:
    # Given the template files in the package
    # When the keys are listed
    keys = template_keys()

    # Then every notice and every offer kind has its template
    assert keys == frozenset(NOTICE_TEMPLATES) | frozenset(OFFER_KIND_OF_TEMPLATE)


@pytest.mark.parametrize("case", every_message(), ids=case_id)
def test_every_template_renders_in_every_language(case: tuple[str, str, Offer | None]) -> None:
    # Given a member with a name, 12 345 points and a tier, in the case's language, and an offer where there is one
    key, language, offer = case
    facts = some_facts(locale=language, offer=offer)

    # When the e-mail and the SMS are rendered
    email = render_email(key, facts)
    sms = render_sms(key, facts)

    # Then no placeholder is left, the name and the points are shown, and the e-mail ends with the unsubscribe link
    assert email.language == sms.language == language
    for text in (email.subject, email.text, email.html, sms.text):
        assert "{" not in text and "}" not in text
    assert "\n" not in email.subject
    assert "Anna" in email.text and "Anna" in email.html and "Anna" in sms.text
    assert POINTS_12345[language] in email.text
    assert email.text.endswith(UNSUBSCRIBE_URL)
    if offer is not None:
        assert "AUTUMN27" in email.text and "AUTUMN27" in sms.text
    checker = check_html(email.html)
    assert checker.lang == language
    assert checker.hrefs == [UNSUBSCRIBE_URL]


def test_html_escapes_every_value_and_the_href() -> None:
    # Given a hostile first name and an unsubscribe link with query parameters
    facts = some_facts(first_name="<script>alert(1)</script> & Co", locale="en_GB")

    # When the e-mail is rendered
    email = render_email("win_back", facts)

    # Then the name is shown as text, never as markup, and the href is escaped
    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in email.html
    assert 'href="https://example.com/unsubscribe?member=m-1&amp;sig=abc123"' in email.html
    assert check_html(email.html).hrefs == [UNSUBSCRIBE_URL]  # what the mail client follows, once unescaped
    assert "<script>alert(1)</script> & Co" in email.text  # the text part is plain text


def test_a_value_with_a_line_break_does_not_break_the_subject() -> None:
    # Given a category that carries a line break and a header
    facts = some_facts(details={"category": "outdoor\r\nBcc: someone@example.com"})

    # When the e-mail is rendered
    email = render_email("category_affinity", facts)

    # Then the subject stays one line
    assert "\n" not in email.subject and "\r" not in email.subject
    assert "outdoor Bcc: someone@example.com" in email.subject


def test_an_unsubscribe_link_that_is_not_http_is_refused() -> None:
    # Given an unsubscribe "link" that would run script
    facts = some_facts(unsubscribe_url="javascript:alert(1)")

    # When / Then the e-mail is not rendered
    with pytest.raises(TemplateError, match="unsubscribe_url"):
        render_email("birthday", facts)


@pytest.mark.parametrize("case", every_message(), ids=case_id)
def test_every_sms_fits_160_septets_with_long_values(case: tuple[str, str, Offer | None]) -> None:
    # Given a 20-character name, 6-digit points, a long tier name and the longest date of the year
    key, language, offer = case
    long_offer = offer and offer.model_copy(
        update={"valid_until": date(2027, 9, 30), "bonus_points": 123456 if offer.bonus_points else None}
    )
    facts = some_facts(
        first_name="Maximiliana Josefina",
        locale=language,
        points_available=123456,
        tier="Platinum",
        next_tier="Platinum",
        points_to_next=123456,
        offer=long_offer,
        details={
            "points": 123456,
            "expires_on": "2027-09-30",
            "category": "outdoor",
            "reward": "Henkilökohtainen stylisti",
            "code": "LOY-ABCD-EFGH",
            "link": "https://loyalty.example/apps/loyalty?m=m-1&e=1767225600&n=x1&s=y2",
            "minutes": 15,
            "days": 7,
        },
    )
    assert len(facts.first_name or "") == 20

    # When the SMS is rendered
    sms = render_sms(key, facts)

    # Then it is pure GSM-7, fits one SMS and still greets the member by name
    assert gsm7_length(sms.text) == sms.characters
    assert sms.characters <= 160
    assert "Maximiliana Josefina" in sms.text


def test_sms_transliterates_letters_outside_gsm7() -> None:
    # Given a Polish name with an emoji
    facts = some_facts(first_name="Łukasz 😀")

    # When the SMS is rendered
    sms = render_sms("tier_upgrade", facts)

    # Then the name is written in GSM-7 and the message never needs UCS-2
    assert sms.text.startswith("Hej Lukasz!")
    assert gsm7_length(sms.text) == sms.characters


def test_sms_keeps_nordic_letters() -> None:
    # Given a name with Nordic and other GSM-7 letters, and a template text with å, ä and ö
    facts = some_facts(first_name="Åsa-Øydis Ærø Müller", locale="nb_NO")

    # When the SMS is rendered
    sms = render_sms("birthday", facts)

    # Then nothing is transliterated
    assert sms.text.startswith(
        "Hei Åsa-Øydis Ærø Müller! Gratulerer med dagen! Vi har satt inn 200 poeng på kontoen din."
    )
    assert sms.characters == len(sms.text)


def test_sms_without_the_name_when_the_name_would_not_fit() -> None:
    # Given a name far longer than any real one
    facts = some_facts(first_name="Anna " + "Lång" * 20, locale="sv_SE", offer=an_offer())

    # When the SMS is rendered
    sms = render_sms("win_back", facts)

    # Then it greets without the name and still fits
    assert sms.text.startswith("Hej! ")
    assert "Anna" not in sms.text
    assert sms.characters <= 160


def test_a_template_that_cannot_fit_even_without_the_name_raises() -> None:
    # Given an offer code as long as the model allows
    facts = some_facts(offer=an_offer(code="X" * 80, valid_until=date(2027, 9, 30)))

    # When / Then the SMS is refused rather than split or cut
    with pytest.raises(TemplateError, match="more than 160"):
        render_sms("category_affinity", facts)


@pytest.mark.parametrize(
    ("text", "septets"),
    [
        ("Hej Åsa! åäö ÅÄÖ æø ÆØ é É ü Ü", 30),
        ("Pris 100€", 10),  # € is in the extension table
        ("[a]{b}~^|\\", 18),
        ("", 0),
        ("Łukasz", None),
        ("hi 😀", None),
        ("1\u00a0250", None),  # the no-break space is not GSM-7
    ],
)
def test_gsm7_length(text: str, septets: int | None) -> None:
    # Given a text
    # When its GSM-7 length is measured
    # Then basic characters count 1, extension characters 2, and anything else makes it unencodable
    assert gsm7_length(text) == septets


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("sv_SE", "sv"),
        ("sv-SE", "sv"),
        ("sv", "sv"),
        ("sv_FI", "sv"),
        ("nb_NO", "nb"),
        ("nn_NO", "nb"),
        ("no", "nb"),
        ("no_NO", "nb"),
        ("da_DK", "da"),
        ("fi_FI", "fi"),
        ("FI-fi", "fi"),
        ("en_GB", "en"),
        ("en_US", "en"),
        ("de_DE", "en"),
        ("", "en"),
        (None, "en"),
    ],
)
def test_language_for(locale: str | None, language: str) -> None:
    # Given a member's locale
    # When the message language is chosen
    # Then it is one of the five, English when we have no texts for the locale
    assert language_for(locale) == language


@pytest.mark.parametrize("key", ["no_such_template", "../offer_requests", ""])
def test_an_unknown_template_key_raises(key: str) -> None:
    # Given a template key with no file
    # When / Then rendering it raises, naming the key
    with pytest.raises(TemplateError, match="unknown template key"):
        render_email(key, some_facts())
    with pytest.raises(TemplateError, match="unknown template key"):
        render_sms(key, some_facts())


@pytest.mark.parametrize(
    ("key", "changes", "placeholder"),
    [
        ("offer_voucher", {"offer": None}, "offer_summary"),
        ("tier_nudge", {"next_tier": None, "points_to_next": None}, "points_to_next"),
        ("expiry_warning", {"details": {}}, "points"),
        ("category_affinity", {"details": {}}, "category"),
    ],
)
def test_a_missing_placeholder_raises_naming_it(key: str, changes: dict[str, Any], placeholder: str) -> None:
    # Given facts without what the template shows
    facts = some_facts(**changes)

    # When / Then neither the e-mail nor the SMS is rendered, and the error names the placeholder
    with pytest.raises(TemplateError, match=rf"\{{{placeholder}\}}"):
        render_email(key, facts)
    with pytest.raises(TemplateError, match=rf"\{{{placeholder}\}}"):
        render_sms(key, facts)


def test_an_expiry_date_that_is_not_iso_raises() -> None:
    # Given an expiry date written the American way
    facts = some_facts(details={"points": 200, "expires_on": "03/31/2027"})

    # When / Then the message is not rendered
    with pytest.raises(TemplateError, match="expires_on"):
        render_email("expiry_warning", facts)


@pytest.mark.parametrize(
    ("locale", "points", "expiry"),
    [
        ("sv_SE", f"1{NBSP}250 poäng", "31 mars 2027"),
        ("nb_NO", f"1{NBSP}250 poeng", "31. mars 2027"),
        ("da_DK", f"1{NBSP}250 point", "31. marts 2027"),
        ("fi_FI", f"1{NBSP}250 pistettä", "31.3.2027"),
        ("en_GB", "1,250 points", "31 March 2027"),
    ],
)
def test_numbers_and_dates_the_local_way(locale: str, points: str, expiry: str) -> None:
    # Given 1 250 points expiring on 31 March 2027
    facts = some_facts(locale=locale, details={"points": 1250, "expires_on": "2027-03-31"})

    # When the expiry warning is rendered
    email = render_email("expiry_warning", facts)
    sms = render_sms("expiry_warning", facts)

    # Then the e-mail groups thousands and writes the date the local way; the SMS uses a plain space (GSM-7)
    assert points in email.text
    assert expiry in email.text
    assert points.replace(NBSP, " ") in sms.text
    assert expiry in sms.text


@pytest.mark.parametrize(
    ("locale", "one_point"),
    [("sv_SE", "1 poäng"), ("nb_NO", "1 poeng"), ("da_DK", "1 point"), ("fi_FI", "1 piste"), ("en_GB", "1 point")],
)
def test_one_point_is_singular(locale: str, one_point: str) -> None:
    # Given a single point about to expire
    facts = some_facts(locale=locale, details={"points": 1, "expires_on": "2027-03-31"})

    # When the expiry warning is rendered
    email = render_email("expiry_warning", facts)

    # Then the unit agrees with the number
    assert f"{one_point} " in email.text
    assert "1 points" not in email.text and "1 pistettä" not in email.text


@pytest.mark.parametrize(
    ("offer", "locale", "summary"),
    [
        (an_offer(OfferKind.POINTS_MULTIPLIER, multiplier="2"), "en_GB", "double points"),
        (an_offer(OfferKind.POINTS_MULTIPLIER, multiplier="2.0"), "sv_SE", "dubbla poäng"),
        (an_offer(OfferKind.POINTS_MULTIPLIER, multiplier="3"), "da_DK", "tredobbelt point"),
        (an_offer(OfferKind.POINTS_MULTIPLIER, multiplier="1.50"), "en_GB", "1.5x points"),
        (an_offer(OfferKind.POINTS_MULTIPLIER, multiplier="1.5"), "sv_SE", "1,5x poäng"),
        (an_offer(OfferKind.POINTS_MULTIPLIER, multiplier="1.5"), "fi_FI", "1,5-kertaiset pisteet"),
        (an_offer(OfferKind.BONUS_POINTS, bonus_points=1500), "en_GB", "1,500 bonus points"),
        (an_offer(OfferKind.BONUS_POINTS, bonus_points=200), "fi_FI", "200 bonuspistettä"),
        (an_offer(OfferKind.VOUCHER), "nb_NO", "en verdikupong"),
        (an_offer(OfferKind.FREE_SHIPPING), "da_DK", "fri fragt"),
    ],
)
def test_offer_summary_in_the_language(offer: Offer, locale: str, summary: str) -> None:
    # Given an offer of some kind
    key = next(key for key, kind in OFFER_KIND_OF_TEMPLATE.items() if kind is offer.kind)
    facts = some_facts(locale=locale, offer=offer)

    # When its CRM offer message is rendered
    email = render_email(key, facts)

    # Then the offer is described in the member's language
    assert summary in email.text


def test_offer_dates_the_local_way() -> None:
    # Given an offer valid 1 to 31 March 2027
    facts = some_facts(locale="fi_FI", offer=an_offer())

    # When a Finnish offer e-mail is rendered
    email = render_email("offer_points_multiplier", facts)

    # Then both dates are written the Finnish way
    assert "1.3.2027–31.3.2027" in email.text


def test_a_notice_without_an_offer_variant_leaves_the_offer_out() -> None:
    # Given a tier upgrade that the CRM sent with an offer
    facts = some_facts(tier="Platinum", offer=an_offer())

    # When the message is rendered
    email = render_email("tier_upgrade", facts)

    # Then it is the tier notice, complete, and it does not half-mention the offer
    assert email.subject == "Välkommen till Platinum!"
    assert "AUTUMN27" not in email.text


def test_a_blank_name_uses_the_generic_greeting() -> None:
    # Given no usable first name
    for name in (None, "", "   "):
        facts = some_facts(first_name=name, locale="da_DK")

        # When the e-mail and the SMS are rendered
        email = render_email("tier_upgrade", facts)
        sms = render_sms("tier_upgrade", facts)

        # Then they open with the greeting alone
        assert email.text.startswith("Hej!\n")
        assert sms.text.startswith("Hej! ")


def test_an_invalid_template_file_is_refused() -> None:
    # Given a template that lacks Finnish and has an SMS with a character outside GSM-7
    parts = {"subject": "Hi", "text": "{greeting}!", "sms": "{greeting}! Hi. Reply STOP to opt out."}
    raw = {language: dict(parts) for language in ("sv", "nb", "da", "en")}

    # When / Then it is refused, naming what is wrong
    with pytest.raises(TemplateError, match="languages"):
        offer_messages._parse_template("broken", raw)
    raw["fi"] = parts | {"sms": "{greeting}! Hei – tervetuloa. Lopeta viestit vastaamalla STOP."}
    with pytest.raises(TemplateError, match="GSM-7"):
        offer_messages._parse_template("broken", raw)
    raw["fi"] = parts | {"text": "{greeting}! {offer.code}"}
    with pytest.raises(TemplateError, match="plain name"):
        offer_messages._parse_template("broken", raw)
