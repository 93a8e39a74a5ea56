"""The table's stream as crm_sync sees it: members whose item changed or whose push was asked for again, and sent
offers and orders held for review whose CRM Task is pending.

The only module that knows the stream's images: item types, attribute names and the offer record's sort key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel

from loyalty.offers.records import SendRecord, Status
from loyalty.ports.directory import HeldForReview
from loyalty.programme.orders import Order


def stream_changes(event: dict[str, Any]) -> tuple[set[str], list[SendRecord], list[HeldForReview]]:
    """Member ids whose member item changed or whose CRM state asks for a push again, sent offers waiting for
    their Task, and orders held for review waiting for theirs (the template's filter passes only those)."""
    members: set[str] = set()
    sends: list[SendRecord] = []
    held: list[HeldForReview] = []
    for record in parse(event=event, model=DynamoDBStreamModel).Records:
        image = record.dynamodb.NewImage if record.dynamodb else None
        if not isinstance(image, dict):
            continue
        if image.get("type") == "member" or (image.get("type") == "crm_state" and image.get("push_requested")):
            members.add(str(image["member_id"]))
        elif image.get("type") == "offer_send" and image.get("task_state") == "pending":
            sends.append(_sent_offer(image))
        elif image.get("type") == "review_hold" and image.get("task_state") == "pending":
            held.append(_held(image))
    return members, sends, held


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
