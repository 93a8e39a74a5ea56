"""Personalised offer and notice messages in the programme's five languages: e-mail (text and HTML) and SMS.

Pure: the texts live in `offers/templates/<template_key>.yaml` (one file per key; every language has a
`subject`, a plain-text e-mail `text` and an `sms`, and optionally a `with_offer` block of the same three
parts used when the facts carry an offer). The caller gives the facts; nothing here sends anything.

Placeholders are `str.format_map` names in braces, filled with values already written the local way:
`{greeting}` ("Hej Anna", or "Hej" without a name), `{first_name}` (the name, or the greeting word alone),
`{points_available}`, `{tier}`, `{next_tier}`, `{points_to_next}`, `{programme_name}`, `{unsubscribe_url}`,
`{offer_code}`, `{offer_summary}`, `{valid_from}`, `{valid_until}` and every key of `details`. A number may
carry the unit in the right grammatical number with `:points` ("{points:points}" is "1 piste" or
"200 pistettä"). A placeholder the facts do not provide raises TemplateError: a customer never sees "{...}".
"""

from __future__ import annotations

import html
import re
import string
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import date
from decimal import Decimal
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import yaml

from loyalty.errors import LoyaltyError
from loyalty.offers.requests import Offer, OfferKind

LANGUAGES = ("sv", "nb", "da", "fi", "en")
SMS_MAX_SEPTETS = 160

_PARTS = ("subject", "text", "sms")
_FORMAT_SPECS = ("", "points")  # "{points:points}": the number with its unit
_FORMATTER = string.Formatter()


class TemplateError(LoyaltyError, ValueError):
    """An unknown template key, a template file that is invalid or cannot fit an SMS, or a placeholder the
    facts do not provide; the message names the key, the language and the placeholder."""


@dataclass(frozen=True)
class MessageFacts:
    """Everything a template may show, already true for the member."""

    first_name: str | None
    locale: str | None  # e.g. "sv_SE", "sv-SE", "nb_NO", "no", "da_DK", "fi_FI", "en_GB"; anything else is English
    points_available: int
    tier: str  # display name, e.g. "Gold"
    next_tier: str | None  # display name, or None at the top
    points_to_next: int | None
    unsubscribe_url: str  # the e-mail unsubscribe link, already signed by the caller
    offer: Offer | None = None
    details: Mapping[str, str | int] = field(default_factory=dict)  # {"points": 70, "expires_on": "2027-03-31"}
    programme_name: str = "Loyalty Club"
    page_url: str | None = None  # the member's own page, a signed link (at the foot of every e-mail)


@dataclass(frozen=True)
class RenderedEmail:
    language: str
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class RenderedSms:
    language: str
    text: str
    characters: int  # length in GSM-7 septets (an extension-table character such as € counts 2)


# ---------------------------------------------------------------- the words of each language


@dataclass(frozen=True)
class _Words:
    greeting: str  # alone when there is no name, else followed by the name
    point: tuple[str, str]  # unit after 1, unit after any other number
    bonus_point: tuple[str, str]
    double_points: str
    triple_points: str
    times_points: str  # "{}" is the multiplier written the local way
    extra_points: str  # a multiplier offer without a multiplier
    some_bonus_points: str  # a bonus offer without a number
    voucher: str
    free_shipping: str
    months: tuple[str, ...]  # empty: dates written with numbers only
    date_pattern: str  # {day}, {month} (name or number), {year}
    thousands: str
    decimal: str
    unsubscribe_question: str
    unsubscribe_label: str
    page_label: str  # the link to the member's own page


