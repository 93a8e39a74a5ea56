"""The rewards catalogue (infra/rewards.yaml): what points buy, in which shops, and what a point is worth.

Loaded and validated like the programme rules: a wrong value names the file and the field. Which rules a
member meets for a reward (tier, limits, shop) is decided here too, so the API and the ledger agree.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from loyalty.errors import ProgramConfigError, UnknownRewardError
from loyalty.programme.money import ExactDecimal
from loyalty.programme.rules import ProgramRules, read_rules

REWARDS_FILE_ENV = "LOYALTY_REWARDS_FILE"
REPO_REWARDS_FILE = Path(__file__).resolve().parents[4] / "infra" / "rewards.yaml"
LAYER_REWARDS_FILE = Path("/opt/python/rewards.yaml")  # layers/loyalty/rewards.yaml links infra/rewards.yaml

CODE_PREFIX = "LOY-"  # every code the programme makes starts so (WooCommerce keeps codes in lower case)
Currency = Literal["SEK", "NOK", "DKK", "EUR"]
PLATFORMS = ("shopify", "woocommerce")
RewardId = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=40)]
Text = Annotated[str, Field(min_length=1, max_length=500)]
Count = Annotated[int, Field(ge=1)]
PositiveDecimal = Annotated[ExactDecimal, Field(gt=0)]


class _Rules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Texts(_Rules):
    """One text in each of the programme's languages."""

    sv: Text
    nb: Text
    da: Text
    fi: Text
    en: Text

    def in_language(self, language: str) -> str:
        return str(getattr(self, language, self.en))


class RewardKind(StrEnum):
    AMOUNT_OFF = "amount_off"
    PERCENT_OFF = "percent_off"
    FREE_SHIPPING = "free_shipping"
    FREE_PRODUCT = "free_product"
    DONATION = "donation"  # no code: the entry is the receipt
    EXPERIENCE = "experience"  # no code: a person fulfils it (a Task in the CRM)


CODE_KINDS = (RewardKind.AMOUNT_OFF, RewardKind.PERCENT_OFF, RewardKind.FREE_SHIPPING, RewardKind.FREE_PRODUCT)
_KIND_FIELDS: dict[RewardKind, tuple[str, ...]] = {  # what each kind needs; the others are refused
    RewardKind.AMOUNT_OFF: ("amount",),
    RewardKind.PERCENT_OFF: ("percent",),
    RewardKind.FREE_SHIPPING: (),
    RewardKind.FREE_PRODUCT: ("product",),
    RewardKind.DONATION: ("cause",),
    RewardKind.EXPERIENCE: (),
}
_ALL_KIND_FIELDS = ("amount", "percent", "product", "cause")


class ShopRule(_Rules):
    currency: Currency


class Reward(_Rules):
    id: RewardId
    kind: RewardKind
    cost: Annotated[int, Field(ge=1, le=1_000_000)]
    name: Texts
    description: Texts
    amount: dict[Currency, PositiveDecimal] | None = None
    percent: Annotated[ExactDecimal, Field(gt=0, le=100)] | None = None
    product: dict[str, Annotated[str, Field(min_length=1, max_length=100)]] | None = None
    cause: Text | None = None
    min_tier: str | None = None
    min_subtotal: dict[Currency, PositiveDecimal] | None = None
    valid_days: Count = 30
    per_month: Count | None = None
    lifetime: Count | None = None
    shops: tuple[str, ...] | None = None  # None: every shop of the catalogue
    return_points_on_expiry: bool = True

    @model_validator(mode="after")
    def _fields_of_kind(self) -> Reward:
        needed = _KIND_FIELDS[self.kind]
        for name in _ALL_KIND_FIELDS:
            if name in needed and getattr(self, name) is None:
                raise ValueError(f"a {self.kind.value} reward needs `{name}`")
            if name not in needed and getattr(self, name) is not None:
                raise ValueError(f"`{name}` is not used by a {self.kind.value} reward")
        return self

    @property
    def has_code(self) -> bool:
        return self.kind in CODE_KINDS


