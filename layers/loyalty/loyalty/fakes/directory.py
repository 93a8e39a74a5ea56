"""The directory in memory: customers, profiles and consent, the catalogue, held guest orders, CRM requests."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

from loyalty.errors import UnknownMemberError
from loyalty.fakes.memory import Memory
from loyalty.ports.directory import PROFILE_FIELDS, HeldForReview
from loyalty.programme.orders import Order


def _email(address: str) -> str:
    return address.strip().lower()


def catalogue_categories(memory: Memory, shop: str, product_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """The categories of the catalogue's products among ``product_ids`` (the ledger's accrual reads them too)."""
    with memory.atomically():
        products = memory.items("products")
        return {pid: products[(shop, pid)][1] for pid in set(product_ids) if (shop, pid) in products}


class InMemoryDirectory:
    def __init__(self, memory: Memory | None = None) -> None:
        self.memory = memory or Memory()

    def member_for_customer(self, shop: str, customer_id: str) -> str | None:
        return self.memory.items("customers").get((shop, customer_id))

    def link_customer(self, shop: str, customer_id: str, member_id: str) -> None:
        member = self.memory.members.get(member_id)
        if member is None or member.erased_at is None:  # an erased member is linked to no one again
            self.memory.items("customers")[(shop, customer_id)] = member_id

    def update_profile(self, member_id: str, changes: Mapping[str, Any], at: datetime) -> bool:
        values = {name: value for name, value in changes.items() if name in PROFILE_FIELDS}
        if not values:
            return False
        with self.memory.atomically():
            member = self.memory.members.get(member_id)
            if member is None or member.erased_at is not None:  # nothing of the person comes back once erased
                return False
            if member.profile_updated_at is not None and member.profile_updated_at > at:
                return False
            birthdate = values.get("birthdate")
            if birthdate is not None:
                values["birthdate"] = date.fromisoformat(birthdate)
                known = self.memory.birthdays.get(member_id)
                if known is None or known[0] != values["birthdate"]:  # on the birthday index from the day entered
                    self.memory.birthdays[member_id] = (values["birthdate"], at.astimezone(UTC).date())
            self.memory.members[member_id] = replace(member, **values, profile_updated_at=at)
        return True

    def set_consent(self, member_id: str, field: str, value: bool, at: datetime) -> bool:
        with self.memory.atomically():
            member = self.memory.members.get(member_id)
            stated = getattr(member, f"{field}_at") if member is not None else None
            if member is None or member.erased_at is not None or (stated is not None and stated > at):
                return False
            self.memory.members[member_id] = replace(member, **{field: value, f"{field}_at": at})  # type: ignore[arg-type]
        return True

    def link_contact(self, member_id: str, contact_id: str | None) -> None:
        with self.memory.atomically():
            member = self.memory.members.get(member_id)
            if member is None:
                raise UnknownMemberError(member_id)
            self.memory.members[member_id] = replace(member, crm_contact_id=contact_id)

    def request_seen(self, request_id: str) -> bool:
        with self.memory.atomically():
            return request_id in self.memory.items("requests")

    def record_request(self, request_id: str) -> bool:
        with self.memory.atomically():
            seen = self.memory.items("requests")
            if request_id in seen:
                return False
            seen[request_id] = True
        return True

    def save_product(self, shop: str, product_id: str, title: str, categories: Iterable[str], at: datetime) -> bool:
        with self.memory.atomically():
            products = self.memory.items("products")
            stored = products.get((shop, product_id))
            if stored is not None and stored[2] > at:
                return False
            products[(shop, product_id)] = (title, tuple(categories), at)
        return True

    def categories_for(self, shop: str, product_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        return catalogue_categories(self.memory, shop, product_ids)

    def hold_guest_order(self, email: str, order: Order, until: datetime) -> None:
        self.memory.items("held_orders").setdefault(_email(email), {})[(order.shop, order.order_id)] = (order, until)

    def held_orders(self, email: str, now: datetime) -> list[Order]:
        held = self.memory.items("held_orders").get(_email(email), {})
        return [order for order, until in held.values() if until >= now]

    def drop_held_order(self, email: str, order: Order) -> None:
        self.memory.items("held_orders").get(_email(email), {}).pop((order.shop, order.order_id), None)

    def shop_customers(self, shop: str) -> list[tuple[str, str]]:
        customers = self.memory.items("customers")
        return sorted((customer_id, member_id) for (at, customer_id), member_id in customers.items() if at == shop)

    def customer_links(self, member_id: str) -> list[str]:
        customers = self.memory.items("customers")
        return sorted(f"{shop}#{customer}" for (shop, customer), linked in customers.items() if linked == member_id)

    def unlink_customer(self, shop: str, customer_id: str, member_id: str) -> None:
        customers = self.memory.items("customers")
        if customers.get((shop, customer_id)) == member_id:
            del customers[shop, customer_id]

    def forget_person(self, member_id: str, email: str | None) -> int:
        customers = self.memory.items("customers")
        theirs = [key for key, linked in customers.items() if linked == member_id]
        for key in theirs:
            del customers[key]
        held = self.memory.items("held_orders").pop(_email(email), {}) if email else {}
        return len(theirs) + len(held)

    def hold_for_review(self, order: Order, reason: str, at: datetime, member_id: str | None = None) -> None:
        held = self.memory.items("held_for_review")
        if (order.shop, order.order_id) not in held:
            held[(order.shop, order.order_id)] = HeldForReview(order, reason, at, member_id)
            if member_id is not None:
                self.memory.items("review_tasks")[(order.shop, order.order_id)] = "pending"

    def mark_review_task(self, held: HeldForReview, state: str) -> None:
        self.memory.items("review_tasks")[(held.order.shop, held.order.order_id)] = state

    def review_tasks_pending(self) -> list[HeldForReview]:
        """What the table's stream would bring crm_sync (the fake's view of it)."""
        tasks, held = self.memory.items("review_tasks"), self.memory.items("held_for_review")
        return [held[key] for key, state in tasks.items() if state == "pending"]

    def held_for_review(self) -> list[HeldForReview]:
        return sorted(self.memory.items("held_for_review").values(), key=lambda held: held.held_at)
