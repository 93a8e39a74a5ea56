"""Requests to send a member an offer: from the CRM (a Flow callout) or from the programme itself.

They travel on the offer queue to the offer sender as JSON. `request_id` is the idempotency key of the
request; what is sent is deduplicated per member, offer and validity (`dedup_key`), so the programme may
ask twice (a job rerun, a redelivery) and the member still hears once.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from loyalty.ledger.state import OfferGrant

Channel = Literal["email", "sms"]


class Trigger(StrEnum):
    CRM = "crm"  # marketing automation in the CRM asked (offer.requested)
    TIER_UPGRADE = "tier_upgrade"
    TIER_NUDGE = "tier_nudge"  # close to the next tier
    EXPIRY_WARNING = "expiry_warning"  # points about to expire (a service message)
    BIRTHDAY = "birthday"
    WIN_BACK = "win_back"  # the member is at risk of leaving
    CATEGORY_AFFINITY = "category_affinity"  # a complementary category they have not bought recently
    REWARD_REDEEMED = "reward_redeemed"  # the code of a reward the member spent points on (a service message)
    REDEEM_LINK = "redeem_link"  # a one-time link to spend points from the member's page (a service message)
    DATA_EXPORT = "data_export"  # the link to the member's data, asked for on their page (a service message)


SERVICE_TRIGGERS = frozenset(
    {Trigger.EXPIRY_WARNING, Trigger.REWARD_REDEEMED, Trigger.REDEEM_LINK, Trigger.DATA_EXPORT}
)  # counted apart from marketing in the frequency cap
ASKED_BY_MEMBER = frozenset(
    {Trigger.REWARD_REDEEMED, Trigger.REDEEM_LINK, Trigger.DATA_EXPORT}
)  # what they just asked for: never capped


class OfferKind(StrEnum):
    POINTS_MULTIPLIER = "points_multiplier"
    BONUS_POINTS = "bonus_points"
    VOUCHER = "voucher"
    FREE_SHIPPING = "free_shipping"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Offer(_Frozen):
    code: Annotated[str, Field(min_length=1, max_length=80)]
    kind: OfferKind
    multiplier: Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?$")] | None = None  # exact decimal as text
    bonus_points: Annotated[int, Field(gt=0)] | None = None
    valid_from: date
    valid_until: date


class CrmConsent(_Frozen):
    """Consent as the CRM saw it when it asked (evidence; the programme's latest opt-outs still win)."""

    email: bool | None = None
    sms: bool | None = None


class ContactSnapshot(_Frozen):
    """What the CRM sent about the person, used where the programme knows nothing better."""

    contact_id: str | None = None
    first_name: str | None = None
    email: str | None = None
    mobile_phone: str | None = None
    locale: str | None = None


class OfferRequest(_Frozen):
    request_id: Annotated[str, Field(min_length=1)]
    member_id: Annotated[str, Field(min_length=1)]
    trigger: Trigger
    template_key: Annotated[str, Field(pattern=r"^[a-z0-9_]+$")]
    requested_at: AwareDatetime
    offer: Offer | None = None  # none for a pure notice (an expiry warning)
    channels: tuple[Channel, ...] = ()  # empty: every channel the member agreed to
    details: dict[str, str | int] = {}  # what the template shows: points, expires_on, tier, category ...
    crm_consent: CrmConsent | None = None
    contact: ContactSnapshot | None = None
    requested_by: str | None = None  # the CRM user or flow, for the record
    released: bool = False  # an SMS held through quiet hours, sent again now that they are over
    occasion: date | None = None  # the day the message is for (a birthday), in the programme's time zone

    @property
    def service(self) -> bool:
        return self.trigger in SERVICE_TRIGGERS

    @property
    def capped(self) -> bool:
        return self.trigger not in ASKED_BY_MEMBER

    @property
    def dedup_key(self) -> str:
        """One message per member, offer and validity for the CRM's offers; the programme's say in their request id
        how often they may come. Birthdays are one a year, whether the CRM's Flow or the birthday job asks first."""
        if self.template_key == "birthday":
            day = self.occasion or (self.offer.valid_from if self.offer else self.requested_at.date())
            return f"birthday#{day.year}"
        if self.trigger is not Trigger.CRM:
            return self.request_id  # the programme's request ids say how often (see loyalty.offers.programme)
        if self.offer is not None:
            return f"{self.offer.code}#{self.offer.valid_from}#{self.offer.valid_until}"
        return self.request_id


def earning_grant(offer: Offer) -> OfferGrant | None:
    """What an offer changes in what the member earns (a multiplier, or bonus points once); None for an offer that
    changes nothing there (a voucher, free shipping)."""
    if offer.kind not in (OfferKind.POINTS_MULTIPLIER, OfferKind.BONUS_POINTS):
        return None
    return OfferGrant(
        code=offer.code,
        valid_from=offer.valid_from,
        valid_until=offer.valid_until,
        multiplier=Decimal(offer.multiplier) if offer.multiplier else None,
        bonus_points=offer.bonus_points,
    )
