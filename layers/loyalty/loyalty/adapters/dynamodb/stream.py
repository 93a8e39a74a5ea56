"""The table's stream as its readers see it: for crm_sync, members whose item changed or whose push was asked for
again, and sent offers and orders held for review whose CRM Task is pending; for shop_customers, members' tiers,
segments and shop customers before and after each change; for reward_codes, pending redemptions; for kpis, new
members, ledger entries, NPS answers and offers decided.

The only module that knows the stream's images: item types, attribute names and the offer record's sort key.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel

from loyalty.adapters.dynamodb.ledger_items import entry_of
from loyalty.adapters.dynamodb.models import (
    EntryItem,
    HeldOrderItem,
    LoyaltyItem,
    MemberItem,
    NpsAnswerItem,
    OfferSendItem,
)
from loyalty.adapters.dynamodb.offer_records import send_record
from loyalty.adapters.dynamodb.surveys import nps_answer
from loyalty.ledger.model import Entry
from loyalty.offers.records import SendRecord, Status
from loyalty.ports.crm import RewardToArrange
from loyalty.ports.directory import HeldForReview
from loyalty.ports.kpis import MemberMove
from loyalty.ports.shops import MemberImages, MemberTags
from loyalty.ports.surveys import NpsAnswer
from loyalty.programme.orders import Order
from loyalty.programme.tiers import TierOverride


def stream_changes(
    event: dict[str, Any],
) -> tuple[set[str], list[SendRecord], list[HeldForReview], list[RewardToArrange], list[Entry]]:
    """Member ids whose member item changed or whose CRM state asks for a push again, sent offers waiting for
    their Task, orders held for review and experiences to arrange waiting for theirs, and new ledger entries for
    the journal (the template's filter passes only those)."""
    members: set[str] = set()
    sends: list[SendRecord] = []
    held: list[HeldForReview] = []
    arranged: list[RewardToArrange] = []
    entries: list[Entry] = []
    parsed = parse(event=event, model=DynamoDBStreamModel).Records
    for raw, record in zip(event.get("Records", []), parsed, strict=True):
        image = record.dynamodb.NewImage if record.dynamodb else None
        if not isinstance(image, dict):
            continue
        if image.get("type") == "entry":  # written once, never changed: an INSERT
            item = _item((raw.get("dynamodb") or {}).get("NewImage"))
            if record.eventName == "INSERT" and isinstance(item, EntryItem):
                entries.append(entry_of(item))
            continue
        if image.get("type") == "member" or (image.get("type") == "crm_state" and image.get("push_requested")):
            members.add(str(image["member_id"]))
        elif image.get("type") == "offer_send" and image.get("task_state") == "pending":
            sends.append(_sent_offer(image))
        elif image.get("type") == "review_hold" and image.get("task_state") == "pending":
            held.append(_held(image))
        elif image.get("type") == "redemption" and image.get("task_state") == "pending":
            arranged.append(_to_arrange(image))
    return members, sends, held, arranged, entries


def kpi_changes(event: dict[str, Any]) -> KpiChanges:
    """For kpis, in one pass over the batch (the template's filter passes only these): the members who joined
    (member id, when), the ledger entries written (in order; an entry is written once and never changed, so only an
    INSERT carries one), the NPS answers given, each with the answer it replaced (None for a first answer), the
    offers decided (each record as it is now: a decision may come again with its CRM Task's state), the
    members who joined or whose earned tier or segment changed, and the guest orders held for claiming."""
    enrolled: list[tuple[str, datetime]] = []
    entries: list[Entry] = []
    answers: list[tuple[NpsAnswer, NpsAnswer | None]] = []
    offers: list[SendRecord] = []
    moves: list[MemberMove] = []
    guests: list[tuple[str, Order]] = []
    for record in event.get("Records", []):
        change, inserted = record.get("dynamodb") or {}, record.get("eventName") == "INSERT"
        item = _item(change.get("NewImage"))
        if inserted and isinstance(item, MemberItem):
            enrolled.append((item.member_id, item.enrolled_at))
            moves.append(
                MemberMove(item.member_id, "joined", item.enrolled_at, True, None, item.tier, None, item.segment)
            )
        elif isinstance(item, MemberItem):
            before = _item(change.get("OldImage"))
            if isinstance(before, MemberItem):
                moves += _moves(before, item)
        elif inserted and isinstance(item, EntryItem):
            entries.append(entry_of(item))
        elif isinstance(item, NpsAnswerItem) and record.get("eventName") in ("INSERT", "MODIFY"):
            before = _item(change.get("OldImage"))
            answers.append((nps_answer(item), nps_answer(before) if isinstance(before, NpsAnswerItem) else None))
        elif isinstance(item, OfferSendItem):
            before = _item(change.get("OldImage"))
            if not (isinstance(before, OfferSendItem) and before.status == item.status):  # a decision, not its Task
                offers.append(send_record(item))
        elif inserted and isinstance(item, HeldOrderItem):  # a guest's order: the shopper is not a member
            guests.append((item.pk.removeprefix("HELD#"), Order.model_validate_json(item.order)))
    return KpiChanges(enrolled, entries, answers, offers, moves, guests)


def _moves(before: MemberItem, after: MemberItem) -> list[MemberMove]:
    """A member's earned tier and segment changes between two images of their item (each its own move, keyed and
    dated by when it was decided)."""
    found = []
    if before.tier != after.tier:
        at = after.tier_changed_at or after.last_activity or after.enrolled_at
        found.append(MemberMove(after.member_id, f"tier#{at.isoformat()}", at, False, before.tier, after.tier,
                                after.segment, after.segment))  # fmt: skip
    if before.segment != after.segment:
        at = after.segment_at or after.last_activity or after.enrolled_at
        found.append(MemberMove(after.member_id, f"segment#{at.isoformat()}", at, False, after.tier, after.tier,
                                before.segment, after.segment))  # fmt: skip
    return found


@dataclass(frozen=True)
class KpiChanges:
    enrolled: list[tuple[str, datetime]]
    entries: list[Entry]
    answers: list[tuple[NpsAnswer, NpsAnswer | None]]
    offers: list[SendRecord]
    moves: list[MemberMove]
    guest_orders: list[tuple[str, Order]]  # (the shopper's hashed e-mail, the order)


def _item(image: Any) -> LoyaltyItem | None:
    """The item a stream image (DynamoDB JSON) holds, as its model."""
    return LoyaltyItem.from_raw_data(image) if isinstance(image, dict) and image else None


def _to_arrange(image: dict[str, Any]) -> RewardToArrange:
    return RewardToArrange(
        member_id=str(image["member_id"]),
        redemption_id=str(image["sk"]).removeprefix("REDEMPTION#"),
        reward_id=str(image["reward_id"]),
        points=int(image["points"]),
        redeemed_at=datetime.fromisoformat(str(image["created_at"]).replace("Z", "+00:00")),
    )


def _held(image: dict[str, Any]) -> HeldForReview:
    return HeldForReview(
        order=Order.model_validate_json(str(image["order"])),
        reason=str(image["reason"]),
        held_at=datetime.fromisoformat(str(image["held_at"]).replace("Z", "+00:00")),
        member_id=str(image["member_id"]),
    )


def _sent_offer(image: dict[str, Any]) -> SendRecord:
    return SendRecord(
        member_id=str(image["member_id"]),
        dedup=str(image["sk"]).removeprefix("SEND#").rsplit("#", 1)[0],
        channel=str(image["channel"]),
        status=Status.SENT,
        request=str(image.get("request", "")),
        decided_at=datetime.fromisoformat(str(image["decided_at"]).replace("Z", "+00:00")),
        trigger=str(image["trigger"]),
        template_key=str(image["template_key"]),
        offer_code=image.get("offer_code"),
        language=image.get("language"),
        subject=image.get("subject"),
    )


def redemption_of(image: dict[str, Any]) -> tuple[str, str] | None:
    """(member id, redemption id) of a stream record's new image of a redemption (Powertools' deserialised
    image), else None."""
    if image.get("type") != "redemption":
        return None
    return str(image["member_id"]), str(image["sk"]).removeprefix("REDEMPTION#")


def member_images(event: dict[str, Any]) -> list[MemberImages]:
    """Each change of a member item in a stream batch, in order: its tier, override, segment and shop customers
    before and after (the template's filter passes member items only)."""
    changes = []
    for record in parse(event=event, model=DynamoDBStreamModel).Records:
        change = record.dynamodb
        if change is None or not isinstance(change.NewImage, dict) or change.NewImage.get("type") != "member":
            continue
        before = _member_tags(change.OldImage) if isinstance(change.OldImage, dict) else None
        changes.append(MemberImages(str(change.SequenceNumber), before, _member_tags(change.NewImage)))
    return changes


def _member_tags(image: dict[str, Any]) -> MemberTags:
    override = image.get("tier_override")
    customers = image.get("customers") or set()
    return MemberTags(
        member_id=str(image["member_id"]),
        tier=image.get("tier"),
        override=(
            TierOverride(
                tier=str(override["tier"]),
                valid_until=date.fromisoformat(str(override["valid_until"])),
                reason=str(override.get("reason", "")),
                actor=str(override.get("actor", "")),
            )
            if isinstance(override, dict) and override.get("tier")
            else None
        ),
        segment=image.get("segment"),
        customers=frozenset(
            (shop, customer) for shop, _, customer in (str(c).partition("#") for c in customers) if customer
        ),
    )


def _shop_and_customer(linked: object) -> tuple[str, str, str]:
    """A member item's "<shop>#<customer id>" as (shop, "#", customer id)."""
    return str(linked).partition("#")