@cache
def _words() -> dict[str, _Words]:
    """The word tables (offers/words.yaml), read once; a language or a word missing is a TemplateError."""
    where = "offers/words.yaml"
    try:
        raw = yaml.safe_load((resources.files("loyalty.offers") / "words.yaml").read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise TemplateError(f"{where}: cannot be read: {exc}") from exc
    names = {field.name for field in fields(_Words)}
    tables: dict[str, _Words] = {}
    for language in LANGUAGES:
        entry = raw.get(language) if isinstance(raw, dict) else None
        if not isinstance(entry, dict) or set(entry) != names:
            raise TemplateError(f"{where}: {language} needs exactly the words {', '.join(sorted(names))}")
        values = {name: tuple(value) if isinstance(value, list) else str(value) for name, value in entry.items()}
        tables[language] = _Words(**values)  # type: ignore[arg-type]
    return tables


_LANGUAGE_OF = {"sv": "sv", "nb": "nb", "nn": "nb", "no": "nb", "da": "da", "fi": "fi", "en": "en"}


def language_for(locale: str | None) -> str:
    """The message language for a locale: "sv_SE", "sv-SE" and "sv" are "sv"; every Norwegian is "nb"; else "en"."""
    if not locale:
        return "en"
    primary = re.split(r"[-_.@]", locale.strip().lower(), maxsplit=1)[0]
    return _LANGUAGE_OF.get(primary, "en")


# ---------------------------------------------------------------- numbers, dates and the offer, the local way


def local_number(value: int, language: str) -> str:
    return f"{value:,}".replace(",", _words()[language].thousands)


def _points(value: int, unit: tuple[str, str], language: str) -> str:
    return f"{local_number(value, language)} {unit[0] if value == 1 else unit[1]}"


def local_date(value: date, language: str) -> str:
    words = _words()[language]
    month = words.months[value.month - 1] if words.months else str(value.month)
    return words.date_pattern.format(day=value.day, month=month, year=value.year)


def _decimal(value: Decimal, language: str) -> str:
    return format(value.normalize(), "f").replace(".", _words()[language].decimal)


def _offer_summary(offer: Offer, language: str) -> str:
    words = _words()[language]
    if offer.kind is OfferKind.POINTS_MULTIPLIER:
        if offer.multiplier is None:
            return words.extra_points
        multiplier = Decimal(offer.multiplier)
        if multiplier == 2:
            return words.double_points
        if multiplier == 3:
            return words.triple_points
        return words.times_points.format(_decimal(multiplier, language))
    if offer.kind is OfferKind.BONUS_POINTS:
        if offer.bonus_points is None:
            return words.some_bonus_points
        return _points(offer.bonus_points, words.bonus_point, language)
    if offer.kind is OfferKind.VOUCHER:
        return words.voucher
    return words.free_shipping


# ---------------------------------------------------------------- GSM 03.38


_GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)  # the 128 of the default alphabet but the escape to the extension table
_GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")  # each sent as escape + character: 2 septets
_GSM7_FALLBACKS = {  # letters and signs that NFKD leaves alone
    **dict(zip("ŁłĐđÐðıĸ×⁄·•", "LlDdDdikx/.-", strict=True)),
    **dict.fromkeys("‘’‚‛′‹›", "'"),
    **dict.fromkeys("“”„″«»", '"'),
    **dict.fromkeys("‐‑‒–—―−", "-"),
    "Þ": "Th",
    "þ": "th",
    "Œ": "OE",
    "œ": "oe",
}


def gsm7_length(text: str) -> int | None:
    """The length of `text` in GSM-7 septets, or None if a character is in neither GSM 03.38 table."""
    length = 0
    for char in text:
        if char in _GSM7_BASIC:
            length += 1
        elif char in _GSM7_EXTENSION:
            length += 2
        else:
            return None
    return length


def _is_gsm7(char: str) -> bool:
    return char in _GSM7_BASIC or char in _GSM7_EXTENSION


