"""The ledger's items and the states they hold: member, order and entry items to and from loyalty.ledger's
value types, with the index keys each item carries (a lot's expiry date, a pending order's release date)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from loyalty.adapters.dynamodb.models import (
    ENTRY_PREFIX,
    MEMBER_SK,
    ORDER_SK,
    REDEMPTION_PREFIX,
    REWARD_USES_PREFIX,
    EntryItem,
    MemberItem,
    OrderItem,
    RedemptionItem,
    RewardUsesItem,
    member_pk,
    order_pk,
    release_due,
)
from loyalty.ledger.model import Entry, EntryKind
from loyalty.ledger.state import (
    COUNTERS,
    ENROLMENT_FIELDS,
    UNUSED,
    LineState,
    MemberState,
    OfferGrant,
    OrderState,
    OrderStatus,
    Redemption,
    RedemptionStatus,
    RewardUses,
)
from loyalty.programme.tiers import TierOverride


def history_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_item(entry: Entry) -> EntryItem:
    pk = member_pk(entry.member_id)
    item = EntryItem(
        pk,
        ENTRY_PREFIX + entry.source_key,
        hist_sk=f"{history_key(entry.created_at)}#{entry.source_key}",
        **{name: value for name, value in entry.model_dump(exclude_defaults=True).items() if name in _ENTRY_FIELDS},
    )
    item.kind = entry.kind.value
    for name in ("campaigns", "categories", "offers"):  # lists of text, absent when empty
        setattr(item, name, list(getattr(entry, name)) or None)
    item.value = str(entry.value) if entry.value is not None else None
    for name in ("expires_on", "tier_period_end", "valid_until", "placed_on"):
        value = getattr(entry, name)
        setattr(item, name, value.isoformat() if value is not None else None)
    if entry.lot_end is not None and entry.expires_on is not None:  # the expiry job finds the lot by its date
        item.due_pk = f"EXPIRE#{(entry.expires_on + timedelta(days=1)).isoformat()}"
        item.due_sk = f"{item.pk}#{item.sk}"
    return item


_ENTRY_FIELDS = frozenset(  # stored as they are; the others are converted in entry_item
    [
        "member_id",
        "source_key",
        "created_at",
        "points",
        "pending",
        "lifetime",
        "qualifying",
        "reason",
        "source",
        "order_key",
        "actor",
        "lines",
        "lot_start",
        "lot_end",
        "unrecovered",
        "month",
        "tier",
        "tier_reached",
        "base_points",
        "discounted",
        "currency",
    ]
)


def entry_of(item: EntryItem) -> Entry:
    return Entry(
        member_id=item.member_id,
        source_key=item.source_key,
        kind=EntryKind(item.kind),
        created_at=item.created_at,
        points=int(item.points),
        pending=int(item.pending),
        lifetime=int(item.lifetime),
        qualifying=int(item.qualifying),
        reason=item.reason,
        source=item.source,
        order_key=item.order_key,
        actor=item.actor,
        campaigns=tuple(item.campaigns or ()),
        lines={k: int(v) for k, v in item.lines.as_dict().items()} if item.lines is not None else None,
        lot_start=_int(item.lot_start),
        lot_end=_int(item.lot_end),
        expires_on=_date(item.expires_on),
        unrecovered=int(item.unrecovered),
        month=item.month,
        tier=item.tier,
        tier_reached=item.tier_reached,
        tier_period_end=_date(item.tier_period_end),
        valid_until=_date(item.valid_until),
        placed_on=_date(item.placed_on),
        base_points=_int(item.base_points),
        value=Decimal(item.value) if item.value is not None else None,
        currency=item.currency,
        discounted=item.discounted,
        categories=tuple(item.categories or ()),
        offers=tuple(item.offers or ()),
    )


def member_item(member: MemberState) -> MemberItem:
    """A new member's item (loyalty.ledger.state.as_enrolled: every counter at zero)."""
    fields = {name: getattr(member, name) for name in ENROLMENT_FIELDS}
    return MemberItem(
        member_pk(member.member_id),
        MEMBER_SK,
        member_id=member.member_id,
        enrolled_at=member.enrolled_at,
        qualifying={},
        offers={},
        **fields,
    )


