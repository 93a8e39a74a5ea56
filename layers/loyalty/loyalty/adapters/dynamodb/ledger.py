"""The ledger's store on DynamoDB: items in, states out, and one TransactWriteItems per change.

The entry is put with ``attribute_not_exists`` (a failed condition there means "already applied"); the order is
put whole under a condition on its version; the member is updated with ``ADD`` for counters and ``SET`` for the
rest, under the conditions the change names. Nothing here decides points: loyalty.ledger.decisions does.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError, UpdateError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.transactions import TransactWrite

from loyalty.adapters.dynamodb.ledger_items import (
    entry_item,
    entry_of,
    grant_value,
    history_key,
    member_item,
    member_state,
    order_item,
    order_state,
    override_value,
    redemption_item,
    redemption_of,
    uses_item,
    uses_of,
)
from loyalty.adapters.dynamodb.models import (
    BIRTHDAY_SK,
    CODE_SK,
    EMAIL_SK,
    ENTRY_PREFIX,
    MEMBER_SK,
    ORDER_SK,
    PRODUCT_SK,
    REDEMPTION_PREFIX,
    REVIEW_SK,
    REWARD_USES_PREFIX,
    BirthdayItem,
    EmailItem,
    EntryItem,
    LoyaltyItem,
    MemberItem,
    OrderItem,
    ProductItem,
    RedemptionCodeItem,
    RedemptionItem,
    ReviewItem,
    RewardUsesItem,
    can_exist,
    code_pk,
    condition_failed,
    email_pk,
    member_pk,
    normalise_email,
    order_pk,
    product_id_of,
    product_pk,
    review_brought_forward,
    review_due,
    table_connection,
)
from loyalty.errors import ConcurrentUpdateError, UnknownMemberError
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
)
from loyalty.programme.tiers import TierOverride

_CONDITION_FAILED = "ConditionalCheckFailed"
_CONFLICT = "TransactionConflict"
ERASE_TRIES = 5
_PERSONAL = ("email", "first_name", "last_name", "phone", "birthdate", "email_parked", "email_parked_reason")


class DynamoDBLedgerStore:
    def __init__(self) -> None:
        self._connection = table_connection()

    # ---------------------------------------------------------------- reads

    def member(self, member_id: str) -> MemberState | None:
        item = _get(MemberItem, member_pk(member_id), MEMBER_SK)
        return member_state(item) if item is not None else None

    def members(self, member_ids: Iterable[str]) -> dict[str, MemberState]:
        keys = [(member_pk(member_id), MEMBER_SK) for member_id in sorted(set(member_ids))]
        found = (member_state(item) for item in _batch_get(keys) if isinstance(item, MemberItem)) if keys else ()
        return {member.member_id: member for member in found}

    def member_and_order(
        self, member_id: str, order_key: str, shop: str, product_ids: Iterable[str] = (), codes: Iterable[str] = ()
    ) -> MemberAndOrder:
        pk = member_pk(member_id)
        products = sorted(set(product_ids))
        keys = [(pk, MEMBER_SK), (order_pk(order_key), ORDER_SK), (pk, REVIEW_SK)]
        keys += [(product_pk(shop, product_id), PRODUCT_SK) for product_id in products]
        keys += [(code_pk(shop, code), CODE_SK) for code in sorted({code.upper() for code in codes})]
        member = order = review_on = None
        categories: dict[str, tuple[str, ...]] = {}
        redemptions: dict[str, tuple[str, str]] = {}
        for item in _batch_get(keys):
            if isinstance(item, MemberItem):
                member = member_state(item)
            elif isinstance(item, OrderItem):
                order = order_state(order_key, item)
            elif isinstance(item, ReviewItem):
                review_on = date.fromisoformat(item.review_on)
            elif isinstance(item, ProductItem):
                categories[product_id_of(item)] = tuple(str(name) for name in item.categories)
            elif isinstance(item, RedemptionCodeItem):
                redemptions[item.pk.rsplit("#", 1)[1]] = (item.member_id, item.redemption_id)
        return MemberAndOrder(member, order, review_on, categories, redemptions)

    def order(self, order_key: str) -> OrderState | None:
        item = _get(OrderItem, order_pk(order_key), ORDER_SK)
        return order_state(order_key, item) if item is not None else None

    def member_and_entry(self, member_id: str, source_key: str) -> tuple[MemberState | None, Entry | None]:
        pk = member_pk(member_id)
        member = entry = None
        for item in _batch_get([(pk, MEMBER_SK), (pk, ENTRY_PREFIX + source_key)]):
            if isinstance(item, MemberItem):
                member = member_state(item)
            elif isinstance(item, EntryItem):
                entry = entry_of(item)
        return member, entry

    def entry(self, member_id: str, source_key: str) -> Entry | None:
        item = _get(EntryItem, member_pk(member_id), ENTRY_PREFIX + source_key)
        return entry_of(item) if item is not None else None

    def open_lots(self, member_id: str, consumed: int) -> Iterator[Entry]:
        query = LoyaltyItem.open_lots.query(
            member_pk(member_id), LoyaltyItem.lot_end > consumed, consistent_read=True, page_size=25
        )
        return (entry_of(item) for item in query if isinstance(item, EntryItem))

    def history(self, member_id: str, limit: int, cursor: str | None) -> HistoryPage:
        start_key = json.loads(base64.urlsafe_b64decode(cursor)) if cursor else None
        results = LoyaltyItem.by_time.query(
            member_pk(member_id), scan_index_forward=False, limit=limit, last_evaluated_key=start_key
        )
        entries = tuple(entry_of(item) for item in results if isinstance(item, EntryItem))
        last_key = results.last_evaluated_key
        next_cursor = base64.urlsafe_b64encode(json.dumps(last_key).encode()).decode() if last_key else None
        return HistoryPage(entries=entries, cursor=next_cursor)

    def entries(self, member_id: str, since: datetime | None = None) -> list[Entry]:
        condition = LoyaltyItem.hist_sk >= history_key(since) if since is not None else None
        query = LoyaltyItem.by_time.query(member_pk(member_id), condition, consistent_read=True)
        return [entry_of(item) for item in query if isinstance(item, EntryItem)]

    def redemption_state(self, member_id: str, redemption_id: str, reward_id: str) -> RedemptionState:
        pk = member_pk(member_id)
        member = redemption = None
        uses = RewardUses(reward_id)
        keys = [(pk, MEMBER_SK), (pk, REDEMPTION_PREFIX + redemption_id), (pk, REWARD_USES_PREFIX + reward_id)]
        for item in _batch_get(keys):
            if isinstance(item, MemberItem):
                member = member_state(item)
            elif isinstance(item, RedemptionItem):
                redemption = redemption_of(item)
            elif isinstance(item, RewardUsesItem):
                uses = uses_of(item)
        return RedemptionState(member, redemption, uses)

    def member_and_uses(self, member_id: str, reward_ids: Iterable[str]) -> tuple[MemberState | None, list[RewardUses]]:
        pk = member_pk(member_id)
        keys = [(pk, MEMBER_SK)] + [(pk, REWARD_USES_PREFIX + reward_id) for reward_id in sorted(set(reward_ids))]
        member, uses = None, []
        for item in _batch_get(keys):
            if isinstance(item, MemberItem):
                member = member_state(item)
            elif isinstance(item, RewardUsesItem):
                uses.append(uses_of(item))
        return member, sorted(uses, key=lambda found: found.reward_id)

    def redemptions(self, member_id: str) -> list[Redemption]:
        pk = member_pk(member_id)
        if not can_exist(pk, REDEMPTION_PREFIX):
            return []
        query = LoyaltyItem.query(pk, LoyaltyItem.sk.startswith(REDEMPTION_PREFIX), consistent_read=True)
        found = [redemption_of(item) for item in query if isinstance(item, RedemptionItem)]
        return sorted(found, key=lambda r: (r.created_at, r.redemption_id), reverse=True)

    def mark_redemption_task(self, member_id: str, redemption_id: str, state: str) -> None:
        item = RedemptionItem(member_pk(member_id), REDEMPTION_PREFIX + redemption_id)
        try:
            item.update(actions=[RedemptionItem.task_state.set(state)], condition=RedemptionItem.pk.exists())
        except UpdateError as error:
            if not condition_failed(error):  # a redemption gone has no Task to note
                raise

    def member_for_email(self, email: str) -> str | None:
        guard = _get(EmailItem, email_pk(email), EMAIL_SK)
        return guard.member_id if guard is not None else None

    # ---------------------------------------------------------------- writes

    def commit(self, change: LedgerChange) -> Commit:
        with_entry = change.entry is not None
        try:
            with TransactWrite(connection=self._connection) as transaction:
                if change.entry is not None:
                    transaction.save(entry_item(change.entry), condition=EntryItem.pk.does_not_exist())
                if change.order is not None:
                    state = change.order.state
                    transaction.save(order_item(state), condition=_order_read_at(state.version - 1))
                if change.member is not None:
                    actions, condition = _member_update(change.member)
                    item = MemberItem(member_pk(change.member.member_id), MEMBER_SK)
                    transaction.update(item, actions, condition=condition, add_version_condition=False)
                if change.review_on is not None:
                    assert change.member is not None, "a review is brought forward with a change to its member"
                    member_id = change.member.member_id
                    actions, later_or_none = review_brought_forward(member_id, change.review_on)
                    review = ReviewItem(member_pk(member_id), REVIEW_SK)
                    transaction.update(review, actions, condition=later_or_none, add_version_condition=False)
                if change.redemption is not None:
                    write = change.redemption
                    status = RedemptionItem.status
                    unchanged = status.does_not_exist() if write.previous is None else status == write.previous.value
                    transaction.save(redemption_item(write.redemption), condition=unchanged)
                    redemption = write.redemption
                    if write.previous is None and redemption.code is not None:  # whose code it is, for its order
                        code = RedemptionCodeItem(
                            code_pk(redemption.shop, redemption.code),
                            CODE_SK,
                            member_id=redemption.member_id,
                            redemption_id=redemption.redemption_id,
                        )
                        transaction.save(code, condition=RedemptionCodeItem.pk.does_not_exist())
                    if write.uses is not None:
                        version = write.uses.version - 1
                        at = RewardUsesItem.version == version if version else RewardUsesItem.pk.does_not_exist()
                        transaction.save(uses_item(write.redemption.member_id, write.uses), condition=at)
        except TransactWriteError as error:
            reasons = [reason.code if reason else None for reason in (error.cancellation_reasons or [])]
            if not reasons:
                raise
            if _CONFLICT not in reasons and with_entry and reasons[0] == _CONDITION_FAILED:
                return Commit.ALREADY_APPLIED
            return Commit.CONFLICT
        return Commit.APPLIED

    def enrol(self, member: MemberState, first_review: date) -> Commit:
        due_pk, due_sk = review_due(member.member_id, first_review)
        item = member_item(member)
        try:
            with TransactWrite(connection=self._connection) as transaction:
                transaction.save(item, condition=MemberItem.pk.does_not_exist())
                review = ReviewItem(item.pk, REVIEW_SK, member_id=member.member_id, review_on=first_review.isoformat())
                review.due_pk, review.due_sk = due_pk, due_sk
                transaction.save(review)  # every member is in the review cycle (tier and segment) from the start
                if member.email:
                    guard = EmailItem(email_pk(member.email), EMAIL_SK, member_id=member.member_id)
                    transaction.save(guard, condition=EmailItem.pk.does_not_exist())
        except TransactWriteError as error:
            reasons = [reason.code if reason else None for reason in (error.cancellation_reasons or [])]
            if not reasons:
                raise
            return Commit.ALREADY_APPLIED if reasons[0] == _CONDITION_FAILED else Commit.CONFLICT
        return Commit.APPLIED

    def change_email(self, member_id: str, read: str | None, new: str, at: datetime) -> EmailMove:
        member = MemberItem(member_pk(member_id), MEMBER_SK)
        as_read = MemberItem.email == read if read else MemberItem.email.does_not_exist()
        newer = MemberItem.profile_updated_at.does_not_exist() | (MemberItem.profile_updated_at <= at)
        guard_moves = read is None or normalise_email(read) != normalise_email(new)
        try:
            with TransactWrite(connection=self._connection) as transaction:
                transaction.update(
                    member,
                    [
                        MemberItem.email.set(new),
                        MemberItem.profile_updated_at.set(at),
                        MemberItem.email_parked.remove(),
                        MemberItem.email_parked_reason.remove(),
                    ],
                    condition=MemberItem.pk.exists() & MemberItem.erased_at.does_not_exist() & as_read & newer,
                    add_version_condition=False,
                )
                if guard_moves:
                    guard = EmailItem(email_pk(new), EMAIL_SK, member_id=member_id)
                    transaction.save(guard, condition=EmailItem.pk.does_not_exist())
                    if read:  # the member's own: written with their e-mail, moved only with it
                        transaction.delete(EmailItem(email_pk(read), EMAIL_SK))
        except TransactWriteError as error:
            # pynamodb sends a transaction's deletes, then its puts, then its updates
            reasons = [reason.code if reason else None for reason in (error.cancellation_reasons or [])]
            if reasons and reasons[-1] == _CONDITION_FAILED:  # the member's update
                return EmailMove.OLDER
            if guard_moves and _CONDITION_FAILED in reasons:  # the new guard's put
                return EmailMove.TAKEN
            raise
        return EmailMove.CHANGED

    def set_block(self, member_id: str, reason: str | None, actor: str, at: datetime) -> bool:
        actions: list[Action] = [
            MemberItem.blocked_at.set(at),
            MemberItem.blocked_by.set(actor),
            MemberItem.qualifying_version.add(1),  # what was decided on the member as read is decided again
            MemberItem.blocked_reason.set(reason) if reason else MemberItem.blocked_reason.remove(),
        ]
        return _update_member(member_id, actions)

    def set_leaving(self, member_id: str, on: date) -> bool:
        actions: list[Action] = [
            MemberItem.leaving_on.set(MemberItem.leaving_on | on.isoformat()),  # a first notice stands
            MemberItem.qualifying_version.add(1),
        ]
        return _update_member(member_id, actions)

    def park_email(self, member_id: str, email: str | None, reason: str | None) -> None:
        actions: list[Action] = (
            [MemberItem.email_parked.set(email), MemberItem.email_parked_reason.set(reason or "")]
            if email
            else [MemberItem.email_parked.remove(), MemberItem.email_parked_reason.remove()]
        )
        if not _update_member(member_id, actions):
            raise UnknownMemberError(member_id)

    def erase_personal_data(self, member_id: str, at: datetime) -> bool:
        for _ in range(ERASE_TRIES):
            member = _get(MemberItem, member_pk(member_id), MEMBER_SK)
            if member is None:
                return False
            as_read = MemberItem.email == member.email if member.email else MemberItem.email.does_not_exist()
            try:
                with TransactWrite(connection=self._connection) as transaction:
                    if member.email:  # the guard of the e-mail read, while it is still theirs
                        theirs = EmailItem.pk.does_not_exist() | (EmailItem.member_id == member_id)
                        transaction.delete(EmailItem(email_pk(member.email), EMAIL_SK), condition=theirs)
                    transaction.delete(BirthdayItem(member_pk(member_id), BIRTHDAY_SK))
                    transaction.update(
                        MemberItem(member_pk(member_id), MEMBER_SK),
                        [
                            *(getattr(MemberItem, name).remove() for name in _PERSONAL),
                            MemberItem.erased_at.set(member.erased_at or at),
                        ],
                        condition=MemberItem.pk.exists() & as_read,  # an e-mail changed meanwhile: read again
                        add_version_condition=False,
                    )
            except TransactWriteError as error:
                reasons = [reason.code if reason else None for reason in (error.cancellation_reasons or [])]
                if _CONDITION_FAILED not in reasons:
                    raise
                continue
            return True
        raise ConcurrentUpdateError(f"member {member_id}'s e-mail kept changing during the erasure")

    def grant_offer(self, member_id: str, key: str, grant: OfferGrant, drop: Sequence[str]) -> None:
        value = grant_value(grant)
        item = MemberItem(member_pk(member_id), MEMBER_SK)
        actions: list[Action] = [MemberItem.offers[key].set(value), *(MemberItem.offers[k].remove() for k in drop)]
        try:
            item.update(actions=actions, condition=MemberItem.offers.exists())
        except UpdateError as error:
            if not condition_failed(error):
                raise
            try:  # a member stored before offers existed: the map comes with the first grant
                item.update(
                    actions=[MemberItem.offers.set({key: value})],
                    condition=MemberItem.pk.exists() & MemberItem.offers.does_not_exist(),
                )
            except UpdateError as missing:
                if condition_failed(missing):
                    raise UnknownMemberError(member_id) from None
                raise


def _update_member(member_id: str, actions: list[Action]) -> bool:
    """Change a stored member's item; False if there is no such member."""
    try:
        MemberItem(member_pk(member_id), MEMBER_SK).update(actions=actions, condition=MemberItem.pk.exists())
    except UpdateError as error:
        if condition_failed(error):
            return False
        raise
    return True


