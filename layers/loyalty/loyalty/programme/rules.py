"""Programme rules: what earns points, how many, for how long, and which tier a member is in.

The rules live in infra/program.yaml and are loaded by `load_program` into `ProgramRules`, a
frozen pydantic model. Any wrong value raises `ProgramConfigError` whose message names the file
and every offending field path (for example `currencies.SEK.points_per_unit` or `tiers[1].threshold`).
Unknown keys are errors too, so a misspelt setting never goes unnoticed.

Numbers in the YAML file that have a decimal point are read as `Decimal` from their text, never
through `float`, so `0.15` is exactly 0.15.

Multiplier precedence (applied per order line by `loyalty.programme.earning`):
1. Category: a product may have several categories. Of the category rules that match, the single
   highest multiplier applies (on a tie, the rule listed first in the file names it). Category
   multipliers never stack with each other. No match: x1.
2. Campaigns: every active campaign with a `multiplier` whose categories match the line (no
   categories = every line) multiplies on top of the category multiplier.
3. Tier: the member's tier multiplier multiplies on top.
4. Cap: the product of all of the above is capped at `max_total_multiplier`.
Fixed `bonus_points` of a campaign are added after that, never multiplied and never capped.

Dates: campaign windows and weekdays are judged on the order's date in the programme's `timezone`.
"""

import calendar
import itertools
import os
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Literal, Self, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from loyalty.errors import ProgramConfigError, UnknownTierError
from loyalty.programme.money import ExactDecimal
from loyalty.programme.orders import casefold_categories

PROGRAM_FILE_ENV = "LOYALTY_PROGRAM_FILE"
REPO_PROGRAM_FILE = Path(__file__).resolve().parents[4] / "infra" / "program.yaml"
LAYER_PROGRAM_FILE = Path("/opt/python/program.yaml")  # layers/loyalty/program.yaml links infra/program.yaml

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index == date.weekday()
MachineName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")]
PositiveDecimal = Annotated[ExactDecimal, Field(gt=0)]


class _Rules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CurrencyRule(_Rules):
    points_per_unit: PositiveDecimal  # 0.1 = one point per 10 units of the currency


class EarningBase(_Rules):
    """Merchandise after discounts always; shipping and gift cards never. Only VAT is a choice."""

    include_vat: bool = False  # False: points are earned on the price without VAT


class CategoryRule(_Rules):
    category: str
    multiplier: PositiveDecimal

    @field_validator("category")
    @classmethod
    def _normalise(cls, value: str) -> str:
        return casefold_categories((value,))[0]


class Campaign(_Rules):
    id: MachineName
    name: str
    starts_on: date  # inclusive
    ends_on: date  # inclusive
    weekdays: tuple[Weekday, ...] = ()  # empty: every day
    categories: tuple[str, ...] = ()  # empty: every line
    multiplier: PositiveDecimal | None = None
    bonus_points: Annotated[int, Field(gt=0)] | None = None

    @field_validator("categories")
    @classmethod
    def _normalise(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return casefold_categories(value)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if (self.multiplier is None) == (self.bonus_points is None):
            raise ValueError("set exactly one of multiplier or bonus_points")
        if self.ends_on < self.starts_on:
            raise ValueError(f"ends_on {self.ends_on} is before starts_on {self.starts_on}")
        return self

    def is_active_on(self, day: date) -> bool:
        in_window = self.starts_on <= day <= self.ends_on
        return in_window and (not self.weekdays or WEEKDAYS[day.weekday()] in self.weekdays)

    def covers(self, categories: tuple[str, ...]) -> bool:
        return not self.categories or any(c in self.categories for c in categories)


class Tier(_Rules):
    name: MachineName  # machine name, stored on members and sent to the CRM
    label: str | None = None  # display name; defaults to the capitalised name
    threshold: Annotated[int, Field(ge=0)]  # qualifying points in the window needed to reach the tier
    multiplier: PositiveDecimal

    @property
    def display_name(self) -> str:
        return self.label or self.name.capitalize()


class Expiry(_Rules):
    months: Annotated[int, Field(ge=0)]  # points expire at the end of the month, this many months after earning


class Qualification(_Rules):
    """How tiers are earned and kept; see loyalty.programme.tiers for the whole life of a tier."""

    period: Literal["rolling", "calendar_year"] = "rolling"
    window_months: Annotated[int, Field(ge=1)] = 12  # rolling: qualifying points counted over this many months
    downgrade_grace_days: Annotated[int, Field(ge=0)] = 0  # a tier not kept is lost this many days after its period

    @model_validator(mode="after")
    def _calendar_is_a_year(self) -> Self:
        if self.period == "calendar_year" and self.window_months != 12:
            raise ValueError("window_months must be 12 (or left out) when period is calendar_year")
        return self


Score = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=4, max_length=4)]


def _ascending(name: str, values: list[int]) -> list[int]:
    if any(b <= a for a, b in itertools.pairwise(values)):
        raise ValueError(f"{name} must be strictly increasing")
    return values


