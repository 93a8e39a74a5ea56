"""The table's stream as crm_sync sees it: members whose item changed or whose push was asked for again, and sent
offers whose CRM Task is pending.

The only module that knows the stream's images: item types, attribute names and the offer record's sort key.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel

from loyalty.offers.records import SendRecord, Status


def stream_changes(event: dict[str, Any]) -> tuple[set[str], list[SendRecord]]:
    """Member ids whose member item changed or whose CRM state asks for a push again, and sent offers waiting
    for their Task (the template's filter passes only those kinds of record)."""
    members: set[str] = set()
    sent: list[SendRecord] = []
    for record in parse(event=event, model=DynamoDBStreamModel).Records:
        image = record.dynamodb.NewImage if record.dynamodb else None
        if not isinstance(image, dict):
            continue
        if image.get("type") == "member" or (image.get("type") == "crm_state" and image.get("push_requested")):
            members.add(str(image["member_id"]))
        elif image.get("type") == "offer_send" and image.get("task_state") == "pending":
            sent.append(_sent_offer(image))
    return members, sent


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