def _order_read_at(version: int) -> Condition:
    """The stored order is still the one read: at ``version`` (0: absent, or stored before orders had a version)."""
    if version == 0:
        return OrderItem.pk.does_not_exist() | OrderItem.version.does_not_exist()
    return OrderItem.version == version


def _member_update(change: MemberChange) -> tuple[list[Action], Condition]:
    actions: list[Action] = [getattr(MemberItem, name).add(delta) for name, delta in change.add.items() if delta]
    for month, delta in change.qualifying.items():
        actions.append(MemberItem.qualifying[month].set((MemberItem.qualifying[month] | 0) + delta))
    if change.bump_qualifying_version:
        actions.append(MemberItem.qualifying_version.add(1))
    for name, value in change.sets.items():
        attribute = getattr(MemberItem, name)
        if value is None:
            actions.append(attribute.remove())
        elif isinstance(value, TierOverride):
            actions.append(attribute.set(override_value(value)))
        elif isinstance(value, date) and not isinstance(value, datetime):
            actions.append(attribute.set(value.isoformat()))
        else:
            actions.append(attribute.set(value))
    actions += [MemberItem.offers[key]["used"].set(order) for key, order in change.offers_used.items()]
    expect = change.expect
    condition: Condition = MemberItem.pk.exists()
    if expect.qualifying_version is not None:
        unchanged = MemberItem.qualifying_version == expect.qualifying_version
        if expect.qualifying_version == 0:
            unchanged |= MemberItem.qualifying_version.does_not_exist()
        condition &= unchanged
    if expect.released is not None:
        condition &= MemberItem.released == expect.released
    if expect.consumed is not None:
        condition &= MemberItem.consumed == expect.consumed
    if expect.available_at_least is not None:
        condition &= MemberItem.available >= expect.available_at_least
    return actions, condition


def _get(model: type[Any], pk: str, sk: str) -> Any:
    if not can_exist(pk, sk):
        return None
    try:
        return model.get(pk, sk, consistent_read=True)
    except model.DoesNotExist:
        return None


def _batch_get(keys: list[tuple[str, str]]) -> list[LoyaltyItem]:
    keys = [(pk, sk) for pk, sk in keys if can_exist(pk, sk)]
    return list(LoyaltyItem.batch_get(keys, consistent_read=True)) if keys else []