class RfmScores(_Rules):
    """Four boundaries per score, giving scores 1 to 5 (see loyalty.programme.segments)."""

    recency_days: Score = [30, 90, 180, 365]  # ordered within this many days: R5, R4, R3, R2; else R1
    frequency_orders: Score = [1, 2, 4, 8]  # at least this many orders in the window: F2, F3, F4, F5
    monetary_points: Score = [100, 300, 1000, 3000]  # at least this much spent, in base points: M2 .. M5

    @model_validator(mode="after")
    def _increasing(self) -> Self:
        _ascending("recency_days", self.recency_days)
        _ascending("frequency_orders", self.frequency_orders)
        _ascending("monetary_points", self.monetary_points)
        return self


Share = Annotated[ExactDecimal, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=0)]


class LoyalAmbassadorRule(_Rules):
    min_orders: Count = 6
    min_categories: Count = 3
    min_referrals: Count = 1


class PriceDrivenRule(_Rules):
    min_orders: Count = 2
    min_discount_share: Share = Decimal("0.5")


class OpportunisticRule(_Rules):
    min_orders: Count = 2
    min_campaign_share: Share = Decimal("0.75")


class ConvenienceDrivenRule(_Rules):
    min_orders: Count = 6
    max_average_basket_points: Count = 60
    max_categories: Count = 2


class SegmentRules(_Rules):
    """Segments, judged from the member's purchases in the window; see loyalty.programme.segments for the precedence."""

    window_months: Annotated[int, Field(ge=1)] = 12
    review_days: Annotated[int, Field(ge=1)] = 30  # every member's segment is recomputed at least this often
    new_member_days: Annotated[int, Field(ge=0)] = 60
    at_risk_days: Annotated[int, Field(ge=1)] = 120  # no order for this many days: at risk
    lapsed_days: Annotated[int, Field(ge=1)] = 365  # no order for this many days: lapsed
    rfm: RfmScores = RfmScores()
    loyal_ambassador: LoyalAmbassadorRule = LoyalAmbassadorRule()
    price_driven: PriceDrivenRule = PriceDrivenRule()
    opportunistic: OpportunisticRule = OpportunisticRule()
    convenience_driven: ConvenienceDrivenRule = ConvenienceDrivenRule()

    @model_validator(mode="after")
    def _risk_before_lapse(self) -> Self:
        if self.lapsed_days <= self.at_risk_days:
            raise ValueError(f"lapsed_days ({self.lapsed_days}) must be more than at_risk_days ({self.at_risk_days})")
        return self


class Schedules(_Rules):
    expiry_warning_days: Annotated[int, Field(ge=1)] = 30  # members hear of expiring points this many days ahead
    birthday_notice_days: Annotated[int, Field(ge=0)] = 30  # a birthday entered closer to the day pays next year
    catch_up_days: Annotated[int, Field(ge=0)] = 7  # a missed run date is done late, up to this many days back


class OrderLimits(_Rules):
    """Beyond these an order is held for review (loyalty.programme.limits), never applied."""

    max_line_quantity: Annotated[int, Field(ge=1)] = 1_000
    max_order_points: Annotated[int, Field(ge=1)] = 100_000  # at the lowest tier, before offers
    max_order_age_days: Annotated[int, Field(ge=1)] = 3650


class Enrolment(_Rules):
    """``terms_version`` names the programme terms a member accepts by joining (kept with each member, with where
    they joined); change it when the terms change."""

    terms_version: Annotated[str, Field(min_length=1, max_length=40)] = "1"
    leave_notice_days: Annotated[int, Field(ge=0, le=365)] = 30  # a member who leaves may spend their points


class Privacy(_Rules):
    """A member with no order or redemption for ``erase_inactive_after_years`` years (counted from joining if they
    never had one) is erased at their next review: their personal data goes, their amounts stay under their
    member id (pseudonymised). None: never."""

    erase_inactive_after_years: Annotated[int, Field(ge=1, le=50)] | None = None


class Bonuses(_Rules):
    signup: Annotated[int, Field(ge=0)] = 0
    birthday: Annotated[int, Field(ge=0)] = 0
    referral: Annotated[int, Field(ge=0)] = 0
    review: Annotated[int, Field(ge=0)] = 0


