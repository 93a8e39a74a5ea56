"""Who is who and what is what: shop customers linked to members, member profiles, the product catalogue,
and guest orders held until their e-mail enrols."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from pynamodb.exceptions import DeleteError, PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from loyalty.adapters.dynamodb.models import (
    BIRTHDAY_SK,
    MEMBER_SK,
    PRODUCT_SK,
    BirthdayItem,
    CustomerItem,
    HeldOrderItem,
    LoyaltyItem,
    MemberItem,
    ProductItem,
    RequestItem,
    ReviewHoldItem,
    can_exist,
    condition_failed,
    email_pk,
    member_pk,
    product_id_of,
    product_pk,
    table_connection,
)
from loyalty.errors import UnknownMemberError
from loyalty.ports.directory import PROFILE_FIELDS, HeldForReview
from loyalty.programme.orders import Order

CUSTOMER_SK = "CUSTOMER"
REVIEW_HOLD_PK = "REVIEW_HOLD"


def _get_member(member_id: str) -> MemberItem | None:
    try:
        return MemberItem.get(member_pk(member_id), MEMBER_SK, consistent_read=True)
    except MemberItem.DoesNotExist:
        return None


def _customer_pk(shop: str, customer_id: str) -> str:
    return f"CUSTOMER#{shop}#{customer_id}"


def _review_sk(order: Order) -> str:
    return f"ORDER#{order.shop}#{order.order_id}"


def _held_pk(email: str) -> str:
    return "HELD#" + email_pk(email).removeprefix("EMAIL#")


class DynamoDBDirectory:
    # ------------------------------------------------------------ customers and profiles

    def member_for_customer(self, shop: str, customer_id: str) -> str | None:
        if not can_exist(_customer_pk(shop, customer_id), CUSTOMER_SK):
            return None
        try:
            return str(CustomerItem.get(_customer_pk(shop, customer_id), CUSTOMER_SK).member_id)
        except CustomerItem.DoesNotExist:
            return None

    def link_customer(self, shop: str, customer_id: str, member_id: str) -> None:
        CustomerItem(_customer_pk(shop, customer_id), CUSTOMER_SK, member_id=member_id).save()
        try:  # the member's item names their shop customers: the stream then brings them to shop_customers
            MemberItem(member_pk(member_id), MEMBER_SK).update(
                actions=[MemberItem.customers.add({f"{shop}#{customer_id}"})],
                condition=MemberItem.pk.exists() & MemberItem.erased_at.does_not_exist(),
            )
        except UpdateError as error:
            if not condition_failed(error):
                raise
            erased = _get_member(member_id)
            if erased is not None and erased.erased_at is not None:  # an erased member is linked to no one again
                CustomerItem(_customer_pk(shop, customer_id), CUSTOMER_SK).delete()

    def set_consent(self, member_id: str, field: str, value: bool, at: datetime) -> bool:
        consent, consent_at = getattr(MemberItem, field), getattr(MemberItem, f"{field}_at")
        try:
            MemberItem(member_pk(member_id), MEMBER_SK).update(
                actions=[consent.set(value), consent_at.set(at)],
                condition=MemberItem.pk.exists()
                & MemberItem.erased_at.does_not_exist()  # nothing of the person comes back after an erasure
                & (consent_at.does_not_exist() | (consent_at <= at)),
            )
        except UpdateError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def update_profile(self, member_id: str, changes: Mapping[str, Any], at: datetime) -> bool:
        actions = [getattr(MemberItem, name).set(value) for name, value in changes.items() if name in PROFILE_FIELDS]
        if not actions:
            return False
        newer_or_first = MemberItem.erased_at.does_not_exist() & (  # nothing of the person comes back once erased
            MemberItem.profile_updated_at.does_not_exist() | (MemberItem.profile_updated_at <= at)
        )
        member = MemberItem(member_pk(member_id), MEMBER_SK)
        birthdate = changes.get("birthdate")
        try:
            if birthdate is None or self._birthdate(member_id) == birthdate:
                member.update(
                    actions=[*actions, MemberItem.profile_updated_at.set(at)],
                    condition=MemberItem.pk.exists() & newer_or_first,
                )
                return True
            # a new or changed birthday goes on the due index, dated from when it was entered
            with TransactWrite(connection=table_connection()) as transaction:
                transaction.update(
                    member,
                    [*actions, MemberItem.profile_updated_at.set(at)],
                    condition=MemberItem.pk.exists() & newer_or_first,
                    add_version_condition=False,
                )
                transaction.save(
                    BirthdayItem(
                        member_pk(member_id),
                        BIRTHDAY_SK,
                        member_id=member_id,
                        birthdate=birthdate,
                        entered_on=at.astimezone(UTC).date().isoformat(),
                        due_pk=f"BIRTHDAY#{birthdate[5:10]}",
                        due_sk=member_id,
                    )
                )
        except (UpdateError, TransactWriteError) as error:
            if condition_failed(error):
                return False
            raise
        return True

    @staticmethod
    def _birthdate(member_id: str) -> str | None:
        try:
            return BirthdayItem.get(member_pk(member_id), BIRTHDAY_SK, consistent_read=True).birthdate
        except BirthdayItem.DoesNotExist:
            return None

    def link_contact(self, member_id: str, contact_id: str | None) -> None:
        action = MemberItem.crm_contact_id.set(contact_id) if contact_id else MemberItem.crm_contact_id.remove()
        try:
            MemberItem(member_pk(member_id), MEMBER_SK).update(actions=[action], condition=MemberItem.pk.exists())
        except UpdateError as error:
            if condition_failed(error):
                raise UnknownMemberError(member_id) from None
            raise

    def request_seen(self, request_id: str) -> bool:
        try:
            RequestItem.get(f"REQUEST#{request_id}", "REQUEST", consistent_read=True)
        except RequestItem.DoesNotExist:
            return False
        return True

    def record_request(self, request_id: str) -> bool:
        """Note a CRM request id; False if it was noted before (a repeat)."""
        try:
            RequestItem(f"REQUEST#{request_id}", "REQUEST").save(condition=RequestItem.pk.does_not_exist())
        except PutError as error:
            if condition_failed(error):
                return False
            raise
        return True

    # ------------------------------------------------------------ catalogue

    def save_product(self, shop: str, product_id: str, title: str, categories: Iterable[str], at: datetime) -> bool:
        """Keep the product's categories, unless a newer version of it is stored already."""
        item = ProductItem(
            product_pk(shop, product_id), PRODUCT_SK, title=title, categories=list(categories), updated_at=at
        )
        try:
            item.save(condition=ProductItem.pk.does_not_exist() | (ProductItem.updated_at <= at))
        except PutError as error:
            if condition_failed(error):
                return False
            raise
        return True

    def categories_for(self, shop: str, product_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Categories of the catalogue's products (one batch read); unknown products are absent."""
        keys = [(product_pk(shop, pid), PRODUCT_SK) for pid in sorted(set(product_ids))]
        found: dict[str, tuple[str, ...]] = {}
        for item in LoyaltyItem.batch_get(keys) if keys else []:
            if isinstance(item, ProductItem):
                found[product_id_of(item)] = tuple(str(name) for name in item.categories)
        return found

    # ------------------------------------------------------------ guest orders

    def hold_guest_order(self, email: str, order: Order, until: datetime) -> None:
        HeldOrderItem(
            _held_pk(email),
            f"ORDER#{order.shop}#{order.order_id}",
            order=order.model_dump_json(),
            hold_until=until,
            ttl=int(until.timestamp()),
        ).save()

    def held_orders(self, email: str, now: datetime) -> list[Order]:
        """Guest orders of this e-mail still within their hold (TTL removes the rest eventually)."""
        return [
            Order.model_validate_json(item.order)
            for item in LoyaltyItem.query(_held_pk(email), consistent_read=True)
            if isinstance(item, HeldOrderItem) and item.hold_until >= now
        ]

    def drop_held_order(self, email: str, order: Order) -> None:
        HeldOrderItem(_held_pk(email), f"ORDER#{order.shop}#{order.order_id}").delete()

    def shop_customers(self, shop: str) -> list[tuple[str, str]]:
        """A Scan filtered to the shop's customer links: once, for a shop that left the app (never on a path that
        runs per event)."""
        prefix = _customer_pk(shop, "")
        condition = (LoyaltyItem.type == CustomerItem) & LoyaltyItem.pk.startswith(prefix)
        return sorted(
            (item.pk.removeprefix(prefix), item.member_id)
            for item in LoyaltyItem.scan(condition)
            if isinstance(item, CustomerItem)
        )

    def customer_links(self, member_id: str) -> list[str]:
        try:
            member = MemberItem.get(member_pk(member_id), MEMBER_SK, consistent_read=True)
        except MemberItem.DoesNotExist:
            return []
        return sorted(member.customers or ())

    def unlink_customer(self, shop: str, customer_id: str, member_id: str) -> None:
        try:
            CustomerItem(_customer_pk(shop, customer_id), CUSTOMER_SK).delete(
                condition=CustomerItem.member_id == member_id
            )
        except DeleteError as error:
            if not condition_failed(error):
                raise
        try:
            MemberItem(member_pk(member_id), MEMBER_SK).update(
                actions=[MemberItem.customers.delete({f"{shop}#{customer_id}"})], condition=MemberItem.pk.exists()
            )
        except UpdateError as error:
            if not condition_failed(error):
                raise

    def forget_person(self, member_id: str, email: str | None) -> int:
        removed = 0
        try:
            member = MemberItem.get(member_pk(member_id), MEMBER_SK, consistent_read=True)
        except MemberItem.DoesNotExist:
            member = None
        for link in sorted(member.customers or ()) if member is not None else ():
            shop, _, customer_id = link.rpartition("#")
            try:  # only the member's own link (the customer id may have gone to another member since)
                CustomerItem(_customer_pk(shop, customer_id), CUSTOMER_SK).delete(
                    condition=CustomerItem.member_id == member_id
                )
                removed += 1
            except DeleteError as error:
                if not condition_failed(error):
                    raise
        if member is not None and member.customers:
            member.update(actions=[MemberItem.customers.remove()], condition=MemberItem.pk.exists())
        if email:
            for item in LoyaltyItem.query(_held_pk(email), consistent_read=True):
                item.delete()
                removed += 1
        return removed

    def hold_for_review(self, order: Order, reason: str, at: datetime, member_id: str | None = None) -> None:
        item = ReviewHoldItem(
            REVIEW_HOLD_PK,
            _review_sk(order),
            order=order.model_dump_json(),
            reason=reason,
            held_at=at,
            member_id=member_id,
            task_state="pending" if member_id is not None else None,
        )
        try:
            item.save(condition=ReviewHoldItem.pk.does_not_exist())  # a redelivery keeps the first hold
        except PutError as error:
            if not condition_failed(error):
                raise

    def mark_review_task(self, held: HeldForReview, state: str) -> None:
        ReviewHoldItem(REVIEW_HOLD_PK, _review_sk(held.order)).update(actions=[ReviewHoldItem.task_state.set(state)])

    def held_for_review(self) -> list[HeldForReview]:
        held = [
            HeldForReview(Order.model_validate_json(item.order), item.reason, item.held_at, item.member_id)
            for item in LoyaltyItem.query(REVIEW_HOLD_PK, consistent_read=True)
            if isinstance(item, ReviewHoldItem)
        ]
        return sorted(held, key=lambda entry: entry.held_at)
