"""Who is who and what is what: shop customers linked to members, member profiles and consent, the product
catalogue, guest orders held until their e-mail enrols, orders held for review, and CRM requests already applied.

Implemented by loyalty.adapters.dynamodb.directory and loyalty.fakes.directory (tests/contract holds both).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple, Protocol

from loyalty.programme.orders import Order

PROFILE_FIELDS = ("first_name", "last_name", "phone", "locale", "crm_contact_id", "birthdate")
CONSENT_FIELDS = ("email_consent", "sms_consent")


class HeldForReview(NamedTuple):
    order: Order
    reason: str  # why it is beyond the bounds, for the operator
    held_at: datetime
    member_id: str | None = None  # the customer's member, if they are one: the Task goes on their Contact


class Directory(Protocol):
    def member_for_customer(self, shop: str, customer_id: str) -> str | None: ...

    def link_customer(self, shop: str, customer_id: str, member_id: str) -> None: ...

    def update_profile(self, member_id: str, changes: Mapping[str, Any], at: datetime) -> bool:
        """Set ``changes`` (names from PROFILE_FIELDS; birthdate as an ISO date) as of ``at``, unless a change
        made later was applied already; False then (nothing written). A new or changed birthday goes on the
        birthday index, entered on ``at``'s date."""
        ...

    def set_consent(self, member_id: str, field: str, value: bool, at: datetime) -> bool:
        """Set one consent flag (a name from CONSENT_FIELDS) as stated at ``at``, unless that flag was stated
        later already; False then (nothing written)."""
        ...

    def link_contact(self, member_id: str, contact_id: str | None) -> None:
        """Link the member to their CRM Contact (None drops a stale link)."""
        ...

    def request_seen(self, request_id: str) -> bool:
        """Whether the CRM request id was noted (``record_request``) before."""
        ...

    def record_request(self, request_id: str) -> bool:
        """Note a CRM request id; False if it was noted before (a repeat)."""
        ...

    def save_product(self, shop: str, product_id: str, title: str, categories: Iterable[str], at: datetime) -> bool:
        """Keep the product's categories as of ``at``, unless a newer version is stored; False then."""
        ...

    def categories_for(self, shop: str, product_ids: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Categories of the known products among ``product_ids`` (unknown ones are absent)."""
        ...

    def hold_guest_order(self, email: str, order: Order, until: datetime) -> None: ...

    def held_orders(self, email: str, now: datetime) -> list[Order]:
        """Guest orders of this e-mail whose hold lasts at least until ``now``."""
        ...

    def drop_held_order(self, email: str, order: Order) -> None: ...

    def shop_customers(self, shop: str) -> list[tuple[str, str]]:
        """Every customer of the shop linked to a member, as (customer id, member id): a shop that left the app
        (read once, for its erasure)."""
        ...

    def customer_links(self, member_id: str) -> list[str]:
        """The member's shop customers, as ``<shop>#<customer id>``."""
        ...

    def unlink_customer(self, shop: str, customer_id: str, member_id: str) -> None:
        """Drop the link of the shop's customer to the member (if it is theirs)."""
        ...

    def forget_person(self, member_id: str, email: str | None) -> int:
        """An erasure: the member's links to shop customers go, and the guest orders held for their e-mail; how
        many were removed."""
        ...

    def hold_for_review(self, order: Order, reason: str, at: datetime, member_id: str | None = None) -> None:
        """Keep an order beyond the programme's bounds, unapplied, for an operator (the same order once); with the
        customer's member, its CRM Task is pending (the table's stream brings it to crm_sync)."""
        ...

    def mark_review_task(self, held: HeldForReview, state: str) -> None:
        """Note what became of the held order's CRM Task: pushed, no_contact or refused."""
        ...

    def held_for_review(self) -> list[HeldForReview]:
        """Every order held for review, oldest first."""
        ...
