"""Enrolling a member, from whichever door they come in (a shop, a guest order's claim, the CRM)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from loyalty.ledger.service import Ledger
from loyalty.observability import logger
from loyalty.ports.directory import Directory


def new_member_id() -> str:
    return "mbr_" + uuid.uuid4().hex[:20]


def enrol_member(
    ledger: Ledger,
    directory: Directory,
    email: str | None,
    profile: dict[str, Any],
    member_ids: Callable[[], str] = new_member_id,
    via: str | None = None,
) -> str:
    """Enrol (or find, by e-mail) the member, joining ``via`` a shop or "crm", give the signup bonus, and claim
    held guest orders.

    Every step is idempotent, so a retried enrolment completes what a failed one started."""
    member_id = ledger.enrol(member_ids(), email, via, **profile)
    if ledger.rules.bonuses.signup:
        ledger.bonus(member_id, "signup", member_id)
    if email:
        for order in directory.held_orders(email, ledger.clock()):
            ledger.accrue(member_id, order)
            directory.drop_held_order(email, order)
            logger.info("guest order claimed", order_id=order.order_id, member_id=member_id)
    return member_id
