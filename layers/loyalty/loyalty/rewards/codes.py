"""A redemption's code made in its shop, from the committed redemption (the table stream sends it here), so a
crash between spending the points and asking the shop loses nothing: the next attempt asks again, and the shop
answers with the code an earlier attempt made. Never points without a code: a code the shop refuses for good
gives the points back with an entry saying why. Never a code without points: a code made for a redemption
cancelled meanwhile is removed again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from loyalty.errors import ShopRefusedError, UnknownRewardError
from loyalty.ledger.service import Ledger
from loyalty.ledger.state import UNUSED, Redemption, RedemptionStatus
from loyalty.observability import logger, metrics
from loyalty.offers.messages import language_for
from loyalty.offers.programme import programme_request
from loyalty.offers.records import OfferQueue
from loyalty.offers.requests import Trigger
from loyalty.offers.rules import OfferRules
from loyalty.ports.shops import CodeRequest, ShopCodes
from loyalty.programme.rewards import RewardCatalogue


@dataclass(frozen=True)
class CodeMaker:
    ledger: Ledger
    catalogue: RewardCatalogue
    shops: ShopCodes
    offer_queue: OfferQueue  # the e-mail with the code goes through the offer sender (a service message)
    offer_rules: OfferRules

    def make(self, member_id: str, redemption_id: str) -> RedemptionStatus:
        """Make the code of a pending redemption in its shop; the redemption's status after. ShopRetryableError
        (the shop cannot now) leaves it pending, to be asked again."""
        redemption = self.ledger.redemption(member_id, redemption_id)
        if redemption.status is RedemptionStatus.ACTIVE:  # made by an earlier attempt: its e-mail asked again
            self._mail(redemption)  # (the sender sends each request once)
            return redemption.status
        if redemption.status is not RedemptionStatus.PENDING or redemption.code is None:
            return redemption.status  # ended, or a reward without a code
        try:
            request = self._request(redemption)
            made = self.shops.create(request)
        except (ShopRefusedError, UnknownRewardError) as refused:
            ended = self.ledger.end_redemption(
                member_id, redemption_id, RedemptionStatus.REFUSED, f"The shop refused the code: {refused}"[:500]
            )
            logger.warning("shop refused a code", shop=redemption.shop, reward=redemption.reward_id)
            metrics.add_metric(name="RewardCodeRefused", unit="Count", value=1)
            return ended.status
        after = self.ledger.activate_redemption(member_id, redemption_id, made.shop_code_id, made.apply_url)
        if after.status is not RedemptionStatus.ACTIVE:  # cancelled while the shop made it: no code without points
            self.shops.remove(redemption.shop, made.shop_code_id)
            logger.info("code removed: its redemption ended meanwhile", status=after.status.value)
            return after.status
        metrics.add_metric(name="RewardCodeMade", unit="Count", value=1)
        self._mail(after)
        return after.status

    def _mail(self, redemption: Redemption) -> None:
        """The member's e-mail with the code, in their language, asked of the offer sender once per redemption."""
        member = self.ledger.member_and_uses(redemption.member_id, ())[0]
        try:
            reward = self.catalogue.reward(redemption.reward_id).name.in_language(language_for(member.locale))
        except UnknownRewardError:
            reward = redemption.reward_id
        now = self.ledger.clock()
        details: dict[str, str | int] = {"reward": reward, "code": redemption.code or ""}
        if redemption.valid_until is not None:
            details["expires_on"] = redemption.valid_until.isoformat()
        request = programme_request(
            self.offer_rules, Trigger.REWARD_REDEEMED, redemption.member_id, redemption.redemption_id,
            self.ledger.rules.local_date(now), now, details,
        )  # fmt: skip
        self.offer_queue.send([request])

    def end_unused(self, member_id: str, redemption_id: str, today: date) -> bool:
        """A code unused at its end: removed from the shop, and its points back if the reward says so (its
        ``return_points_on_expiry``). False if there was nothing to do (used, ended, or not ended yet)."""
        redemption = self.ledger.redemption(member_id, redemption_id)
        unused = redemption.status in UNUSED
        if not unused or redemption.valid_until is None or redemption.valid_until >= today:
            return False
        if redemption.shop_code_id:
            self.shops.remove(redemption.shop, redemption.shop_code_id)  # first: no code left without its points
        try:
            points_back = self.catalogue.reward(redemption.reward_id).return_points_on_expiry
        except UnknownRewardError:
            points_back = True  # a reward no longer offered: the member keeps what they paid
        reason = "Code unused at its end: " + ("the points came back" if points_back else "the points stay spent")
        self.ledger.end_redemption(member_id, redemption_id, RedemptionStatus.EXPIRED, reason, points_back)
        metrics.add_metric(name="RewardCodeExpired", unit="Count", value=1)
        return True

    def _request(self, redemption: Redemption) -> CodeRequest:
        reward = self.catalogue.reward(redemption.reward_id)  # gone from the catalogue: refused, points back
        if redemption.shop not in self.catalogue.shops:
            raise ShopRefusedError(f"{redemption.shop} is no longer one of the programme's shops")
        currency = self.catalogue.shops[redemption.shop].currency
        member = self.ledger.member_and_uses(redemption.member_id, ())[0]
        zone = ZoneInfo(self.ledger.rules.timezone)
        assert redemption.code is not None and redemption.valid_until is not None
        ends = datetime.combine(redemption.valid_until + timedelta(days=1), time(0), zone)  # the last day, whole
        return CodeRequest(
            shop=redemption.shop,
            code=redemption.code,
            title=f"Loyalty reward: {reward.name.en} ({redemption.redemption_id})",
            kind=reward.kind.value,
            starts_at=redemption.created_at,
            ends_at=ends,
            currency=currency,
            customer_email=member.email,
            amount=reward.amount.get(currency) if reward.amount else None,
            percent=reward.percent,
            product=reward.product.get(redemption.shop) if reward.product else None,
            min_subtotal=reward.min_subtotal.get(currency) if reward.min_subtotal else None,
        )
