"""The points ledger: each operation loads state through the store, lets loyalty.ledger.decisions decide the one
change to make, and commits it; "already applied" returns the original entry, a lost race decides again.

Every write is atomic and idempotent: the entry's key derives from the source event and is written only if new,
in the same commit as the counters, which change by deltas under the conditions the decision relied on.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from loyalty.clock import now as clock_now
from loyalty.errors import (
    ConcurrentUpdateError,
    IdempotencyKeyReusedError,
    InsufficientPointsError,
    InvalidAmountError,
    RedemptionRefusedError,
    UnknownMemberError,
    UnknownOrderError,
    UnknownRewardError,
)
from loyalty.ledger import decisions
from loyalty.ledger.decisions import BONUS_KINDS, Decision, Original, RedemptionRequest, order_key_of, require_positive
from loyalty.ledger.model import (
    Accrual,
    Entry,
    EntryKind,
    HistoryPage,
    LedgerResult,
    Lot,
    MemberSummary,
    ParkedRefund,
)
from loyalty.ledger.replay import check_invariants
from loyalty.ledger.state import (
    UNUSED,
    Commit,
    EmailMove,
    LedgerChange,
    MemberState,
    OfferGrant,
    PreparedAccrual,
    Redemption,
    RedemptionStatus,
    RedemptionWrite,
    RewardUses,
    changed,
)
from loyalty.ledger.store import LedgerStore
from loyalty.programme.orders import Order, with_catalogue_categories
from loyalty.programme.rewards import RewardCatalogue, is_programme_code
from loyalty.programme.rules import ProgramRules
from loyalty.programme.tiers import TierOverride

MAX_ATTEMPTS = 40


class _Again(Exception):
    """What was read changed before the write: read and decide again."""


EMAIL_TRIES = 3


class Ledger:
    """The points ledger of one programme, on a store."""

    def __init__(
        self,
        store: LedgerStore,
        rules: ProgramRules,
        clock: Callable[[], datetime] = clock_now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.rules = rules
        self.clock = clock
        self.sleep = sleep

    # ---------------------------------------------------------------- members

    def enrol(self, member_id: str, email: str | None = None, via: str | None = None, **profile: Any) -> str:
        """Enrol a member and return their id: an existing member's when the e-mail is already enrolled.

        ``via`` is where they join (a shop, "crm", "import"), kept with the terms version in force. ``profile``
        takes first_name, last_name, phone, locale, email_consent, sms_consent. The member and their e-mail's
        guard are stored together, so two shops enrolling the same person at once end with one member."""

        def attempt() -> str:
            found = self.store.member_for_email(email) if email else None
            if found is not None:
                return found
            now = self.clock()
            member = MemberState(
                member_id=member_id,
                enrolled_at=now,
                email=email.strip().lower() if email else None,
                last_activity=now,
                profile_updated_at=now,
                email_consent_at=now if profile.get("email_consent") is not None else None,
                sms_consent_at=now if profile.get("sms_consent") is not None else None,
                joined_via=via,
                terms_version=self.rules.enrolment.terms_version,
                **profile,
            )
            first_review = self.rules.local_date(now) + timedelta(days=1)
            if self.store.enrol(member, first_review) is Commit.CONFLICT:
                raise _Again  # the e-mail was enrolled meanwhile: find its member
            return member_id

        return self._retrying(attempt)

    def member_for_email(self, email: str) -> str | None:
        return self.store.member_for_email(email)

    def member(self, member_id: str) -> MemberState:
        """The member as stored: profile, consent, counters (their data export shows it all)."""
        return self._known(self.store.member(member_id), member_id)

    def change_email(self, member_id: str, new: str, at: datetime) -> EmailMove:
        """The member's new e-mail (their shop customer's or their Contact's changed), as of ``at``: the member and
        the e-mail's guard move to it together, so each address stays one member's. One another member holds is
        parked on the member with the reason (never merged silently); a change older than the member's latest
        profile change, or for an erased member, changes nothing."""
        new = new.strip()
        for _ in range(EMAIL_TRIES):
            member = self._known(self.store.member(member_id), member_id)
            if member.erased_at is not None or member.email == new:
                return EmailMove.UNCHANGED
            if member.profile_updated_at is not None and member.profile_updated_at > at:
                return EmailMove.OLDER
            moved = self.store.change_email(member_id, member.email, new, at)
            if moved is EmailMove.TAKEN:
                holder = self.store.member_for_email(new)
                self.store.park_email(member_id, new, f"the address is member {holder}'s")
            if moved is not EmailMove.OLDER:
                return moved
        return EmailMove.OLDER  # read again each time: another change kept coming first

    def erase_personal_data(self, member_id: str) -> None:
        """GDPR erasure: the member's personal data goes, the amounts stay (entries hold none)."""
        if not self.store.erase_personal_data(member_id, self.clock()):
            raise UnknownMemberError(member_id)

    # ---------------------------------------------------------------- orders

    def accrue(self, member_id: str, order: Order) -> LedgerResult:
        """Earn pending points for a paid order, then apply any refund that arrived before it."""
        result, _ = self._accrue(self.prepare_accrual(member_id, order, catalogue=False), None)
        return result

    def prepare_accrual(self, member_id: str, order: Order, *, catalogue: bool = True) -> PreparedAccrual:
        """Read what the order's accrual needs, in one go: the member, the order, the member's next review and,
        with ``catalogue``, the categories of the order's products, which then replace the lines' own (a product
        the catalogue does not know keeps its line's, and is named in ``unknown_products``)."""
        product_ids = {line.product_id for line in order.lines if line.product_id} if catalogue else set()
        codes = {code.strip() for code in order.discount_codes if is_programme_code(code)}
        state = self.store.member_and_order(
            member_id, order_key_of(order.shop, order.order_id), order.shop, product_ids, codes
        )
        if catalogue:
            order = with_catalogue_categories(order, state.categories)
        return PreparedAccrual(member_id, order, state, tuple(sorted(product_ids - set(state.categories))))

    def accrue_prepared(self, prepared: PreparedAccrual, review_on: date | None = None) -> Accrual:
        """``accrue`` deciding first on the state read ahead (read again only if it changed before the write); with
        ``review_on``, the member's next review is brought forward to that day in the same write, unless one is
        due by then. Returns the member's summary after it too (``summary`` with ``expiry=False``), computed from
        the state read and the change written: a duplicate or a refund that came first reads it again."""
        result, member = self._accrue(prepared, review_on)
        if member is None:
            return Accrual(result=result, summary=self.summary(prepared.member_id, expiry=False))
        today = self.rules.local_date(self.clock())
        return Accrual(result=result, summary=decisions.summary(self.rules, member, iter(()), today))

    def _accrue(self, prepared: PreparedAccrual, review_on: date | None) -> tuple[LedgerResult, MemberState | None]:
        """The accrual, then the refunds parked on its order; and the member as the accrual left them (as read for
        an order accrued before), None when that is not known without reading again."""
        order, member_id = prepared.order, prepared.member_id
        key = order_key_of(order.shop, order.order_id)
        read_ahead = [prepared.state]
        parked: dict[str, Mapping[str, int]] = {}

        def attempt() -> tuple[LedgerResult, MemberState | None]:
            state = read_ahead.pop() if read_ahead else self.store.member_and_order(member_id, key, order.shop)
            parked.clear()
            parked.update(state.order.parked if state.order is not None else {})
            member = self._known(state.member, member_id)
            decision = decisions.accrual(self.rules, member, state.order, order, self.clock())
            if isinstance(decision, Original):
                return self._original(decision.member_id, decision.source_key), member
            assert isinstance(decision, LedgerChange) and decision.member is not None
            after = changed(member, decision.member)
            if review_on is not None and (state.review_on is None or state.review_on > review_on):
                decision = replace(decision, review_on=review_on)
            result = self._once(decision)
            assert result is not None
            return result, None if result.duplicate else after

        result, member = self._retrying(attempt)
        for refund_id, lines in parked.items():  # the commit proved these are all that were parked
            self.reverse(order.shop, order.order_id, refund_id, dict(lines) or None)
        return result, None if parked else member

    def reverse(
        self,
        shop: str,
        order_id: str,
        refund_id: str,
        lines: Mapping[str, int] | None = None,
        review_on: date | None = None,
    ) -> LedgerResult | ParkedRefund:
        """Reverse what an order earned for a refund: ``lines`` maps line id to refunded quantity (None: all).

        A refund for an order not yet in the ledger is parked on the order and applied when it is earned. With
        ``review_on``, the member's next review is brought forward to that day in the reversal's write, unless one
        is due by then."""
        if lines is not None:
            for line_id, quantity in lines.items():
                if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity <= 0:
                    raise InvalidAmountError(f"refund quantity for line {line_id} must be a positive integer")
        key = order_key_of(shop, order_id)

        def attempt() -> LedgerResult | ParkedRefund:
            order = self.store.order(key)
            if order is None or order.member_id is None:
                change = decisions.parked_refund(order, key, refund_id, lines)
                if change is None:
                    return ParkedRefund(order_key=key, refund_id=refund_id, duplicate=True)
                if self.store.commit(change) is not Commit.APPLIED:
                    raise _Again  # the order arrived or another refund was parked meanwhile
                return ParkedRefund(order_key=key, refund_id=refund_id)
            member_id = order.member_id
            if review_on is None:
                member, review = self.store.member(member_id), None
            else:  # the member with their next review (and the order again, as fresh), in one read
                state = self.store.member_and_order(member_id, key, shop)
                member, order, review = state.member, state.order or order, state.review_on
            known = self._known(member, member_id)
            decision = decisions.reversal(self.rules, known, order, refund_id, lines, self.clock())
            if isinstance(decision, LedgerChange) and review_on is not None and (review is None or review > review_on):
                decision = replace(decision, review_on=review_on)
            result = self._once(decision)
            assert result is not None
            return result

        return self._retrying(attempt)

    def release(self, shop: str, order_id: str, member_id: str | None = None) -> LedgerResult | None:
        """Make an order's pending points available (a new lot). None if nothing was pending. With the order's
        member (the due index names them), the member and the order are read together."""
        key = order_key_of(shop, order_id)

        def decide() -> Decision:
            order = member = None
            if member_id:
                read = self.store.member_and_order(member_id, key, shop)
                if read.order is not None and read.order.member_id == member_id:
                    order, member = read.order, read.member
            if order is None:
                order = self.store.order(key)
                if order is None or order.member_id is None:
                    raise UnknownOrderError(f"order {key} is not in the ledger")
                member = self.store.member(order.member_id)
            assert order.member_id is not None
            return decisions.release(self.rules, self._known(member, order.member_id), order, self.clock())

        return self._write(decide)

    # ---------------------------------------------------------------- points outside orders

    def block(self, member_id: str, reason: str | None, actor: str) -> None:
        """Block the member while they are under review (``reason``, shown on the orders they place meanwhile) or
        lift the block (None): a blocked member's orders are recorded earning nothing, and they cannot redeem nor
        get a bonus. Who did it and when stay on the member."""
        if not self.store.set_block(member_id, reason.strip() if reason else None, actor, self.clock()):
            raise UnknownMemberError(member_id)

    def leave(self, member_id: str) -> date:
        """The member leaves the programme: from now on their orders earn nothing; they may spend their points for
        ``enrolment.leave_notice_days`` days, then what is left is forfeited and their personal data erased (the
        review job does both that day). Asked again, the first notice stands. Returns the day they leave."""
        on = self.rules.local_date(self.clock()) + timedelta(days=self.rules.enrolment.leave_notice_days)
        if not self.store.set_leaving(member_id, on):
            raise UnknownMemberError(member_id)
        leaving = self._known(self.store.member(member_id), member_id).leaving_on
        assert leaving is not None
        return leaving

    def forfeit(self, member_id: str, on: date) -> LedgerResult | None:
        """The points a member who left still has available, forfeited (an adjustment by the programme, once per
        day); None if they have none."""
        member = self._known(self.store.member(member_id), member_id)
        if member.available <= 0:
            return None
        reason = f"Forfeited on leaving the programme ({on})"
        return self._consume(
            member_id, member.available, f"adjustment#leave#{on}", EntryKind.ADJUSTMENT, reason, "programme"
        )

    def redeem(self, member_id: str, points: int, redemption_id: str, reason: str) -> LedgerResult:
        """Spend available points, oldest first. Beyond the balance: InsufficientPointsError, nothing written; for
        a blocked member RedemptionRefusedError (rule ``blocked``)."""
        require_positive(points)
        blocked = self._known(self.store.member(member_id), member_id).blocked_reason
        if blocked is not None:
            raise RedemptionRefusedError("blocked", f"the membership is blocked: {blocked}")
        return self._consume(member_id, points, f"redemption#{redemption_id}", EntryKind.REDEMPTION, reason)

    def adjust(self, member_id: str, points: int, actor: str, reason: str, adjustment_id: str) -> LedgerResult:
        """Goodwill credit (positive) or deduction (negative, never below zero) by a named actor."""
        if not isinstance(points, int) or isinstance(points, bool) or points == 0:
            raise InvalidAmountError("an adjustment must be a non-zero integer number of points")
        if not actor or not reason:
            raise InvalidAmountError("an adjustment needs the actor who made it and a reason")
        source_key = f"adjustment#{adjustment_id}"
        text = f"Goodwill by {actor}: {reason}"
        if points < 0:
            return self._consume(member_id, -points, source_key, EntryKind.ADJUSTMENT, text, actor)
        return self._credit(member_id, points, source_key, EntryKind.ADJUSTMENT, text, actor)

    def bonus(self, member_id: str, kind: str, source_id: str, points: int | None = None) -> LedgerResult:
        """Bonus for an action (signup, birthday, referral, review); by default the programme's amount."""
        if kind not in BONUS_KINDS:
            raise InvalidAmountError(f"unknown bonus kind {kind!r}; expected one of {', '.join(BONUS_KINDS)}")
        amount = int(getattr(self.rules.bonuses, kind)) if points is None else points
        require_positive(amount)
        return self._credit(member_id, amount, f"bonus#{kind}#{source_id}", EntryKind.BONUS, f"{kind} bonus")

    def expire(self, member_id: str, lot_source_key: str) -> LedgerResult | None:
        """Expire what is left of a due lot (an explicit entry). None if nothing was left to expire."""

        def decide() -> Decision:
            member, lot = self.store.member_and_entry(member_id, lot_source_key)
            known = self._known(member, member_id)
            if lot is None:
                raise UnknownOrderError(f"member {member_id} has no lot {lot_source_key}")
            return decisions.expiry(self.rules, known, lot, self.clock())

        return self._write(decide)

    def expire_lot(self, lot: Entry) -> LedgerResult | None:
        """Expire a due lot as the due index gave it (lots are immutable, so only the member is read)."""

        def decide() -> Decision:
            member = self._known(self.store.member(lot.member_id), lot.member_id)
            return decisions.expiry(self.rules, member, lot, self.clock())

        return self._write(decide)

    def _consume(
        self, member_id: str, points: int, source_key: str, kind: EntryKind, reason: str, actor: str | None = None
    ) -> LedgerResult:
        def on_conflict() -> None:
            member = self._known(self.store.member(member_id), member_id)
            if member.available < points:
                raise InsufficientPointsError(
                    f"member {member_id} has {member.available} points available; {points} asked"
                )

        change = decisions.consumption(member_id, points, source_key, kind, reason, self.clock(), actor)
        result = self._write(lambda: change, on_conflict)
        assert result is not None
        return result

    def _credit(
        self, member_id: str, points: int, source_key: str, kind: EntryKind, reason: str, actor: str | None = None
    ) -> LedgerResult:
        def decide() -> Decision:
            member = self._known(self.store.member(member_id), member_id)
            return decisions.credit(self.rules, member, points, source_key, kind, reason, self.clock(), actor)

        result = self._write(decide)
        assert result is not None
        return result

    # ---------------------------------------------------------------- rewards

    def redeem_reward(
        self, member_id: str, catalogue: RewardCatalogue, request: RedemptionRequest
    ) -> tuple[Redemption, bool]:
        """Spend points on a reward: one read, one write. Returns the redemption and whether it was made now
        (False: the same request made it before). IdempotencyKeyReusedError if another request made one under
        the same id; RedemptionRefusedError if the rules refuse it (nothing written)."""

        def attempt() -> tuple[Redemption, bool]:
            state = self.store.redemption_state(member_id, request.redemption_id, request.reward.id)
            if state.redemption is not None:
                if state.redemption.request_hash != request.request_hash:
                    raise IdempotencyKeyReusedError(
                        "this Idempotency-Key was used for another request; use a new key for a new redemption"
                    )
                return state.redemption, False
            member = self._known(state.member, member_id)
            change = decisions.reward_redemption(self.rules, catalogue, member, state.uses, request, self.clock())
            if self.store.commit(change) is Commit.APPLIED:
                assert change.redemption is not None
                return change.redemption.redemption, True
            raise _Again  # changed meanwhile, or made by the same request at the same time: read again

        result: tuple[Redemption, bool] = self._retrying(attempt)
        return result

    def end_redemption(
        self, member_id: str, redemption_id: str, status: RedemptionStatus, reason: str, points_back: bool = True
    ) -> Redemption:
        """An unused redemption cancelled, refused or expired: its points come back (a new lot) unless
        ``points_back`` is False. Ending it again with the same status changes nothing; RedemptionRefusedError if it
        was used or ended otherwise."""
        found = self.redemption(member_id, redemption_id)

        def attempt() -> Redemption:
            state = self.store.redemption_state(member_id, redemption_id, found.reward_id)
            redemption = state.redemption
            assert redemption is not None
            if redemption.status is status:
                return redemption
            member = self._known(state.member, member_id)
            change = decisions.redemption_return(
                self.rules, member, redemption, state.uses, status, reason, self.clock(), points_back
            )
            if self.store.commit(change) is Commit.APPLIED:
                assert change.redemption is not None
                return change.redemption.redemption
            raise _Again

        result: Redemption = self._retrying(attempt)
        return result

    def activate_redemption(
        self, member_id: str, redemption_id: str, shop_code_id: str, apply_url: str | None
    ) -> Redemption:
        """The shop has the code: a pending redemption becomes active. A redemption no longer pending is returned
        as it is (the caller removes a code made for one cancelled meanwhile)."""

        def attempt() -> Redemption:
            redemption = self.redemption(member_id, redemption_id)
            if redemption.status is not RedemptionStatus.PENDING:
                return redemption
            active = replace(
                redemption,
                status=RedemptionStatus.ACTIVE,
                shop_code_id=shop_code_id,
                apply_url=apply_url,
                updated_at=self.clock(),
            )
            change = LedgerChange(redemption=RedemptionWrite(active, RedemptionStatus.PENDING))
            if self.store.commit(change) is Commit.APPLIED:
                return active
            raise _Again

        result: Redemption = self._retrying(attempt)
        return result

    def use_redemption(self, member_id: str, redemption_id: str, order_key: str) -> Redemption:
        """An order used the redemption's code: it is used, with the order. Used already, or ended (a late order
        after a cancel or the code's end), it is returned as it is."""

        def attempt() -> Redemption:
            redemption = self.redemption(member_id, redemption_id)
            if redemption.status not in UNUSED:
                return redemption
            used = replace(redemption, status=RedemptionStatus.USED, order_key=order_key, updated_at=self.clock())
            if self.store.commit(LedgerChange(redemption=RedemptionWrite(used, redemption.status))) is Commit.APPLIED:
                return used
            raise _Again

        result: Redemption = self._retrying(attempt)
        return result

    def redemption(self, member_id: str, redemption_id: str) -> Redemption:
        state = self.store.redemption_state(member_id, redemption_id, "")
        if state.redemption is None:
            self._known(state.member, member_id)
            raise UnknownRewardError(f"member {member_id} has no redemption {redemption_id}")
        return state.redemption

    def redemptions(self, member_id: str) -> list[Redemption]:
        """The member's redemptions, newest first."""
        return self.store.redemptions(member_id)

    def mark_redemption_task(self, member_id: str, redemption_id: str, state: str) -> None:
        self.store.mark_redemption_task(member_id, redemption_id, state)

    def member_and_uses(self, member_id: str, reward_ids: Iterable[str]) -> tuple[MemberState, list[RewardUses]]:
        member, uses = self.store.member_and_uses(member_id, reward_ids)
        return self._known(member, member_id), uses

    # ---------------------------------------------------------------- tiers over time

    def assess_tier(self, member_id: str) -> list[LedgerResult]:
        """Decide every qualification period of the member that has ended (kept or lost), oldest first.

        Each decision is an entry keyed by the period's end, so a rerun decides nothing twice."""
        results: list[LedgerResult] = []

        def decide() -> Decision:
            member = self._known(self.store.member(member_id), member_id)
            return decisions.tier_assessment(self.rules, member, self.clock())

        while (result := self._write(decide, duplicate_means_conflict=True)) is not None:
            results.append(result)
        return results

    def override_tier(
        self, member_id: str, tier: str, valid_until: date, reason: str, actor: str, override_id: str
    ) -> LedgerResult:
        """A tier set by a named actor until ``valid_until`` (inclusive), shown instead of the earned tier."""
        chosen = self.rules.tier(tier)
        if not actor or not reason:
            raise InvalidAmountError("a tier override needs the actor who set it and a reason")
        override = TierOverride(tier=chosen.name, valid_until=valid_until, reason=reason, actor=actor)

        def decide() -> Decision:
            member = self._known(self.store.member(member_id), member_id)
            return decisions.tier_override(self.rules, member, override, override_id, self.clock())

        result = self._write(decide)
        assert result is not None
        return result

    # ---------------------------------------------------------------- offers

    def grant_offer(self, member_id: str, grant: OfferGrant) -> None:
        """Give the member an offer that changes what orders placed within its validity earn (a multiplier, or
        bonus points once). Idempotent per code and validity; grants that ended long ago are dropped."""
        self._grant(self._known(self.store.member(member_id), member_id), grant)

    def _grant(self, member: MemberState, grant: OfferGrant) -> None:
        key = decisions.grant_key(grant)
        if key not in member.offers:
            ended = decisions.grants_ended(member, self.rules.local_date(self.clock()))
            self.store.grant_offer(member.member_id, key, grant, ended)

    def offer_summary(self, member_id: str, grant: OfferGrant | None, read: MemberState | None = None) -> MemberSummary:
        """What an offer's message shows of the member (``summary`` without the next expiry), after granting the
        offer's ``grant`` if the member does not have it yet: one read of the member for both, or none when the
        caller read them just now (``read``, with other items of the member's)."""
        member = read or self._known(self.store.member(member_id), member_id)
        if grant is not None:
            self._grant(member, grant)
        return decisions.summary(self.rules, member, iter(()), self.rules.local_date(self.clock()))

    # ---------------------------------------------------------------- queries

    def summary(self, member_id: str, *, expiry: bool = True) -> MemberSummary:
        """The member's points, tier, segment and profile; with ``expiry=False`` the lots are not read, and the
        next expiry reads as none (for callers that do not show it: one read instead of two)."""
        member = self._known(self.store.member(member_id), member_id)
        lots = self._lots(member) if expiry else iter(())
        return decisions.summary(self.rules, member, lots, self.rules.local_date(self.clock()))

    def summaries(self, member_ids: Iterable[str], *, expiry: bool = True) -> dict[str, MemberSummary]:
        """``summary`` of each member there is (an unknown id is left out), the members read together."""
        today = self.rules.local_date(self.clock())
        return {
            member_id: decisions.summary(self.rules, member, self._lots(member) if expiry else iter(()), today)
            for member_id, member in sorted(self.store.members(set(member_ids)).items())
        }

    def open_lots(self, member_id: str) -> list[Lot]:
        return list(self._lots(self._known(self.store.member(member_id), member_id)))

    def _lots(self, member: MemberState) -> Iterator[Lot]:
        return (
            decisions.lot_of(entry, member.consumed)
            for entry in self.store.open_lots(member.member_id, member.consumed)
        )

    def history(self, member_id: str, limit: int = 20, cursor: str | None = None) -> HistoryPage:
        """Entries newest first, ``limit`` a page; each says why it was written."""
        if not 1 <= limit <= 100:
            raise InvalidAmountError("history page size must be between 1 and 100")
        return self.store.history(member_id, limit, cursor)

    def entries_since(self, member_id: str, since: datetime) -> list[Entry]:
        """The member's entries written at or after ``since``, oldest first."""
        return self.store.entries(member_id, since)

    def entries(self, member_id: str) -> list[Entry]:
        """Every entry of a member, oldest first (for audits and invariant checks)."""
        return self.store.entries(member_id)

    def check_invariants(self, member_id: str) -> list[str]:
        """The ledger invariants for one member; returns what is violated (empty when all hold)."""
        member = self._known(self.store.member(member_id), member_id)
        return check_invariants(self.rules, member, self.store.entries(member_id))

    # ---------------------------------------------------------------- commit and retry, in one place

    def _write(
        self,
        decide: Callable[[], Decision],
        on_conflict: Callable[[], None] | None = None,
        duplicate_means_conflict: bool = False,
    ) -> LedgerResult | None:
        """Decide and commit until the change applies; a change applied before returns its original entry."""
        return self._retrying(lambda: self._once(decide(), on_conflict, duplicate_means_conflict))

    def _once(
        self, decision: Decision, on_conflict: Callable[[], None] | None = None, duplicate_means_conflict: bool = False
    ) -> LedgerResult | None:
        if decision is None:
            return None
        if isinstance(decision, Original):
            return self._original(decision.member_id, decision.source_key)
        outcome = self.store.commit(decision)
        if outcome is Commit.APPLIED:
            assert decision.entry is not None
            return LedgerResult(entry=decision.entry)
        if outcome is Commit.ALREADY_APPLIED and not duplicate_means_conflict:
            assert decision.entry is not None
            return self._original(decision.entry.member_id, decision.entry.source_key)
        if on_conflict is not None:
            on_conflict()
        raise _Again

    def _original(self, member_id: str, source_key: str) -> LedgerResult:
        entry = self.store.entry(member_id, source_key)
        if entry is None:
            raise _Again  # the commit that wrote it is not visible yet
        return LedgerResult(entry=entry, duplicate=True)

    def _retrying(self, attempt: Callable[[], Any]) -> Any:
        for number in range(MAX_ATTEMPTS):
            try:
                return attempt()
            except _Again:
                self.sleep(random.uniform(0, min(0.2, 0.005 * 2**number)))
        raise ConcurrentUpdateError("the member kept changing; the operation was not applied, retry it")

    @staticmethod
    def _known(member: MemberState | None, member_id: str) -> MemberState:
        if member is None:
            raise UnknownMemberError(member_id)
        return member
