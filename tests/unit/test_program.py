"""Programme rules: loading infra/program.yaml, validation that names the field, tiers, expiry, release."""

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from loyalty.errors import LoyaltyError, ProgramConfigError, UnknownTierError
from loyalty.programme.rules import REPO_PROGRAM_FILE, Campaign, ProgramRules, load_program

VALID: dict[str, Any] = {
    "timezone": "Europe/Stockholm",
    "currencies": {"SEK": {"points_per_unit": "0.1"}, "EUR": {"points_per_unit": 1}},
    "earning_base": {"include_vat": False},
    "categories": [{"category": "shoes", "multiplier": 2}],
    "max_total_multiplier": 3,
    "campaigns": [
        {
            "id": "black-friday",
            "name": "Black Friday",
            "starts_on": date(2026, 11, 27),
            "ends_on": date(2026, 11, 30),
            "multiplier": 2,
        }
    ],
    "tiers": [
        {"name": "bronze", "threshold": 0, "multiplier": 1},
        {"name": "silver", "threshold": 1000, "multiplier": "1.1"},
        {"name": "gold", "threshold": 3000, "multiplier": "1.25"},
        {"name": "platinum", "threshold": 6000, "multiplier": "1.5"},
    ],
    "pending_days": 30,
    "expiry": {"months": 12},
    "qualification": {"window_months": 12},
    "bonuses": {"signup": 100, "birthday": 200, "referral": 250, "review": 25},
}


def write_program(tmp_path: Path, settings: dict[str, Any]) -> Path:
    path = tmp_path / "program.yaml"
    path.write_text(yaml.safe_dump(settings, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def rules() -> ProgramRules:
    return ProgramRules.model_validate(VALID)


def test_default_program_file_loads_with_exact_decimals() -> None:
    # Given the shipped infra/program.yaml
    # When it is loaded
    rules = load_program(REPO_PROGRAM_FILE)
    # Then the rates are the exact decimals written in the file (not floats), and the tiers are as documented
    assert {code: c.points_per_unit for code, c in rules.currencies.items()} == {
        "SEK": Decimal("0.1"),
        "NOK": Decimal("0.1"),
        "DKK": Decimal("0.15"),
        "EUR": Decimal("1"),
    }
    assert str(rules.currencies["DKK"].points_per_unit) == "0.15"
    assert [(t.name, t.threshold, t.multiplier) for t in rules.tiers] == [
        ("bronze", 0, Decimal("1")),
        ("silver", 1000, Decimal("1.1")),
        ("gold", 3000, Decimal("1.25")),
        ("platinum", 6000, Decimal("1.5")),
    ]
    assert rules.earning_base.include_vat is False
    assert rules.max_total_multiplier == Decimal("3")
    assert rules.qualification.window_months == 12
    assert (rules.bonuses.signup, rules.bonuses.birthday, rules.bonuses.referral, rules.bonuses.review) == (
        100,
        200,
        250,
        25,
    )


def test_load_program_without_a_path_reads_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given LOYALTY_PROGRAM_FILE points at a programme with 7 pending days
    monkeypatch.setenv("LOYALTY_PROGRAM_FILE", str(write_program(tmp_path, {**VALID, "pending_days": 7})))
    # When the programme is loaded without a path
    rules = load_program()
    # Then that file was read
    assert rules.pending_days == 7


def test_load_program_without_a_path_or_variable_reads_the_repository_file(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given no LOYALTY_PROGRAM_FILE
    monkeypatch.delenv("LOYALTY_PROGRAM_FILE", raising=False)
    # When the programme is loaded without a path
    # Then it is the repository's infra/program.yaml
    assert load_program() == load_program(REPO_PROGRAM_FILE)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"currencies": {"SEK": {"points_per_unit": -1}}}, "currencies.SEK.points_per_unit"),
        ({"currencies": {"SEK": {"points_per_unit": "ten"}}}, "currencies.SEK.points_per_unit"),
        ({"currencies": {"SEK": {}}}, "currencies.SEK.points_per_unit"),
        ({"earning_base": {"include_tax": True}}, "earning_base.include_tax"),
        ({"categories": [{"category": "shoes", "multiplier": 0}]}, "categories[0].multiplier"),
        ({"max_total_multiplier": "0.5"}, "max_total_multiplier"),
        ({"pending_days": -1}, "pending_days"),
        ({"expiry": {"months": -1}}, "expiry.months"),
        ({"qualification": {"window_months": 0}}, "qualification.window_months"),
        ({"bonuses": {"birthday": -5}}, "bonuses.birthday"),
        ({"timezone": "Mars/Olympus_Mons"}, "timezone"),
    ],
)
def test_a_wrong_value_names_its_field_and_the_file(tmp_path: Path, change: dict[str, Any], field: str) -> None:
    # Given a programme file with one wrong value
    path = write_program(tmp_path, {**VALID, **change})
    # When it is loaded
    with pytest.raises(ProgramConfigError) as raised:
        load_program(path)
    # Then the error names the field path and the file
    assert f"{field}:" in str(raised.value)
    assert str(path) in str(raised.value)


