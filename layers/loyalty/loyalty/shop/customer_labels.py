"""The member's tier and segment on their customer in each shop, so that the shop's own rules (free shipping for
Gold, a collection for ambassadors) can use them.

From the table's stream: the changes of a batch are coalesced per member (the batch's last image is pushed, once
per shop customer, at the member's first record in the batch, so that a failed push is retried from a record
before the change), and pushed only if the tier in force, the segment or the member's shop customers changed,
or the item still carries a CRM user's override that has ended (nothing rewrites the item when it runs out).
What is pushed is the whole truth (the tier, the segment, and the other tiers' tags removed), so a push again
after a failure, or out of order, leaves the customer right."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from loyalty.errors import ShopRefusedError
from loyalty.observability import logger, metrics
from loyalty.ports.shops import CustomerLabels, MemberImages, MemberTags, ShopCustomers
from loyalty.programme.rules import ProgramRules
from loyalty.programme.tiers import tier_in_force


@dataclass(frozen=True)
class CustomerLabeller:
    shops: ShopCustomers
    rules: ProgramRules
    clock: Callable[[], datetime]
    programme_shops: frozenset[str]  # the shops the programme has API access to (the rewards catalogue's)

    def plan(self, changes: Sequence[MemberImages]) -> dict[str, MemberTags]:
        """The sequence number of each member's first change in the batch, with the member as the batch's last
        change left them, for the members whose tier in force, segment or shop customers changed in the batch."""
        today = self.rules.local_date(self.clock())
        first: dict[str, MemberImages] = {}
        last: dict[str, MemberTags] = {}
        for change in changes:
            first.setdefault(change.after.member_id, change)
            last[change.after.member_id] = change.after
        return {
            change.key: last[member_id]
            for member_id, change in first.items()
            if self._differs(change.before, last[member_id], today)
        }

    def push(self, member: MemberTags) -> int:
        """The member's labels on each of their customers in the programme's shops; how many were written (the
        caller counts them for the batch: one metric value per member would be flushed every hundred). A shop
        that cannot answer now raises ShopRetryableError (the stream tries again); one that refuses (the customer
        gone, say) is logged and left."""
        tier, segment = self._labels(member, self.rules.local_date(self.clock()))
        others = tuple(t.name for t in self.rules.tiers if t.name != tier)
        written = 0
        for shop, customer_id in sorted(member.customers):
            if shop not in self.programme_shops:
                continue
            try:
                self.shops.label(CustomerLabels(shop, customer_id, tier, segment, others))
            except ShopRefusedError as refused:
                logger.warning("shop refused the customer's loyalty fields", shop=shop, reason=str(refused)[:200])
                metrics.add_metric(name="ShopCustomerLabelRefused", unit="Count", value=1)
                continue
            written += 1
        return written

    def _labels(self, member: MemberTags, today: date) -> tuple[str, str | None]:
        return tier_in_force(self.rules, member.tier, member.override, today), member.segment

    def _differs(self, before: MemberTags | None, after: MemberTags, today: date) -> bool:
        if not after.customers:
            return False
        if before is None or (after.override is not None and not after.override.active_on(today)):
            return True  # new, or an override that ran out: the shop may still show its tier
        return self._labels(before, today) != self._labels(after, today) or before.customers != after.customers
