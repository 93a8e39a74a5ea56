"""The programme's own offers: when an order earns an upgrade or a nudge, which complementary category to
suggest, how often each may come, and the offer rules file validated like the programme rules."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from loyalty.errors import ProgramConfigError
from loyalty.ledger.model import Entry, EntryKind, LedgerResult, MemberSummary
from loyalty.offers.programme import after_order, category_affinity, programme_request
from loyalty.offers.requests import Offer, OfferKind, OfferRequest, Trigger
from loyalty.offers.rules import OfferRules, QuietHours, load_offer_rules
from loyalty.programme.segments import Purchase

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
TODAY = date(2026, 11, 20)


@pytest.fixture(scope="module")
def offer_rules() -> OfferRules:
    return load_offer_rules()


def accrual(**fields: object) -> LedgerResult:
    key = "accrual#s#1"
    entry = Entry(member_id="m1", source_key=key, kind=EntryKind.ACCRUAL, created_at=NOW, points=0, reason="r",
                  **fields)  # type: ignore[arg-type]  # fmt: skip
    return LedgerResult(entry=entry)


def summary(**fields: object) -> MemberSummary:
    defaults: dict[str, object] = {
        "member_id": "m1", "available": 0, "pending": 0, "lifetime": 0, "qualifying": 0, "tier": "bronze",
        "earned_tier": "bronze", "next_expiry_on": None, "next_expiry_points": 0, "enrolled_at": NOW,
        "last_activity": None,
    }  # fmt: skip
    return MemberSummary(**{**defaults, **fields})  # type: ignore[arg-type]


def test_an_order_that_reaches_a_tier_asks_for_the_upgrade_message_once_per_tier_and_period(
    offer_rules: OfferRules,
) -> None:
    result = accrual(tier_reached="silver", tier_period_end=date(2027, 11, 20))
    (upgrade,) = after_order(offer_rules, result, summary(tier="silver", next_tier="gold", points_to_next_tier=2000),
                             TODAY, NOW)  # fmt: skip
    assert upgrade.trigger is Trigger.TIER_UPGRADE and upgrade.template_key == "tier_upgrade"
    assert upgrade.request_id == "tier_upgrade#m1#silver#2027-11-20" == upgrade.dedup_key
    assert upgrade.channels == ("email",) and upgrade.offer is None


def test_a_member_close_to_the_next_tier_is_nudged_and_one_far_from_it_is_not(offer_rules: OfferRules) -> None:
    close = summary(next_tier="silver", points_to_next_tier=250, tier_period_end=None)
    far = summary(next_tier="silver", points_to_next_tier=301)
    (nudge,) = after_order(offer_rules, accrual(), close, TODAY, NOW)
    assert nudge.trigger is Trigger.TIER_NUDGE and nudge.details == {"gap": 250}
    assert nudge.request_id == "tier_nudge#m1#silver#2026"
    assert after_order(offer_rules, accrual(), far, TODAY, NOW) == []
    assert after_order(offer_rules, accrual(), summary(next_tier=None, points_to_next_tier=None), TODAY, NOW) == []


def bought(days_ago: int, *categories: str) -> Purchase:
    return Purchase(f"o{days_ago}", date.fromordinal(TODAY.toordinal() - days_ago), 100, False, False, categories)


def test_category_affinity_suggests_a_complement_not_bought_lately(offer_rules: OfferRules) -> None:
    # Given shoes bought a month ago and accessories never
    request = category_affinity(offer_rules, "m1", [bought(30, "shoes")], TODAY, NOW)
    assert request is not None and request.details == {"category": "accessories", "because": "shoes"}
    assert request.request_id == "category_affinity#m1#2026-Q4"
    # The offer comes from infra/offers.yaml, valid from today
    assert request.offer == Offer(
        code="DISCOVER", kind=OfferKind.POINTS_MULTIPLIER, multiplier="2", valid_from=TODAY,
        valid_until=date(2026, 12, 10),
    )  # fmt: skip
    # A complement bought lately is not suggested; the next one is
    later = category_affinity(offer_rules, "m1", [bought(30, "shoes"), bought(60, "accessories")], TODAY, NOW)
    assert later is not None and later.details["category"] == "outdoor"
    # Nothing to suggest: every complement bought lately, or nothing bought recently enough
    assert category_affinity(offer_rules, "m1", [bought(30, "shoes", "accessories", "outdoor")], TODAY, NOW) is None
    assert category_affinity(offer_rules, "m1", [bought(200, "shoes")], TODAY, NOW) is None


def test_programme_requests_carry_their_offer_and_channels(offer_rules: OfferRules) -> None:
    request = programme_request(offer_rules, Trigger.WIN_BACK, "m1", "2026-05-01", TODAY, NOW)
    assert request.offer is not None and request.offer.bonus_points == 200
    assert (request.offer.valid_from, request.offer.valid_until) == (TODAY, date(2026, 12, 19))
    assert request.channels == ("email", "sms") and not request.service
    warning = programme_request(offer_rules, Trigger.EXPIRY_WARNING, "m1", "2027-03-31", TODAY, NOW)
    assert warning.service and warning.offer is None


def test_crm_offers_are_one_per_offer_and_validity_and_birthdays_one_a_year() -> None:
    offer = Offer(code="X", kind=OfferKind.VOUCHER, valid_from=TODAY, valid_until=date(2026, 12, 1))
    crm = OfferRequest(request_id="salesforce:1", member_id="m1", trigger=Trigger.CRM, template_key="offer_voucher",
                       requested_at=NOW, offer=offer)  # fmt: skip
    assert crm.dedup_key == "X#2026-11-20#2026-12-01"
    assert crm.model_copy(update={"request_id": "salesforce:2"}).dedup_key == crm.dedup_key
    birthday = crm.model_copy(update={"template_key": "birthday"})
    assert birthday.dedup_key == "birthday#2026"


def test_a_birthday_is_counted_in_the_year_of_the_day_it_is_for() -> None:
    # Given the job for 31 December running after midnight UTC on New Year's Day
    new_year = datetime(2027, 1, 1, 0, 30, tzinfo=UTC)
    late = OfferRequest(request_id="birthday#m1#2026-12-31", member_id="m1", trigger=Trigger.BIRTHDAY,
                        template_key="birthday", requested_at=new_year, occasion=date(2026, 12, 31))  # fmt: skip
    # Then it is the 2026 birthday message, not 2027's
    assert late.dedup_key == "birthday#2026"


def test_quiet_hours_across_midnight() -> None:
    quiet = QuietHours.model_validate({"start": "21:00", "end": "08:00"})
    assert quiet.contains(datetime(2026, 1, 1, 22, 30).time()) and quiet.contains(datetime(2026, 1, 1, 7, 59).time())
    assert not quiet.contains(datetime(2026, 1, 1, 8, 0).time()) and not quiet.contains(
        datetime(2026, 1, 1, 20, 59).time()
    )


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ("caps:\n  marketing: {messages: 0, days: 7}\n", "caps.marketing.messages"),
        ("quiet_hours:\n  start: '25:00'\n  end: '08:00'\n", "quiet_hours.start"),
        ("time_zones:\n  sv: Mars/Olympus\n", "time_zones"),
        ("programme:\n  birthday: {channels: [email]}\n", "programme"),
    ],
)
def test_a_wrong_offer_rules_file_names_the_field(tmp_path: Path, change: str, path: str) -> None:
    source = (Path(__file__).resolve().parents[2] / "infra" / "offers.yaml").read_text()
    key = change.split(":", 1)[0]
    lines, skipping = [], False
    for line in source.splitlines():  # drop the key's block from the real file, then append the wrong one
        if line.startswith(f"{key}:"):
            skipping = True
            continue
        if skipping and (line.startswith(" ") or not line.strip()):
            continue
        skipping = False
        lines.append(line)
    bad = tmp_path / "offers.yaml"
    bad.write_text("\n".join(lines) + "\n" + change)
    with pytest.raises(ProgramConfigError) as caught:
        load_offer_rules(bad)
    assert path in str(caught.value) and str(bad) in str(caught.value)
