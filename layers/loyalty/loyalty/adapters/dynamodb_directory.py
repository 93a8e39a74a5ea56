"""Who is who and what is what: shop customers linked to members, member profiles, the product catalogue,
and guest orders held until their e-mail enrols."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pynamodb.exceptions import PutError, TransactWriteError, UpdateError
from pynamodb.transactions import TransactWrite

from loyalty.adapters.dynamodb_models import (
    BIRTHDAY_SK,
    MEMBER_SK,
    BirthdayItem,
    CustomerItem,
    HeldOrderItem,
    LoyaltyItem,
    MemberItem,
    ProductItem,
    RequestItem,
    email_pk,
    member_pk,
    table_connection,
)
from loyalty.orders import Order, casefold_categories

CUSTOMER_SK = "CUSTOMER"
PRODUCT_SK = "PRODUCT"
PROFILE_FIELDS = (
    "first_name",
    "last_name",
    "phone",
    "locale",
    "email_consent",
    "sms_consent",
    "crm_contact_id",
    "birthdate",
)


CONSENT_FIELDS = ("email_consent", "sms_consent")


def _customer_pk(shop: str, customer_id: str) -> str:
    return f"CUSTOMER#{shop}#{customer_id}"


def _product_pk(shop: str, product_id: str) -> str:
    return f"PRODUCT#{shop}#{product_id}"


def _held_pk(email: str) -> str:
    return "HELD#" + email_pk(email).removeprefix("EMAIL#")


class Directory:
    # ------------------------------------------------------------ customers and profiles

    def member_for_customer(self, shop: str, customer_id: str) -> str | None:
        try:
            return str(CustomerItem.get(_customer_pk(shop, customer_id), CUSTOMER_SK).member_id)
        except CustomerItem.DoesNotExist:
            return None

    def link_customer(self, shop: str, customer_id: str, member_id: str) -> None:
        CustomerItem(_customer_pk(shop, customer_id), CUSTOMER_SK, member_id=member_id).save()

    def update_profile(self, member_id: str, changes: Mapping[str, Any], at: datetime) -> bool:
        """Apply profile changes made at ``at``, unless a newer change was applied already (out-of-order delivery).

        Consent is judged per channel on its own time, so an opt-out is never lost to a newer change of an
        unrelated field (a phone number), and an older consent change never undoes a newer one."""
        applied = False
        for field in CONSENT_FIELDS:
            if changes.get(field) is not None:
                applied |= self._set_consent(member_id, field, bool(changes[field]), at)
        rest = {name: value for name, value in changes.items() if name not in CONSENT_FIELDS}
        return self._update_rest(member_id, rest, at) or applied

    @staticmethod
    def _set_consent(member_id: str, field: str, value: bool, at: datetime) -> bool:
        consent, consent_at = getattr(MemberItem, field), getattr(MemberItem, f"{field}_at")
        try:
            MemberItem(member_pk(member_id), MEMBER_SK).update(
                actions=[consent.set(value), consent_at.set(at)],
                condition=MemberItem.pk.exists() & (consent_at.does_not_exist() | (consent_at <= at)),
            )
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _update_rest(self, member_id: str, changes: Mapping[str, Any], at: datetime) -> bool:
        actions = [getattr(MemberItem, name).set(value) for name, value in changes.items() if name in PROFILE_FIELDS]
        if not actions:
            return False
        newer_or_first = MemberItem.profile_updated_at.does_not_exist() | (MemberItem.profile_updated_at <= at)
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
        except UpdateError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        except TransactWriteError as error:
            if any(reason and reason.code == "ConditionalCheckFailed" for reason in error.cancellation_reasons or []):
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
        """Link the member to their CRM Contact (or drop a stale link)."""
        action = MemberItem.crm_contact_id.set(contact_id) if contact_id else MemberItem.crm_contact_id.remove()
        MemberItem(member_pk(member_id), MEMBER_SK).update(actions=[action], condition=MemberItem.pk.exists())

    def record_request(self, request_id: str) -> bool:
        """Note a CRM request id; False if it was noted before (a repeat)."""
        try:
            RequestItem(f"REQUEST#{request_id}", "REQUEST").save(condition=RequestItem.pk.does_not_exist())
        except PutError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    # ------------------------------------------------------------ catalogue

    def save_product(self, shop: str, product_id: str, title: str, categories: Iterable[str], at: datetime) -> bool:
        """Keep the product's categories, unless a newer version of it is stored already."""
        item = ProductItem(
            _product_pk(shop, product_id), PRODUCT_SK, title=title, categories=list(categories), updated_at=at
        )
        try:
            item.save(condition=ProductItem.pk.does_not_exist() | (ProductItem.updated_at <= at))
        except PutError as error:
            if error.cause_response_code == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def categories_for(self, shop: str, product_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Categories of the catalogue's products (one batch read); unknown products are absent."""
        keys = [(_product_pk(shop, pid), PRODUCT_SK) for pid in sorted(set(product_ids))]
        found: dict[str, tuple[str, ...]] = {}
        for item in LoyaltyItem.batch_get(keys) if keys else []:
            if isinstance(item, ProductItem):
                found[item.pk.rsplit("#", 1)[1]] = tuple(str(name) for name in item.categories)
        return found

    def seed_catalogue(self, shop: str, csv_path: Path, at: datetime) -> int:
        """Seed the catalogue from a product CSV export. Columns (case-insensitive): ``ID`` or ``product_id``;
        ``Name`` or ``Title``; ``Categories`` (comma-separated, ``A > B`` paths), or where there is none ``Type``;
        ``Tags``. Returns the number of products saved."""
        saved = 0
        with csv_path.open(newline="", encoding="utf-8-sig") as handle:
            for row in csv.DictReader(handle):
                fields = {key.strip().lower(): (value or "").strip() for key, value in row.items() if key}
                product_id = fields.get("id") or fields.get("product_id")
                if not product_id:
                    continue
                names: list[str] = []
                # WooCommerce's Type is simple/variable, not a category; Shopify-style exports have only Type
                columns = ("categories", "tags") if "categories" in fields else ("type", "tags")
                for column in columns:
                    for part in fields.get(column, "").split(","):
                        names += [segment for segment in part.split(">") if segment.strip()]
                categories = tuple(dict.fromkeys(casefold_categories(tuple(names))))
                title = fields.get("name") or fields.get("title") or product_id
                saved += self.save_product(shop, product_id, title, categories, at)
        return saved

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