def member_state(item: MemberItem) -> MemberState:
    override = item.tier_override.as_dict() if item.tier_override is not None else None
    offers = item.offers.as_dict() if item.offers is not None else {}
    return MemberState(
        member_id=item.member_id,
        enrolled_at=item.enrolled_at,
        email=item.email,
        first_name=item.first_name,
        last_name=item.last_name,
        phone=item.phone,
        locale=item.locale,
        email_consent=item.email_consent,
        email_consent_at=item.email_consent_at,
        sms_consent=item.sms_consent,
        sms_consent_at=item.sms_consent_at,
        crm_contact_id=item.crm_contact_id,
        birthdate=_date(item.birthdate),
        profile_updated_at=item.profile_updated_at,
        last_activity=item.last_activity,
        **{name: int(getattr(item, name)) for name in COUNTERS},
        lot_expiry_max=_date(item.lot_expiry_max),
        qualifying={
            month: int(points) for month, points in (item.qualifying.as_dict() if item.qualifying else {}).items()
        },
        qualifying_version=int(item.qualifying_version or 0),
        tier=item.tier,
        tier_period_end=_date(item.tier_period_end),
        tier_changed_at=item.tier_changed_at,
        erased_at=item.erased_at,
        email_parked=item.email_parked,
        email_parked_reason=item.email_parked_reason,
        blocked_reason=item.blocked_reason,
        blocked_at=item.blocked_at,
        blocked_by=item.blocked_by,
        joined_via=item.joined_via,
        terms_version=item.terms_version,
        leaving_on=_date(item.leaving_on),
        tier_override=(
            TierOverride(
                tier=str(override["tier"]),
                valid_until=date.fromisoformat(str(override["valid_until"])),
                reason=str(override["reason"]),
                actor=str(override["actor"]),
            )
            if override
            else None
        ),
        segment=item.segment,
        segment_reason=item.segment_reason,
        segment_rfm=item.segment_rfm,
        segment_on=_date(item.segment_on),
        segment_at=item.segment_at,
        offers={key: _grant(raw) for key, raw in offers.items()},
    )


def override_value(override: TierOverride) -> dict[str, str]:
    return {
        "tier": override.tier,
        "valid_until": override.valid_until.isoformat(),
        "reason": override.reason,
        "actor": override.actor,
    }


def grant_value(grant: OfferGrant) -> dict[str, Any]:
    value: dict[str, Any] = {
        "code": grant.code,
        "valid_from": grant.valid_from.isoformat(),
        "valid_until": grant.valid_until.isoformat(),
        "multiplier": str(grant.multiplier) if grant.multiplier is not None else None,
        "bonus_points": grant.bonus_points,
        "used": grant.used,
    }
    return {name: v for name, v in value.items() if v is not None}


def _grant(raw: dict[str, Any]) -> OfferGrant:
    return OfferGrant(
        code=str(raw["code"]),
        valid_from=date.fromisoformat(str(raw["valid_from"])),
        valid_until=date.fromisoformat(str(raw["valid_until"])),
        multiplier=Decimal(str(raw["multiplier"])) if raw.get("multiplier") else None,
        bonus_points=int(raw["bonus_points"]) if raw.get("bonus_points") else None,
        used=str(raw["used"]) if raw.get("used") else None,
    )


def order_item(state: OrderState) -> OrderItem:
    item = OrderItem(
        order_pk(state.order_key),
        ORDER_SK,
        member_id=state.member_id,
        status=state.status.value if state.status is not None else None,
        earned=state.earned,
        left=state.left,
        qualifying_earned=state.qualifying_earned,
        qualifying_left=state.qualifying_left,
        qualifying_month=state.qualifying_month,
        earned_on=state.earned_on.isoformat() if state.earned_on else None,
        release_on=state.release_on.isoformat() if state.release_on else None,
        currency=state.currency,
        lines={
            k: {"q": s.quantity, "ql": s.quantity_left, "p": s.points, "pl": s.points_left}
            | ({"v": str(s.value), "vl": str(s.value_left)} if s.value else {})
            for k, s in state.lines.items()
        },
        refunds=set(state.refunds) or None,
        parked={refund: dict(lines) for refund, lines in state.parked.items()},
        version=state.version,
    )
    if state.release_on is not None:  # the release job finds pending orders due by its date, however old
        item.due_pk, item.due_sk = release_due(state.order_key, state.release_on)
    return item