class ProgramRules(_Rules):
    timezone: str = "Europe/Stockholm"
    currencies: dict[Annotated[str, Field(pattern=r"^[A-Z]{3}$")], CurrencyRule]
    earning_base: EarningBase = EarningBase()
    categories: list[CategoryRule] = []
    max_total_multiplier: Annotated[ExactDecimal, Field(ge=1)]
    campaigns: list[Campaign] = []
    tiers: list[Tier]
    pending_days: Annotated[int, Field(ge=0)]
    expiry: Expiry
    qualification: Qualification = Qualification()
    bonuses: Bonuses = Bonuses()
    segments: SegmentRules = SegmentRules()
    schedules: Schedules = Schedules()
    order_limits: OrderLimits = OrderLimits()
    privacy: Privacy = Privacy()
    enrolment: Enrolment = Enrolment()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        return known_time_zone(value)

    @field_validator("categories")
    @classmethod
    def _unique_categories(cls, value: list[CategoryRule]) -> list[CategoryRule]:
        _require_unique("categories", "category", [c.category for c in value])
        return value

    @field_validator("campaigns")
    @classmethod
    def _unique_campaigns(cls, value: list[Campaign]) -> list[Campaign]:
        _require_unique("campaigns", "id", [c.id for c in value])
        return value

    @field_validator("tiers")
    @classmethod
    def _ordered_tiers(cls, value: list[Tier]) -> list[Tier]:
        if not value:
            raise ValueError("at least one tier is required")
        if value[0].threshold != 0:
            raise ValueError(f"tiers[0].threshold must be 0, not {value[0].threshold}")
        for i in range(1, len(value)):
            if value[i].threshold <= value[i - 1].threshold:
                raise ValueError(
                    f"tiers[{i}].threshold ({value[i].threshold}) must be greater than "
                    f"tiers[{i - 1}].threshold ({value[i - 1].threshold})"
                )
        _require_unique("tiers", "name", [t.name for t in value])
        return value

    def tier(self, name: str) -> Tier:
        """The tier called `name`; UnknownTierError (a ValueError) if there is none."""
        for tier in self.tiers:
            if tier.name == name:
                return tier
        raise UnknownTierError(f"unknown tier {name!r}; the programme has {[t.name for t in self.tiers]}")

    def rank(self, name: str) -> int:
        """The tier's position, lowest 0."""
        return self.tiers.index(self.tier(name))

    def tier_for(self, qualifying_points: int) -> Tier:
        """The highest tier whose threshold is at most `qualifying_points` (the first tier below 0)."""
        reached = [t for t in self.tiers if t.threshold <= qualifying_points]
        return reached[-1] if reached else self.tiers[0]

    def next_tier(self, tier_name: str) -> Tier | None:
        """The tier above `tier_name`, or None at the top."""
        index = self.tiers.index(self.tier(tier_name))
        return self.tiers[index + 1] if index + 1 < len(self.tiers) else None

    def expiry_date(self, earned_on: date) -> date:
        """Last day of the month `expiry.months` months after the month of `earned_on`."""
        month_index = earned_on.year * 12 + earned_on.month - 1 + self.expiry.months
        year, month = divmod(month_index, 12)
        return date(year, month + 1, calendar.monthrange(year, month + 1)[1])

    def release_date(self, earned_at: date) -> date:
        """The day pending points become spendable: `pending_days` after they were earned."""
        return earned_at + timedelta(days=self.pending_days)

    def local_date(self, moment: datetime) -> date:
        """The calendar date of a timezone-aware `moment` in the programme's time zone."""
        return moment.astimezone(ZoneInfo(self.timezone)).date()


def _require_unique(field: str, key: str, names: list[str]) -> None:
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ValueError(f"{field}[{i}].{key} {name!r} is listed twice")


class _DecimalSafeLoader(yaml.SafeLoader):
    """SafeLoader that reads YAML floats as Decimal from their text, never through float."""


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        return Decimal(text)
    except InvalidOperation:
        raise yaml.constructor.ConstructorError(
            None, None, f"not a decimal number: {text!r}", node.start_mark
        ) from None


_DecimalSafeLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else part)
    return path or "(top level)"


def default_program_file() -> Path:
    """$LOYALTY_PROGRAM_FILE, else infra/program.yaml in a checkout, else /opt/python/program.yaml (the layer)."""
    if from_env := os.environ.get(PROGRAM_FILE_ENV):
        return Path(from_env)
    return REPO_PROGRAM_FILE if REPO_PROGRAM_FILE.is_file() else LAYER_PROGRAM_FILE


def known_time_zone(name: str) -> str:
    """``name`` if it is an IANA time zone, else ValueError (for a validator to report)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


M = TypeVar("M", bound=BaseModel)


def read_rules(file: Path, model: type[M], what: str) -> M:
    """A YAML rules file (decimals read exactly) validated by ``model``; ProgramConfigError names the file and
    every offending field."""
    try:
        raw = yaml.load(file.read_text(encoding="utf-8"), Loader=_DecimalSafeLoader)
    except OSError as exc:
        raise ProgramConfigError(f"{file}: cannot read {what}: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise ProgramConfigError(f"{file}: malformed YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ProgramConfigError(f"{file}: expected a mapping of settings, got {type(raw).__name__}")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(f"{_field_path(e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ProgramConfigError(f"{file}: invalid {what}: {problems}") from exc


def load_program(path: str | Path | None = None) -> ProgramRules:
    """Read and validate the programme rules; ProgramConfigError names the file and the bad fields.

    Nothing is cached here: callers keep the result for as long as they want it.
    """
    return read_rules(Path(path) if path is not None else default_program_file(), ProgramRules, "programme rules")