def _to_gsm7(text: str) -> str:
    """`text` in GSM-7 only: Nordic letters kept, "Ł" as "L", "é" kept but "ę" as "e", emoji dropped."""
    out: list[str] = []
    for char in text:
        if _is_gsm7(char):
            out.append(char)
            continue
        if char in _GSM7_FALLBACKS:
            out.append(_GSM7_FALLBACKS[char])
            continue
        for part in unicodedata.normalize("NFKD", char):
            if _is_gsm7(part):
                out.append(part)
            elif part in _GSM7_FALLBACKS:
                out.append(_GSM7_FALLBACKS[part])
            # combining marks and anything else unencodable are dropped
    return "".join(out)


# ---------------------------------------------------------------- the template files


@dataclass(frozen=True)
class _Parts:
    subject: str
    text: str
    sms: str


@dataclass(frozen=True)
class _Template:
    key: str
    plain: Mapping[str, _Parts]  # by language
    with_offer: Mapping[str, _Parts] | None  # by language, used when the facts carry an offer

    def parts(self, language: str, has_offer: bool) -> _Parts:
        if has_offer and self.with_offer is not None:
            return self.with_offer[language]
        return self.plain[language]


def _offers_directory() -> Traversable:
    return resources.files("loyalty.offers") / "templates"


@cache
def template_keys() -> frozenset[str]:
    """The keys of every offer template shipped with the package (the file names without ".yaml")."""
    return frozenset(
        entry.name.removesuffix(".yaml")
        for entry in _offers_directory().iterdir()
        if entry.name.endswith(".yaml") and entry.is_file()
    )


@cache
def _template(template_key: str) -> _Template:
    if template_key not in template_keys():
        raise TemplateError(f"unknown template key {template_key!r}; known: {', '.join(sorted(template_keys()))}")
    file_name = f"{template_key}.yaml"
    try:
        raw = yaml.safe_load((_offers_directory() / file_name).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TemplateError(f"offers/templates/{file_name}: not valid YAML: {exc}") from exc
    return _parse_template(template_key, raw)


def _parse_template(key: str, raw: Any) -> _Template:
    where = f"offers/templates/{key}.yaml"
    if not isinstance(raw, dict) or set(raw) != set(LANGUAGES):
        found = sorted(map(str, raw)) if isinstance(raw, dict) else type(raw).__name__
        raise TemplateError(f"{where}: needs exactly the languages {', '.join(LANGUAGES)}; found {found}")
    plain: dict[str, _Parts] = {}
    with_offer: dict[str, _Parts] = {}
    for language in LANGUAGES:
        entry = raw[language]
        if not isinstance(entry, dict):
            raise TemplateError(f"{where}: {language} must be a mapping of {', '.join(_PARTS)}")
        unknown = set(entry) - {*_PARTS, "with_offer"}
        if unknown:
            raise TemplateError(f"{where}: {language} has unknown parts {sorted(map(str, unknown))}")
        plain[language] = _parse_parts(f"{where}: {language}", {k: v for k, v in entry.items() if k != "with_offer"})
        if "with_offer" in entry:
            with_offer[language] = _parse_parts(f"{where}: {language}.with_offer", entry["with_offer"])
    if with_offer and set(with_offer) != set(LANGUAGES):
        missing = sorted(set(LANGUAGES) - set(with_offer))
        raise TemplateError(f"{where}: with_offer is missing in {', '.join(missing)}")
    return _Template(key=key, plain=plain, with_offer=with_offer or None)


def _parse_parts(where: str, entry: Any) -> _Parts:
    if not isinstance(entry, dict) or set(entry) != set(_PARTS):
        raise TemplateError(f"{where}: needs exactly {', '.join(_PARTS)}")
    for part in _PARTS:
        text = entry[part]
        if not isinstance(text, str) or not text.strip():
            raise TemplateError(f"{where}.{part}: must be a non-empty text")
        _check_placeholders(f"{where}.{part}", text)
    if "\n" in entry["subject"]:
        raise TemplateError(f"{where}.subject: must be one line")
    literal = "".join(piece for piece, *_ in _FORMATTER.parse(entry["sms"]))
    if gsm7_length(literal) is None:
        bad = sorted({char for char in literal if not _is_gsm7(char)})
        raise TemplateError(f"{where}.sms: characters outside GSM-7 {bad}")
    return _Parts(subject=entry["subject"].strip(), text=entry["text"].strip(), sms=" ".join(entry["sms"].split()))


def _check_placeholders(where: str, text: str) -> None:
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in _FORMATTER.parse(text) if name is not None]
    except ValueError as exc:
        raise TemplateError(f"{where}: {exc}") from exc
    for name, spec, conversion in fields:
        if not name.isidentifier() or conversion is not None or spec not in _FORMAT_SPECS:
            raise TemplateError(f"{where}: placeholder {{{name}}} must be a plain name, optionally with :points")