def _line_state(stored: dict[str, Any]) -> LineState:
    value, value_left = Decimal(stored.get("v", 0)), Decimal(stored.get("vl", 0))
    return LineState(int(stored["q"]), int(stored["ql"]), int(stored["p"]), int(stored["pl"]), value, value_left)


def order_state(order_key: str, item: OrderItem) -> OrderState:
    lines = item.lines.as_dict() if item.lines is not None else {}
    parked = item.parked.as_dict() if item.parked is not None else {}
    return OrderState(
        order_key=order_key,
        version=int(item.version or 0),
        member_id=item.member_id,
        status=OrderStatus(item.status) if item.status else None,
        earned=int(item.earned or 0),
        left=int(item.left or 0),
        qualifying_earned=int(item.qualifying_earned or 0),
        qualifying_left=int(item.qualifying_left or 0),
        qualifying_month=item.qualifying_month,
        earned_on=_date(item.earned_on),
        release_on=_date(item.release_on) or _release_day(item),
        currency=item.currency,
        lines={k: _line_state(s) for k, s in lines.items()},
        refunds=frozenset(item.refunds or ()),
        parked={refund: {line: int(q) for line, q in dict(lines_).items()} for refund, lines_ in parked.items()},
    )


def _release_day(item: OrderItem) -> date | None:
    """The release day of a pending order stored before orders kept it apart from their index key (then on the
    due index as RELEASE#<date>)."""
    day = item.due_pk.removeprefix("RELEASE#") if item.due_pk else ""
    return _date(day) if len(day) == len("YYYY-MM-DD") else None


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


def redemption_item(redemption: Redemption) -> RedemptionItem:
    """The redemption; while its code is unused, on the due index on the day the code ends (CODE_END#<day>)."""
    pk, sk = member_pk(redemption.member_id), REDEMPTION_PREFIX + redemption.redemption_id
    open_code = redemption.valid_until is not None and redemption.status in UNUSED
    ends = redemption.valid_until + timedelta(days=1) if open_code and redemption.valid_until else None
    return RedemptionItem(
        pk,
        sk,
        due_pk=f"CODE_END#{ends.isoformat()}" if ends else None,
        due_sk=f"{pk}#{sk}" if ends else None,
        member_id=redemption.member_id,
        reward_id=redemption.reward_id,
        kind=redemption.kind,
        shop=redemption.shop,
        points=redemption.points,
        status=redemption.status.value,
        created_at=redemption.created_at,
        updated_at=redemption.updated_at,
        request_hash=redemption.request_hash,
        code=redemption.code,
        valid_until=redemption.valid_until.isoformat() if redemption.valid_until else None,
        actor=redemption.actor,
        reason=redemption.reason,
        order_key=redemption.order_key,
        shop_code_id=redemption.shop_code_id,
        apply_url=redemption.apply_url,
        task_state=redemption.task_state,
    )


def redemption_of(item: RedemptionItem) -> Redemption:
    return Redemption(
        redemption_id=item.sk.removeprefix(REDEMPTION_PREFIX),
        member_id=item.member_id,
        reward_id=item.reward_id,
        kind=item.kind,
        shop=item.shop,
        points=int(item.points),
        status=RedemptionStatus(item.status),
        created_at=item.created_at,
        updated_at=item.updated_at,
        request_hash=item.request_hash,
        code=item.code,
        valid_until=date.fromisoformat(item.valid_until) if item.valid_until else None,
        actor=item.actor,
        reason=item.reason,
        order_key=item.order_key,
        shop_code_id=item.shop_code_id,
        apply_url=item.apply_url,
        task_state=item.task_state,
    )


def uses_item(member_id: str, uses: RewardUses) -> RewardUsesItem:
    return RewardUsesItem(
        member_pk(member_id),
        REWARD_USES_PREFIX + uses.reward_id,
        months=dict(uses.months),
        lifetime=uses.lifetime,
        version=uses.version,
    )


def uses_of(item: RewardUsesItem) -> RewardUses:
    months = item.months.as_dict() if item.months is not None else {}
    return RewardUses(
        reward_id=item.sk.removeprefix(REWARD_USES_PREFIX),
        months={month: int(count) for month, count in months.items()},
        lifetime=int(item.lifetime),
        version=int(item.version),
    )