@pytest.mark.parametrize(
    ("tiers", "message"),
    [
        ([{"name": "bronze", "threshold": 5, "multiplier": 1}], "tiers[0].threshold must be 0"),
        (
            [
                {"name": "bronze", "threshold": 0, "multiplier": 1},
                {"name": "silver", "threshold": 1000, "multiplier": 1},
                {"name": "gold", "threshold": 1000, "multiplier": 1},
            ],
            "tiers[2].threshold (1000) must be greater than tiers[1].threshold (1000)",
        ),
        (
            [{"name": "bronze", "threshold": 0, "multiplier": 1}, {"name": "bronze", "threshold": 9, "multiplier": 1}],
            "tiers[1].name 'bronze' is listed twice",
        ),
        ([], "at least one tier"),
        ([{"name": "Gold Tier", "threshold": 0, "multiplier": 1}], "tiers[0].name:"),
    ],
)
def test_tiers_must_start_at_zero_and_strictly_increase(
    tmp_path: Path, tiers: list[dict[str, Any]], message: str
) -> None:
    # Given a programme whose tiers are out of order (or otherwise wrong)
    path = write_program(tmp_path, {**VALID, "tiers": tiers})
    # When it is loaded
    # Then the error names the offending tier field
    with pytest.raises(ProgramConfigError, match=r"invalid programme rules") as raised:
        load_program(path)
    assert message in str(raised.value)


@pytest.mark.parametrize(
    ("campaign", "message"),
    [
        ({"multiplier": 2, "bonus_points": 100}, "campaigns[0]: Value error, set exactly one of multiplier or bonus"),
        ({}, "campaigns[0]: Value error, set exactly one of multiplier or bonus_points"),
        ({"bonus_points": 0}, "campaigns[0].bonus_points:"),
        ({"multiplier": 2, "weekdays": ["saturday"]}, "campaigns[0].weekdays[0]:"),
        ({"multiplier": 2, "ends_on": date(2026, 11, 1)}, "campaigns[0]: Value error, ends_on 2026-11-01 is before"),
    ],
)
def test_a_campaign_has_exactly_one_reward_and_a_valid_window(
    tmp_path: Path, campaign: dict[str, Any], message: str
) -> None:
    # Given a campaign with a bad reward, weekday or window
    settings = {"id": "bf", "name": "BF", "starts_on": date(2026, 11, 27), "ends_on": date(2026, 11, 30), **campaign}
    path = write_program(tmp_path, {**VALID, "campaigns": [settings]})
    # When the programme is loaded
    # Then the error names the campaign field
    with pytest.raises(ProgramConfigError) as raised:
        load_program(path)
    assert message in str(raised.value)


def test_malformed_yaml_names_the_file(tmp_path: Path) -> None:
    # Given a file that is not valid YAML
    path = tmp_path / "broken.yaml"
    path.write_text("currencies: {SEK: [\n", encoding="utf-8")
    # When it is loaded
    # Then ProgramConfigError (a LoyaltyError) names the file
    with pytest.raises(LoyaltyError, match=r"broken\.yaml: malformed YAML") as raised:
        load_program(path)
    assert isinstance(raised.value, ProgramConfigError)


@pytest.mark.parametrize("text", ["- just\n- a list\n", ""])
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path: Path, text: str) -> None:
    # Given a YAML file that is a list, or empty
    path = tmp_path / "program.yaml"
    path.write_text(text, encoding="utf-8")
    # When it is loaded / Then it is refused, naming the file
    with pytest.raises(ProgramConfigError, match=r"program\.yaml: expected a mapping"):
        load_program(path)


def test_a_missing_file_names_the_file(tmp_path: Path) -> None:
    # Given a path where there is no file
    path = tmp_path / "nowhere.yaml"
    # When it is loaded / Then the error names it
    with pytest.raises(ProgramConfigError, match=r"nowhere\.yaml: cannot read"):
        load_program(path)


