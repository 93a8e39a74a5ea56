"""What the member API answers about rewards: what a member can have now, redeeming one, their redemptions and
cancelling an unused one.

A redemption's id comes from the member and the request's Idempotency-Key, so the same key again finds the
redemption it made (the same answer, nothing written twice); the same key with another request is refused.
The code's text is made here, before the write, and given to the shop later from the committed redemption.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from loyalty.errors import InvalidAmountError, MalformedPayloadError, UnknownRewardError
from loyalty.ledger.decisions import RedemptionRequest
from loyalty.ledger.service import Ledger
from loyalty.ledger.state import Redemption, RedemptionStatus, RewardUses
from loyalty.observability import metrics
from loyalty.ports.shops import ShopCodes
from loyalty.programme.rewards import CODE_PREFIX, Reward, RewardCatalogue, limit_reached, tier_too_low
from loyalty.programme.tiers import tier_in_force

LANGUAGES = ("sv", "nb", "da", "fi", "en")
KEY_MAX_LENGTH = 255
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O or 1/I to misread


def new_code() -> str:
    """A code that is hard to guess: 8 characters of 32 (40 bits), grouped for reading aloud."""
    text = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
    return f"{CODE_PREFIX}{text[:4]}-{text[4:]}"


def redemption_id_for(member_id: str, key: str) -> str:
    """The redemption a member's Idempotency-Key makes (a key is the member's own: another member's same key is
    another redemption)."""
    return "rdm_" + hashlib.sha256(f"{member_id}\n{key}".encode()).hexdigest()[:24]


def request_hash(reward_id: str, shop: str) -> str:
    return hashlib.sha256(json.dumps({"rewardId": reward_id, "shop": shop}, sort_keys=True).encode()).hexdigest()


def _language(asked: str | None, locale: str | None) -> str:
    for candidate in (asked, locale):
        if candidate and (language := candidate.replace("-", "_").split("_")[0].lower()) in LANGUAGES:
            return "nb" if language == "no" else language
    return "en"


def _decimals(values: Mapping[Any, Any] | None) -> dict[str, str] | None:
    return {key: str(value) for key, value in values.items()} if values is not None else None


def redemption_view(redemption: Redemption) -> dict[str, Any]:
    return {
        "redemptionId": redemption.redemption_id,
        "rewardId": redemption.reward_id,
        "kind": redemption.kind,
        "shop": redemption.shop or None,
        "code": redemption.code,
        "applyUrl": redemption.apply_url,
        "pointsSpent": redemption.points,
        "validUntil": redemption.valid_until.isoformat() if redemption.valid_until else None,
        "status": redemption.status.value,
        "reason": redemption.reason,
        "orderKey": redemption.order_key,
        "createdAt": redemption.created_at.isoformat(),
        "updatedAt": redemption.updated_at.isoformat(),
    }


@dataclass(frozen=True)
class MemberRewards:
    ledger: Ledger
    catalogue: RewardCatalogue
    shops: ShopCodes | None = None  # for cancelling a code the shop has

    def offer(self, member_id: str, language: str | None = None) -> dict[str, Any]:
        """Every reward with whether the member can have it now, and if not, the rule in the way and the points
        still needed (``GET /members/{id}/rewards``)."""
        member, found = self.ledger.member_and_uses(member_id, self.catalogue.ids)
        uses = {u.reward_id: u for u in found}
        rules = self.ledger.rules
        today = rules.local_date(self.ledger.clock())
        tier = tier_in_force(rules, member.tier, member.tier_override, today)
        shown = _language(language, member.locale)
        rewards = []
        for reward in self.catalogue.rewards:
            used = uses.get(reward.id, RewardUses(reward.id))
            refused = (
                "min_tier"
                if tier_too_low(rules, reward, tier)
                else limit_reached(reward, used.months, used.lifetime, today)
                or ("points" if member.available < reward.cost else None)
            )
            rewards.append(self._reward_view(reward, shown, member.available, refused))
        return {
            "memberId": member_id,
            "language": shown,
            "available": member.available,
            "tier": tier,
            "pointValue": _decimals(self.catalogue.point_value),
            "rewards": rewards,
        }

    def _reward_view(self, reward: Reward, language: str, available: int, refused: str | None) -> dict[str, Any]:
        return {
            "rewardId": reward.id,
            "kind": reward.kind.value,
            "name": reward.name.in_language(language),
            "description": reward.description.in_language(language),
            "cost": reward.cost,
            "canRedeem": refused is None,
            "refusedBy": refused,
            "pointsNeeded": max(0, reward.cost - available),
            "amount": _decimals(reward.amount),
            "percent": str(reward.percent) if reward.percent is not None else None,
            "cause": reward.cause,
            "minTier": reward.min_tier,
            "minSubtotal": _decimals(reward.min_subtotal),
            "validDays": reward.valid_days if reward.has_code else None,
            "perMonth": reward.per_month,
            "lifetime": reward.lifetime,
            "shops": list(reward.shops) if reward.shops is not None else list(self.catalogue.shops),
        }

    def redeem(
        self, member_id: str, body: Any, key: str | None, actor: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Redeem the reward the body names (``{"rewardId": ..., "shop": ...}``) under the member's Idempotency-Key;
        the answer and whether the redemption was made now (False: the same request made it before)."""
        key = (key or "").strip()
        if not key:
            raise InvalidAmountError("the Idempotency-Key header is required: one new key for each redemption")
        if len(key) > KEY_MAX_LENGTH or not key.isprintable():
            raise InvalidAmountError(f"the Idempotency-Key must be printable and at most {KEY_MAX_LENGTH} characters")
        if not isinstance(body, dict):
            raise MalformedPayloadError('the body must be a JSON object: {"rewardId": ..., "shop": ...}')
        reward_id, shop_name = body.get("rewardId"), body.get("shop")
        if not isinstance(reward_id, str) or not reward_id:
            raise MalformedPayloadError("rewardId is required: the id of a reward (GET /members/{id}/rewards)")
        if shop_name is not None and not isinstance(shop_name, str):
            raise MalformedPayloadError("shop must be the name of a shop")
        reward = self.catalogue.reward(reward_id)
        shop = self.catalogue.shop(shop_name) if shop_name else None
        if shop_name and shop is None:
            raise UnknownRewardError(f"no shop {shop_name!r}; the programme has {', '.join(self.catalogue.shops)}")
        if shop is None:
            if reward.has_code:
                raise MalformedPayloadError(f"shop is required: the shop the {reward.kind.value} code is for")
            shop = ""
        request = RedemptionRequest(
            reward=reward,
            shop=shop,
            redemption_id=redemption_id_for(member_id, key),
            request_hash=request_hash(reward.id, shop),
            code=new_code() if reward.has_code else None,
            actor=actor,
        )
        redemption, made = self.ledger.redeem_reward(member_id, self.catalogue, request)
        if made:
            metrics.add_metric(name="RewardRedeemed", unit="Count", value=1)
        return redemption_view(redemption), made

    def redemptions(self, member_id: str) -> dict[str, Any]:
        found = self.ledger.redemptions(member_id)
        if not found:
            self.ledger.member_and_uses(member_id, ())  # an unknown member is a 404, not an empty list
        return {"memberId": member_id, "redemptions": [redemption_view(r) for r in found]}

    def cancel(self, member_id: str, redemption_id: str) -> dict[str, Any]:
        """An unused redemption cancelled and its points given back; cancelling it again changes nothing. A code
        the shop has is removed from the shop first (one still being made is removed by its maker)."""
        found = self.ledger.redemption(member_id, redemption_id)
        if found.status is RedemptionStatus.ACTIVE and found.shop_code_id:
            if self.shops is None:
                raise RuntimeError("cancelling an active code needs the shops' codes")
            self.shops.remove(found.shop, found.shop_code_id)
        redemption = self.ledger.end_redemption(
            member_id, redemption_id, RedemptionStatus.CANCELLED, "Cancelled unused: the points came back"
        )
        return redemption_view(redemption)
