"""Offer rules from infra/offers.yaml: frequency caps, quiet hours, time zones, the programme's own offers and
category affinity. Loaded and validated like the programme rules (a wrong value names the file and field)."""

from __future__ import annotations

import hashlib
import os
from datetime import date, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from loyalty.offers.requests import SERVICE_TRIGGERS, Channel, Offer, OfferKind, OfferRequest, Trigger
from loyalty.programme.rules import known_time_zone, read_rules
from loyalty.programme.tiers import month_key

OFFER_RULES_ENV = "LOYALTY_OFFER_RULES_FILE"
REPO_FILE = Path(__file__).resolve().parents[4] / "infra" / "offers.yaml"
LAYER_FILE = Path("/opt/python/offers.yaml")  # layers/loyalty/offers.yaml links infra/offers.yaml

Count = Annotated[int, Field(ge=1)]


class _Rules(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Cap(_Rules):
    messages: Count
    days: Count


class Caps(_Rules):
    marketing: Cap
    service: Cap


class QuietHours(_Rules):
    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end  # across midnight


class TierNudge(_Rules):
    within_points: Count


class OfferTemplate(_Rules):
    """An offer the programme makes by itself; its dates are set when it is sent."""

    code: Annotated[str, Field(min_length=1, max_length=40)]
    kind: OfferKind
    multiplier: Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?$")] | None = None
    bonus_points: Annotated[int, Field(gt=0)] | None = None
    valid_days: Count

    @field_validator("multiplier", mode="before")
    @classmethod
    def _as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int | Decimal) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _complete(self) -> OfferTemplate:
        if self.kind is OfferKind.POINTS_MULTIPLIER and self.multiplier is None:
            raise ValueError("a points_multiplier offer needs a multiplier")
        if self.kind is OfferKind.BONUS_POINTS and self.bonus_points is None:
            raise ValueError("a bonus_points offer needs bonus_points")
        return self

    def on(self, day: date, code_suffix: str = "") -> Offer:
        return Offer(
            code=self.code + code_suffix,
            kind=self.kind,
            multiplier=self.multiplier,
            bonus_points=self.bonus_points,
            valid_from=day,
            valid_until=day + timedelta(days=self.valid_days - 1),
        )


class ProgrammeOffer(_Rules):
    channels: Annotated[tuple[Channel, ...], Field(min_length=1)]
    offer: OfferTemplate | None = None


class CategoryAffinity(_Rules):
    bought_within_days: Count
    not_bought_for_days: Count
    complements: dict[str, Annotated[list[str], Field(min_length=1)]]

    @field_validator("complements")
    @classmethod
    def _folded(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {k.strip().casefold(): [c.strip().casefold() for c in v] for k, v in value.items()}


ProgrammeTrigger = Literal[
    "tier_upgrade",
    "tier_nudge",
    "expiry_warning",
    "birthday",
    "win_back",
    "category_affinity",
    "reward_redeemed",
    "redeem_link",
    "data_export",
]


class Holdout(_Rules):
    """A share of the members each programme marketing offer is for gets nothing, recorded as held out, so the
    offer's effect can be measured against them. Chosen by a stable hash of member, trigger and period: the same
    members are held out of an offer for a whole period, and drawn again the next."""

    share: Annotated[Decimal, Field(ge=0, le=Decimal("0.5"))] = Decimal(0)
    period: Literal["month", "quarter"] = "quarter"
    triggers: tuple[ProgrammeTrigger, ...] = ()
    conversion_days: Annotated[int, Field(ge=1, le=90)] = 14  # an order this many days after the offer converts

    @field_validator("triggers")
    @classmethod
    def _marketing_only(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        service = sorted(t for t in value if Trigger(t) in SERVICE_TRIGGERS or Trigger(t) is Trigger.TIER_UPGRADE)
        if service:
            raise ValueError(f"a service message is never held out: {', '.join(service)}")
        return value

    def holds_out(self, request: OfferRequest, day: date) -> bool:
        """Whether the member is in the offer's holdout for the period of ``day`` (the programme's day of the
        request)."""
        if request.trigger.value not in self.triggers or self.share <= 0:
            return False
        period = month_key(day) if self.period == "month" else f"{day.year}-Q{(day.month + 2) // 3}"
        digest = hashlib.sha256(f"{request.trigger.value}#{period}#{request.member_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") < self.share * 2**64


class OfferRules(_Rules):
    caps: Caps
    quiet_hours: QuietHours
    time_zones: dict[str, str] = {}
    tier_nudge: TierNudge
    programme: dict[ProgrammeTrigger, ProgrammeOffer]
    category_affinity: CategoryAffinity
    holdout: Holdout = Holdout()

    @field_validator("time_zones")
    @classmethod
    def _known(cls, value: dict[str, str]) -> dict[str, str]:
        return {language: known_time_zone(zone) for language, zone in value.items()}

    @field_validator("programme")
    @classmethod
    def _all_triggers(cls, value: dict[str, ProgrammeOffer]) -> dict[str, ProgrammeOffer]:
        missing = sorted({t.value for t in Trigger if t is not Trigger.CRM} - set(value))
        if missing:
            raise ValueError(f"missing programme offers: {', '.join(missing)}")
        return value

    def for_trigger(self, trigger: Trigger) -> ProgrammeOffer:
        return self.programme[trigger.value]  # type: ignore[index]


def default_offer_rules_file() -> Path:
    if from_env := os.environ.get(OFFER_RULES_ENV):
        return Path(from_env)
    return REPO_FILE if REPO_FILE.is_file() else LAYER_FILE


def load_offer_rules(path: str | Path | None = None) -> OfferRules:
    """Read and validate the offer rules; ProgramConfigError names the file and the bad fields."""
    return read_rules(Path(path) if path is not None else default_offer_rules_file(), OfferRules, "offer rules")
