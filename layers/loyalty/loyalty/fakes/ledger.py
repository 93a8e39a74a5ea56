"""The ledger's store in memory: the same loads and the same all-or-nothing commits as the DynamoDB store."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime

from loyalty.errors import UnknownMemberError
from loyalty.fakes.directory import catalogue_categories
from loyalty.fakes.memory import Memory
from loyalty.ledger.model import Entry, HistoryPage
from loyalty.ledger.state import (
    Commit,
    EmailMove,
    LedgerChange,
    MemberAndOrder,
    MemberChange,
    MemberState,
    OfferGrant,
    OrderState,
    Redemption,
    RedemptionState,
    RewardUses,
    as_enrolled,
    changed,
)

_PERSONAL = ("email", "first_name", "last_name", "phone", "birthdate", "email_parked", "email_parked_reason")


def _email(address: str) -> str:
    return address.strip().lower()


def _time_key(entry: Entry) -> tuple[datetime, str]:
    return entry.created_at.astimezone(UTC), entry.source_key


class InMemoryLedgerStore:
    def __init__(self, memory: Memory | None = None) -> None:
        self.memory = memory or Memory()

    # ---------------------------------------------------------------- reads

    def member(self, member_id: str) -> MemberState | None:
        return self.memory.members.get(member_id)

    def members(self, member_ids: Iterable[str]) -> dict[str, MemberState]:
        with self.memory.atomically():
            return {m: self.memory.members[m] for m in set(member_ids) if m in self.memory.members}

    def member_and_order(
        self, member_id: str, order_key: str, shop: str, product_ids: Iterable[str] = (), codes: Iterable[str] = ()
    ) -> MemberAndOrder:
        memory = self.memory
        with memory.atomically():
            found = {code.upper(): self._codes().get((shop, code.upper())) for code in codes}
            return MemberAndOrder(
                memory.members.get(member_id),
                memory.orders.get(order_key),
                memory.reviews.get(member_id),
                catalogue_categories(memory, shop, product_ids),
                {code: owner for code, owner in found.items() if owner is not None},
            )

    def order(self, order_key: str) -> OrderState | None:
        return self.memory.orders.get(order_key)

    def member_and_entry(self, member_id: str, source_key: str) -> tuple[MemberState | None, Entry | None]:
        with self.memory.atomically():
            return self.memory.members.get(member_id), self.entry(member_id, source_key)

    def entry(self, member_id: str, source_key: str) -> Entry | None:
        return self.memory.entries.get(member_id, {}).get(source_key)

    def open_lots(self, member_id: str, consumed: int) -> Iterator[Entry]:
        with self.memory.atomically():
            lots = [e for e in self.memory.entries.get(member_id, {}).values() if (e.lot_end or 0) > consumed]
        return iter(sorted(lots, key=lambda entry: entry.lot_end or 0))

    def history(self, member_id: str, limit: int, cursor: str | None) -> HistoryPage:
        newest_first = sorted(self.entries(member_id), key=_time_key, reverse=True)
        if cursor is not None:
            at, _, source_key = base64.urlsafe_b64decode(cursor).decode().partition("|")
            after = (datetime.fromisoformat(at), source_key)
            newest_first = [entry for entry in newest_first if _time_key(entry) < after]
        page = newest_first[:limit]
        last = _time_key(page[-1]) if len(page) == limit else None  # a full page may have more after it, as in DynamoDB
        next_cursor = base64.urlsafe_b64encode(f"{last[0].isoformat()}|{last[1]}".encode()).decode() if last else None
        return HistoryPage(entries=tuple(page), cursor=next_cursor)

    def entries(self, member_id: str, since: datetime | None = None) -> list[Entry]:
        with self.memory.atomically():
            found = list(self.memory.entries.get(member_id, {}).values())
        return sorted((e for e in found if since is None or e.created_at >= since), key=_time_key)

    def member_for_email(self, email: str) -> str | None:
        return self.memory.emails.get(_email(email))

    # ---------------------------------------------------------------- writes

    def _redemptions(self) -> dict[tuple[str, str], Redemption]:
        return self.memory.items("redemptions")  # (member id, redemption id) -> redemption

    def _codes(self) -> dict[tuple[str, str], tuple[str, str]]:
        return self.memory.items("redemption codes")  # (shop, code) -> (member id, redemption id)

    def _uses(self) -> dict[tuple[str, str], RewardUses]:
        return self.memory.items("reward uses")  # (member id, reward id) -> uses

    def redemption_state(self, member_id: str, redemption_id: str, reward_id: str) -> RedemptionState:
        with self.memory.atomically():
            return RedemptionState(
                self.memory.members.get(member_id),
                self._redemptions().get((member_id, redemption_id)),
                self._uses().get((member_id, reward_id), RewardUses(reward_id)),
            )

    def member_and_uses(self, member_id: str, reward_ids: Iterable[str]) -> tuple[MemberState | None, list[RewardUses]]:
        with self.memory.atomically():
            uses = [self._uses()[(member_id, r)] for r in sorted(set(reward_ids)) if (member_id, r) in self._uses()]
            return self.memory.members.get(member_id), uses

    def redemptions(self, member_id: str) -> list[Redemption]:
        with self.memory.atomically():
            mine = [r for (member, _), r in self._redemptions().items() if member == member_id]
        return sorted(mine, key=lambda r: (r.created_at, r.redemption_id), reverse=True)

    def mark_redemption_task(self, member_id: str, redemption_id: str, state: str) -> None:
        with self.memory.atomically():
            found = self._redemptions().get((member_id, redemption_id))
            if found is not None:
                self._redemptions()[(member_id, redemption_id)] = replace(found, task_state=state)

    def commit(self, change: LedgerChange) -> Commit:
        memory = self.memory
        with memory.atomically():
            entry = change.entry
            if entry is not None and entry.source_key in memory.entries.get(entry.member_id, {}):
                return Commit.ALREADY_APPLIED
            if change.order is not None:
                stored = memory.orders.get(change.order.state.order_key)
                if (stored.version if stored is not None else 0) != change.order.state.version - 1:
                    return Commit.CONFLICT
            member = memory.members.get(change.member.member_id) if change.member is not None else None
            if change.member is not None and (member is None or not _matches(member, change.member)):
                return Commit.CONFLICT
            if change.review_on is not None:
                assert change.member is not None, "a review is brought forward with a change to its member"
                planned = memory.reviews.get(change.member.member_id)
                if planned is not None and planned <= change.review_on:
                    return Commit.CONFLICT
            write = change.redemption
            if write is not None:
                redemption = write.redemption
                found = self._redemptions().get((redemption.member_id, redemption.redemption_id))
                if (found.status if found is not None else None) != write.previous:
                    return Commit.CONFLICT
                new_code = redemption.code.upper() if write.previous is None and redemption.code else None
                if new_code is not None and (redemption.shop, new_code) in self._codes():
                    return Commit.CONFLICT
                if write.uses is not None:
                    was = self._uses().get((redemption.member_id, write.uses.reward_id))
                    if (was.version if was is not None else 0) != write.uses.version - 1:
                        return Commit.CONFLICT
            if entry is not None:
                memory.entries.setdefault(entry.member_id, {})[entry.source_key] = entry
            if change.order is not None:
                memory.orders[change.order.state.order_key] = change.order.state
            if change.member is not None and member is not None:
                memory.members[member.member_id] = changed(member, change.member)
            if change.review_on is not None and member is not None:
                memory.reviews[member.member_id] = change.review_on
            if write is not None:
                redemption = write.redemption
                self._redemptions()[(redemption.member_id, redemption.redemption_id)] = redemption
                if write.previous is None and redemption.code is not None:
                    owner = (redemption.member_id, redemption.redemption_id)
                    self._codes()[(redemption.shop, redemption.code.upper())] = owner
                if write.uses is not None:
                    self._uses()[(write.redemption.member_id, write.uses.reward_id)] = write.uses
        return Commit.APPLIED

    def enrol(self, member: MemberState, first_review: date) -> Commit:
        memory = self.memory
        with memory.atomically():
            if member.member_id in memory.members:
                return Commit.ALREADY_APPLIED
            if member.email and _email(member.email) in memory.emails:
                return Commit.CONFLICT
            memory.members[member.member_id] = as_enrolled(member)
            memory.reviews[member.member_id] = first_review
            if member.email:
                memory.emails[_email(member.email)] = member.member_id
        return Commit.APPLIED

    def change_email(self, member_id: str, read: str | None, new: str, at: datetime) -> EmailMove:
        memory = self.memory
        with memory.atomically():
            member = memory.members.get(member_id)
            if member is None or member.email != read or member.erased_at is not None:
                return EmailMove.OLDER
            if member.profile_updated_at is not None and member.profile_updated_at > at:
                return EmailMove.OLDER
            holder = memory.emails.get(_email(new))
            if holder is not None and holder != member_id:
                return EmailMove.TAKEN
            if read:
                memory.emails.pop(_email(read), None)
            memory.emails[_email(new)] = member_id
            memory.members[member_id] = replace(
                member, email=new, profile_updated_at=at, email_parked=None, email_parked_reason=None
            )
        return EmailMove.CHANGED

    def set_block(self, member_id: str, reason: str | None, actor: str, at: datetime) -> bool:
        with self.memory.atomically():
            member = self.memory.members.get(member_id)
            if member is None:
                return False
            self.memory.members[member_id] = replace(
                member, blocked_reason=reason, blocked_at=at, blocked_by=actor,
                qualifying_version=member.qualifying_version + 1,
            )  # fmt: skip
        return True

    def set_leaving(self, member_id: str, on: date) -> bool:
        with self.memory.atomically():
            member = self.memory.members.get(member_id)
            if member is None:
                return False
            self.memory.members[member_id] = replace(
                member, leaving_on=member.leaving_on or on, qualifying_version=member.qualifying_version + 1
            )
        return True

    def park_email(self, member_id: str, email: str | None, reason: str | None) -> None:
        with self.memory.atomically():
            member = self.memory.members.get(member_id)
            if member is None:
                raise UnknownMemberError(member_id)
            self.memory.members[member_id] = replace(
                member, email_parked=email, email_parked_reason=reason if email else None
            )

    def erase_personal_data(self, member_id: str, at: datetime) -> bool:
        memory = self.memory
        with memory.atomically():
            member = memory.members.get(member_id)
            if member is None:
                return False
            if member.email:
                memory.emails.pop(_email(member.email), None)
            memory.birthdays.pop(member_id, None)
            erased = replace(member, **dict.fromkeys(_PERSONAL))  # type: ignore[arg-type]
            memory.members[member_id] = replace(erased, erased_at=member.erased_at or at)
        return True

    def grant_offer(self, member_id: str, key: str, grant: OfferGrant, drop: Sequence[str]) -> None:
        with self.memory.atomically():
            member = self.memory.members.get(member_id)
            if member is None:
                raise UnknownMemberError(member_id)
            offers = {k: v for k, v in member.offers.items() if k not in drop}
            offers[key] = grant
            self.memory.members[member_id] = replace(member, offers=offers)


def _matches(member: MemberState, change: MemberChange) -> bool:
    expect = change.expect
    return (
        (expect.qualifying_version is None or member.qualifying_version == expect.qualifying_version)
        and (expect.released is None or member.released == expect.released)
        and (expect.consumed is None or member.consumed == expect.consumed)
        and (expect.available_at_least is None or member.available >= expect.available_at_least)
    )