class RewardCatalogue(_Rules):
    point_value: dict[Currency, PositiveDecimal]
    reporting_currency: Currency | None = None  # the liability's currency; None: the first shop's
    shops: dict[str, ShopRule]
    rewards: tuple[Reward, ...]

    @model_validator(mode="after")
    def _consistent(self) -> RewardCatalogue:
        for shop in self.shops:
            platform, _, name = shop.partition(":")
            if platform not in PLATFORMS or not name:
                raise ValueError(f"shop {shop!r} must be named shopify:<domain> or woocommerce:<host>")
        for currency in {rule.currency for rule in self.shops.values()} - set(self.point_value):
            raise ValueError(f"point_value has no {currency}, the currency of a shop")
        if self.reporting_currency is not None and self.reporting_currency not in self.point_value:
            raise ValueError(f"point_value has no {self.reporting_currency}, the reporting_currency")
        seen: set[str] = set()
        for index, reward in enumerate(self.rewards):
            where = f"rewards[{index}] ({reward.id})"
            if reward.id in seen:
                raise ValueError(f"{where}: the id is used twice")
            seen.add(reward.id)
            shops = reward.shops if reward.shops is not None else tuple(self.shops)
            for shop in shops:
                if shop not in self.shops:
                    raise ValueError(f"{where}: shop {shop!r} is not in `shops`")
                currency = self.shops[shop].currency
                if reward.amount is not None and currency not in reward.amount:
                    raise ValueError(f"{where}: amount has no {currency}, the currency of {shop}")
                if reward.product is not None and shop not in reward.product:
                    raise ValueError(f"{where}: product has none for {shop}")
        return self

    def reward(self, reward_id: str) -> Reward:
        for reward in self.rewards:
            if reward.id == reward_id:
                return reward
        raise UnknownRewardError(f"no reward {reward_id!r}; the catalogue has {', '.join(self.ids)}")

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(reward.id for reward in self.rewards)

    def shop(self, name: str) -> str | None:
        """The catalogue's name of a shop given as the ledger names it or without its platform; None if unknown."""
        if name in self.shops:
            return name
        found = [shop for shop in self.shops if shop.partition(":")[2] == name.strip().lower().rstrip("/")]
        return found[0] if len(found) == 1 else None

    def applies_to(self, reward: Reward, shop: str) -> bool:
        return shop in self.shops and (reward.shops is None or shop in reward.shops)

    @property
    def reporting(self) -> str:
        """The currency the points liability is stated in."""
        if self.reporting_currency is not None:
            return self.reporting_currency
        return next((rule.currency for rule in self.shops.values()), min(self.point_value))

    def point_value_in(self, currency: str) -> Decimal:
        """What one point is worth in ``currency`` (KeyError if the catalogue has no value for it)."""
        values: dict[str, Decimal] = {str(name): value for name, value in self.point_value.items()}
        return values[currency]

    def money(self, points: int) -> dict[str, Decimal]:
        """What ``points`` are worth in each currency."""
        return {currency: points * value for currency, value in sorted(self.point_value.items())}


# ---------------------------------------------------------------- the rules a member must meet


def is_programme_code(code: str) -> bool:
    return code.strip().upper().startswith(CODE_PREFIX)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def limit_reached(reward: Reward, uses: Mapping[str, int], lifetime: int, today: date) -> str | None:
    """The limit a new redemption of ``reward`` would break (``per_month`` or ``lifetime``), given the member's
    uses of it by month and in all; None if none."""
    if reward.lifetime is not None and lifetime >= reward.lifetime:
        return "lifetime"
    if reward.per_month is not None and uses.get(month_of(today), 0) >= reward.per_month:
        return "per_month"
    return None


def tier_too_low(rules: ProgramRules, reward: Reward, tier: str) -> bool:
    if reward.min_tier is None:
        return False
    names = [t.name for t in rules.tiers]
    return names.index(tier) < names.index(reward.min_tier)


def default_rewards_file() -> Path:
    """$LOYALTY_REWARDS_FILE, else infra/rewards.yaml in a checkout, else /opt/python/rewards.yaml (the layer)."""
    if from_env := os.environ.get(REWARDS_FILE_ENV):
        return Path(from_env)
    return REPO_REWARDS_FILE if REPO_REWARDS_FILE.is_file() else LAYER_REWARDS_FILE


def load_rewards(rules: ProgramRules, path: str | Path | None = None) -> RewardCatalogue:
    """Read and validate the catalogue; ProgramConfigError names the file and the bad fields (a minimum tier the
    programme does not have included)."""
    file = Path(path) if path is not None else default_rewards_file()
    catalogue = read_rules(file, RewardCatalogue, "rewards catalogue")
    tiers = [tier.name for tier in rules.tiers]
    for index, reward in enumerate(catalogue.rewards):
        if reward.min_tier is not None and reward.min_tier not in tiers:
            raise ProgramConfigError(
                f"{file}: invalid rewards catalogue: rewards[{index}].min_tier: unknown tier {reward.min_tier!r}; "
                f"the programme has {', '.join(tiers)}"
            )
    return catalogue