def test_floats_are_refused_in_code(rules: ProgramRules) -> None:
    # Given a rate given as a Python float, which is not exactly 0.1
    settings = {**VALID, "currencies": {"SEK": {"points_per_unit": 0.1}}}
    # When the rules are validated / Then the float is refused
    with pytest.raises(ValidationError, match="expected a decimal string, int or Decimal, not float"):
        ProgramRules.model_validate(settings)


@pytest.mark.parametrize(
    ("qualifying_points", "tier"),
    [(-5, "bronze"), (0, "bronze"), (999, "bronze"), (1000, "silver"), (2999, "silver"), (3000, "gold"),
     (5999, "gold"), (6000, "platinum"), (10**9, "platinum")],
)  # fmt: skip
def test_tier_for_is_the_highest_threshold_reached(rules: ProgramRules, qualifying_points: int, tier: str) -> None:
    # Given thresholds 0 / 1000 / 3000 / 6000
    # When the tier for some qualifying points is asked for
    # Then it is the highest tier whose threshold is reached
    assert rules.tier_for(qualifying_points).name == tier


def test_next_tier_and_unknown_tier(rules: ProgramRules) -> None:
    # Given the four default tiers
    # When the next tier is asked for
    # Then it is the one above, and None at the top
    assert rules.next_tier("bronze") == rules.tier("silver")
    assert rules.next_tier("gold") == rules.tier("platinum")
    assert rules.next_tier("platinum") is None
    assert rules.tier("gold").display_name == "Gold"
    # And an unknown tier name is a ValueError naming it
    with pytest.raises(ValueError, match="unknown tier 'diamond'") as raised:
        rules.next_tier("diamond")
    assert isinstance(raised.value, UnknownTierError)


@pytest.mark.parametrize(
    ("earned_on", "months", "expires_on"),
    [
        (date(2026, 1, 31), 12, date(2027, 1, 31)),
        (date(2026, 2, 10), 12, date(2027, 2, 28)),
        (date(2027, 2, 10), 12, date(2028, 2, 29)),  # 2028 is a leap year
        (date(2026, 11, 15), 3, date(2027, 2, 28)),
        (date(2099, 12, 1), 2, date(2100, 2, 28)),  # 2100 is not a leap year
        (date(2026, 12, 31), 1, date(2027, 1, 31)),
        (date(2026, 4, 3), 0, date(2026, 4, 30)),
        (date(2026, 5, 1), 24, date(2028, 5, 31)),
    ],
)
def test_expiry_is_the_month_end_months_later(earned_on: date, months: int, expires_on: date) -> None:
    # Given an expiry of `months` months
    rules = ProgramRules.model_validate({**VALID, "expiry": {"months": months}})
    # When points are earned on `earned_on`
    # Then they expire on the last day of the month `months` later
    assert rules.expiry_date(earned_on) == expires_on


def test_release_date_is_pending_days_later(rules: ProgramRules) -> None:
    # Given 30 pending days
    # When points are earned on 2026-03-20 (March has 31 days: 20 + 30 = April 19)
    # Then they are released on 2026-04-19
    assert rules.release_date(date(2026, 3, 20)) == date(2026, 4, 19)
    assert rules.model_copy(update={"pending_days": 0}).release_date(date(2026, 3, 20)) == date(2026, 3, 20)


@pytest.mark.parametrize(
    ("day", "active"),
    [
        (date(2026, 3, 6), False),  # Friday in the window
        (date(2026, 3, 7), True),  # Saturday
        (date(2026, 3, 8), True),  # Sunday
        (date(2026, 3, 9), False),  # Monday
        (date(2026, 2, 28), False),  # Saturday before the window
        (date(2026, 3, 1), True),  # Sunday, first day (inclusive)
        (date(2026, 5, 31), True),  # Sunday, last day (inclusive)
        (date(2026, 6, 6), False),  # Saturday after the window
    ],
)
def test_campaign_window_and_weekdays(day: date, active: bool) -> None:
    # Given a weekend campaign from 2026-03-01 to 2026-05-31
    campaign = Campaign(
        id="weekends",
        name="Weekends",
        starts_on=date(2026, 3, 1),
        ends_on=date(2026, 5, 31),
        weekdays=("sat", "sun"),
        bonus_points=100,
    )
    # When it is asked whether it runs on `day` / Then only weekend days inside the window count
    assert campaign.is_active_on(day) is active
