"""The ledger's store: loads members, orders and entries, and commits one change atomically.

Implemented by loyalty.adapters.dynamodb.ledger (one TransactWriteItems per change) and by
loyalty.fakes.ledger (in memory); tests/contract/test_ledger_store.py holds both to the same behaviour.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Protocol

from loyalty.ledger.model import Entry, HistoryPage
from loyalty.ledger.state import (
    Commit,
    EmailMove,
    LedgerChange,
    MemberAndOrder,
    MemberState,
    OfferGrant,
    OrderState,
    Redemption,
    RedemptionState,
    RewardUses,
)


class LedgerStore(Protocol):
    def member(self, member_id: str) -> MemberState | None: ...

    def members(self, member_ids: Iterable[str]) -> dict[str, MemberState]:
        """Those of the members that exist, read together."""
        ...

    def member_and_order(
        self, member_id: str, order_key: str, shop: str, product_ids: Iterable[str] = (), codes: Iterable[str] = ()
    ) -> MemberAndOrder:
        """The member, the order, the member's next review, the categories of the catalogue's products among
        ``product_ids`` (of ``shop``) and the redemptions of ``codes`` (redemption codes of ``shop``), in one
        read."""
        ...

    def order(self, order_key: str) -> OrderState | None: ...

    def member_and_entry(self, member_id: str, source_key: str) -> tuple[MemberState | None, Entry | None]:
        """Both in one read."""
        ...

    def entry(self, member_id: str, source_key: str) -> Entry | None: ...

    def redemption_state(self, member_id: str, redemption_id: str, reward_id: str) -> RedemptionState:
        """The member, the redemption and the member's uses of the reward, in one read."""
        ...

    def member_and_uses(self, member_id: str, reward_ids: Iterable[str]) -> tuple[MemberState | None, list[RewardUses]]:
        """The member and their uses of each reward (those they have used), in one read."""
        ...

    def redemptions(self, member_id: str) -> list[Redemption]:
        """The member's redemptions, newest first."""
        ...

    def mark_redemption_task(self, member_id: str, redemption_id: str, state: str) -> None:
        """Note what became of a redemption's CRM Task (an experience to arrange): pushed, no_contact or refused."""
        ...

    def commit(self, change: LedgerChange) -> Commit:
        """All of the change or nothing. ALREADY_APPLIED: an entry with the change's entry key exists (that wins
        over any other failed condition); CONFLICT: the member is missing or no longer matches the change's
        expectations, the order is not at the version before the change's, (with ``review_on``) the member's
        next review is due by ``review_on`` already, or the redemption or the reward's uses are not as the
        change expects."""
        ...

    def open_lots(self, member_id: str, consumed: int) -> Iterator[Entry]:
        """The member's lot entries that end after ``consumed``, in stream order, read as they are iterated."""
        ...

    def history(self, member_id: str, limit: int, cursor: str | None) -> HistoryPage:
        """Entries newest first, ``limit`` a page, resuming after ``cursor``."""
        ...

    def entries(self, member_id: str, since: datetime | None = None) -> list[Entry]:
        """The member's entries (written at or after ``since``, if given), oldest first."""
        ...

    def enrol(self, member: MemberState, first_review: date) -> Commit:
        """Store a new member, their e-mail's guard (one member per address) and their first review, together.
        ALREADY_APPLIED: the member exists; CONFLICT: another member holds the e-mail (nothing written)."""
        ...

    def member_for_email(self, email: str) -> str | None: ...

    def change_email(self, member_id: str, read: str | None, new: str, at: datetime) -> EmailMove:
        """Give the member ``new`` as their e-mail and move the e-mail's guard to it, atomically, as of ``at``:
        TAKEN if another member holds it, OLDER (nothing written) if the member's e-mail is no longer ``read`` or
        a later profile change was applied. A change of case only keeps the guard."""
        ...

    def set_block(self, member_id: str, reason: str | None, actor: str, at: datetime) -> bool:
        """Block the member (``reason``) or lift the block (None), noting who and when; an accrual or redemption
        read before it fails its write and reads again. False if no member."""
        ...

    def set_leaving(self, member_id: str, on: date) -> bool:
        """Note the day the member leaves the programme (a first notice stands: a repeat keeps it); like a block,
        a decision read before it is made again. False if no member."""
        ...

    def park_email(self, member_id: str, email: str | None, reason: str | None) -> None:
        """Keep (or, with None, drop) a new e-mail the member could not be given, and why."""
        ...

    def erase_personal_data(self, member_id: str, at: datetime) -> bool:
        """Remove the member's e-mail, names, phone and birthday (and the e-mail's guard), noting when (``at``,
        kept after a repeat); False if no member."""
        ...

    def grant_offer(self, member_id: str, key: str, grant: OfferGrant, drop: Sequence[str]) -> None:
        """Keep ``grant`` under ``key`` on the member, dropping the grants named in ``drop``."""
        ...