# ---------------------------------------------------------------- rendering


def _clean(text: str | None) -> str:
    """One line, single spaces: a value never breaks a subject or a paragraph."""
    return " ".join((text or "").split())


def _sms_value(text: str) -> str:
    return " ".join(_to_gsm7(text).split())


@dataclass(frozen=True)
class _Values:
    texts: dict[str, str]
    counts: dict[str, int]  # the numbers among them, for "{name:points}"


def _values(facts: MessageFacts, language: str, name: str) -> _Values:
    texts: dict[str, str] = {}
    counts: dict[str, int] = {}
    for key, value in facts.details.items():
        if key == "expires_on":
            texts[key] = local_date(_iso_date(value), language)
        elif isinstance(value, int):
            texts[key], counts[key] = local_number(value, language), value
        else:
            texts[key] = _clean(value)
    greeting = _words()[language].greeting
    texts |= {
        "greeting": f"{greeting} {name}" if name else greeting,
        "first_name": name or greeting,
        "tier": _clean(facts.tier),
        "programme_name": _clean(facts.programme_name),
        "unsubscribe_url": facts.unsubscribe_url.strip(),
    }
    counts["points_available"] = facts.points_available
    if facts.next_tier is not None:
        texts["next_tier"] = _clean(facts.next_tier)
    if facts.points_to_next is not None:
        counts["points_to_next"] = facts.points_to_next
    if facts.offer is not None:
        texts |= {
            "offer_code": _clean(facts.offer.code),
            "offer_summary": _offer_summary(facts.offer, language),
            "valid_from": local_date(facts.offer.valid_from, language),
            "valid_until": local_date(facts.offer.valid_until, language),
        }
    texts |= {key: local_number(value, language) for key, value in counts.items()}
    return _Values(texts=texts, counts=counts)


def _iso_date(value: str | int) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError as exc:
        raise TemplateError(f"details.expires_on must be an ISO date (YYYY-MM-DD), not {value!r}") from exc


def _fill(where: str, template: str, values: _Values, language: str, *, sms: bool = False) -> str:
    out: list[str] = []
    for literal, name, spec, _ in _FORMATTER.parse(template):
        out.append(literal)
        if name is None:
            continue
        if name not in values.texts:
            raise TemplateError(f"{where}: the template needs {{{name}}}, which the facts do not provide")
        if spec == "points":
            if name not in values.counts:
                raise TemplateError(f"{where}: {{{name}:points}} needs a number")
            value = _points(values.counts[name], _words()[language].point, language)
        else:
            value = values.texts[name]
        out.append(_sms_value(value) if sms else value)
    return "".join(out)


def render_email(template_key: str, facts: MessageFacts) -> RenderedEmail:
    """The e-mail for `template_key`: a one-line subject, a text body and the same body as a small HTML page."""
    template = _template(template_key)
    language = language_for(facts.locale)
    parts = template.parts(language, facts.offer is not None)
    url = facts.unsubscribe_url.strip()
    if not re.fullmatch(r"https?://\S+", url):
        raise TemplateError(f"{template_key}: unsubscribe_url must be an http(s) URL without spaces")
    values = _values(facts, language, _clean(facts.first_name))
    where = f"{template_key} ({language})"
    subject = _clean(_fill(where, parts.subject, values, language))
    body = _fill(where, parts.text, values, language).strip()
    words = _words()[language]
    page = (facts.page_url or "").strip()
    if page and not re.fullmatch(r"https?://\S+", page):
        raise TemplateError(f"{template_key}: page_url must be an http(s) URL without spaces")
    foot = f"{words.page_label}: {page}\n" if page else ""
    text = f"{body}\n\n{foot}{words.unsubscribe_question} {words.unsubscribe_label}: {url}"
    html_body = _html(language, subject, body, url, page)
    return RenderedEmail(language=language, subject=subject, html=html_body, text=text)


def render_sms(template_key: str, facts: MessageFacts) -> RenderedSms:
    """The SMS for `template_key` in GSM-7, at most 160 septets; the name is left out if it would not fit."""
    template = _template(template_key)
    language = language_for(facts.locale)
    parts = template.parts(language, facts.offer is not None)
    where = f"{template_key} ({language}) sms"
    name = _sms_value(_clean(facts.first_name))
    text = _fill(where, parts.sms, _values(facts, language, name), language, sms=True)
    if name and _septets(where, text) > SMS_MAX_SEPTETS:
        text = _fill(where, parts.sms, _values(facts, language, ""), language, sms=True)  # the greeting alone
    length = _septets(where, text)
    if length > SMS_MAX_SEPTETS:
        raise TemplateError(f"{where}: {length} septets, more than {SMS_MAX_SEPTETS} even without the name")
    return RenderedSms(language=language, text=text, characters=length)


def _septets(where: str, text: str) -> int:
    length = gsm7_length(text)
    if length is None:  # cannot happen: the template is checked and every value transliterated
        raise TemplateError(f"{where}: not pure GSM-7")
    return length


# ---------------------------------------------------------------- HTML

_BODY_STYLE = "margin:0;padding:24px 12px;background-color:#f4f4f4;"
_CARD_STYLE = (
    "max-width:600px;margin:0 auto;padding:24px;background-color:#ffffff;"
    "font-family:Arial,Helvetica,sans-serif;font-size:16px;line-height:1.5;color:#222222;"
)
_P_STYLE = "margin:0 0 16px 0;"
_FOOTER_STYLE = "margin:24px 0 0 0;font-size:12px;line-height:1.5;color:#666666;"
_LINK_STYLE = "color:#666666;text-decoration:underline;"


def _html(language: str, subject: str, body: str, url: str, page: str = "") -> str:
    """A small inline-styled HTML document from the text body; every inserted value is escaped."""
    paragraphs = [block.strip() for block in re.split(r"\n\s*\n", body) if block.strip()]
    rendered = "\n".join(
        f'<p style="{_P_STYLE}">' + "<br>\n".join(html.escape(line.strip()) for line in block.splitlines()) + "</p>"
        for block in paragraphs
    )
    words = _words()[language]
    page_line = (
        f'<p style="{_FOOTER_STYLE}"><a href="{html.escape(page, quote=True)}" style="{_LINK_STYLE}">'
        f"{html.escape(words.page_label)}</a></p>\n"
        if page
        else ""
    )
    footer = page_line + (
        f'<p style="{_FOOTER_STYLE}">{html.escape(words.unsubscribe_question)} '
        f'<a href="{html.escape(url, quote=True)}" style="{_LINK_STYLE}">{html.escape(words.unsubscribe_label)}</a></p>'
    )
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{language}">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(subject)}</title>\n"
        "</head>\n"
        f'<body style="{_BODY_STYLE}">\n'
        f'<div style="{_CARD_STYLE}">\n'
        f"{rendered}\n"
        f"{footer}\n"
        "</div>\n"
        "</body>\n"
        "</html>\n"
    )
