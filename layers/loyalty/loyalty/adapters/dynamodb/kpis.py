"""The monthly figures on the table: KPI#<YYYY-MM> holds a GROUP#<group> item of counters per group, and a
COUNTED#<entry> marker per entry counted, written in one transaction with the counters (so a stream delivering an
entry again adds nothing).

A figure's name is the counter's attribute name (``orders``, ``order_value#SEK``): the figures grow with the
currencies and offer kinds without a new model, so the items are written and read through the low-level client
(exact decimals: money is added as DynamoDB numbers, never floats)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from loyalty.adapters.dynamodb.ledger_items import entry_of
from loyalty.adapters.dynamodb.models import (
    EntryItem,
    LoyaltyItem,
    MemberItem,
    MemberMonthsItem,
    NpsAnswerItem,
    OfferSendItem,
    member_pk,
    table_connection,
)
from loyalty.adapters.dynamodb.offer_records import send_record
from loyalty.adapters.dynamodb.surveys import nps_answer
from loyalty.clock import now
from loyalty.ledger.model import Entry
from loyalty.offers.records import SendRecord
from loyalty.ports.kpis import CLOSE, PROGRAMME, Count, Exposure, MemberMonths, Noted, offer_order_counts
from loyalty.ports.surveys import NpsAnswer

COUNTED_KEPT = timedelta(days=40)  # the stream keeps records 24 hours: a marker is needed far less long
GROUP_PREFIX = "GROUP#"
MEMBER_MONTHS_SK = "KPI_MONTHS"
EXPOSURE_PREFIX = "KPI_OFFER#"
EXPOSURE_TYPE = "kpi_offer"
CONFLICT_TRIES = 6
KPI_TYPE = "kpi"
COUNTED_TYPE = "kpi_counted"
MEMBER_MONTHS_TYPE = "kpi_member"
_KEYS = frozenset(["pk", "sk", "type"])


def _pk(month: str) -> str:
    return f"KPI#{month}"


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": sk}}


def _number(value: Count) -> dict[str, str]:
    return {"N": str(value)}


def _counted(text: str) -> Count:
    value = Decimal(text)
    return int(value) if value == value.to_integral_value() else value


class DynamoDBKpiStore:
    def add(self, counted: str, month: str, groups: Sequence[str], counts: Mapping[str, Count]) -> bool:
        return self.add_each(counted, month, {group: counts for group in groups})

    def add_each(self, counted: str, month: str, counts: Mapping[str, Mapping[str, Count]]) -> bool:
        table = LoyaltyItem.Meta.table_name
        items = [_marker(table, month, counted)]
        items += [{"Update": _counters(table, month, group, added)} for group, added in counts.items()]
        return _transact(items) is None

    def member_months(self, member_ids: Iterable[str]) -> dict[str, MemberMonths]:
        ids = sorted(set(member_ids))
        keys = [(member_pk(member_id), MEMBER_MONTHS_SK) for member_id in ids]
        found = {
            item.pk.removeprefix(member_pk("")): MemberMonths(
                item.active, item.bought, item.first_bought, item.tier, item.segment, int(item.held or 0), item.latest
            )
            for item in (MemberMonthsItem.batch_get(keys, consistent_read=True) if keys else ())
        }
        return {member_id: found.get(member_id, MemberMonths()) for member_id in ids}

    def note_member(
        self,
        member_id: str,
        read: MemberMonths,
        noted: MemberMonths,
        counts: Mapping[tuple[str, str], Mapping[str, Count]],
        marker: tuple[str, str] | None = None,
    ) -> Noted:
        table = LoyaltyItem.Meta.table_name
        items: list[dict[str, Any]] = [] if marker is None else [_marker(table, *marker)]
        key = _key(member_pk(member_id), MEMBER_MONTHS_SK)
        condition = _as_read(read)
        if noted == read:  # nothing to note: the counts still depend on the note staying as read
            items.append({"ConditionCheck": {"TableName": table, "Key": key, **condition}})
        else:
            item = {**key, "type": {"S": MEMBER_MONTHS_TYPE}, "held": _number(noted.held)}
            item |= {name: {"S": value} for name, value in asdict(noted).items() if isinstance(value, str)}
            items.append({"Put": {"TableName": table, "Item": item, **condition}})
        items += [
            {"Update": _counters(table, month, group, added)}
            for (month, group), added in sorted(counts.items())
            if any(added.values())
        ]
        failed = _transact(items)
        if failed is None:
            return Noted.WRITTEN
        return Noted.COUNTED_BEFORE if marker is not None and failed == 0 else Noted.CHANGED

    def expose(self, member_id: str, exposure: Exposure) -> bool:
        table = LoyaltyItem.Meta.table_name
        item = {
            **_key(member_pk(member_id), f"{EXPOSURE_PREFIX}{exposure.dedup}"),
            "type": {"S": EXPOSURE_TYPE},
            "trigger": {"S": exposure.trigger},
            "arm": {"S": exposure.arm},
            "decided_at": {"S": exposure.decided_at.isoformat()},
            "until": {"S": exposure.until.isoformat()},
            "month": {"S": exposure.month},
            "orders": _number(0),
            "revenue": _number(0),
        }
        put = {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}
        counts = {f"offer_members#{exposure.trigger}#{exposure.arm}": 1}
        return _transact([{"Put": put}, {"Update": _counters(table, exposure.month, PROGRAMME, counts)}]) is None

    def exposures(self, member_id: str) -> list[Exposure]:
        page = table_connection().client.query(
            TableName=LoyaltyItem.Meta.table_name,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :offer)",
            ExpressionAttributeValues={":pk": {"S": member_pk(member_id)}, ":offer": {"S": EXPOSURE_PREFIX}},
            ConsistentRead=True,
        )  # a member is in a handful of measured offers a year: one page
        return [_exposure(item) for item in page.get("Items", [])]

    def convert(self, member_id: str, read: Exposure, order_key: str, revenue: Decimal) -> bool:
        table = LoyaltyItem.Meta.table_name
        total = read.revenue + revenue
        update = {
            "TableName": table,
            "Key": _key(member_pk(member_id), f"{EXPOSURE_PREFIX}{read.dedup}"),
            "UpdateExpression": "SET revenue = :total, orders = :orders ADD #counted :order",
            "ConditionExpression": "revenue = :read AND orders = :read_orders AND NOT contains(#counted, :key)",
            "ExpressionAttributeNames": {"#counted": "counted"},
            "ExpressionAttributeValues": {
                ":total": _number(total),
                ":orders": _number(read.orders + 1),
                ":order": {"SS": [order_key]},
                ":read": _number(read.revenue),
                ":read_orders": _number(read.orders),
                ":key": {"S": order_key},
            },
        }
        counts = offer_order_counts(read, revenue)
        return _transact([{"Update": update}, {"Update": _counters(table, read.month, PROGRAMME, counts)}]) is None

    def set_programme(self, month: str, counts: Mapping[str, Count]) -> None:
        if not counts:
            return
        named = sorted(counts.items())
        table_connection().client.update_item(
            TableName=LoyaltyItem.Meta.table_name,
            Key=_key(_pk(month), f"{GROUP_PREFIX}{PROGRAMME}"),
            UpdateExpression="SET #t = :t, " + ", ".join(f"#c{i} = :c{i}" for i in range(len(named))),
            ExpressionAttributeNames={"#t": "type", **{f"#c{i}": name for i, (name, _) in enumerate(named)}},
            ExpressionAttributeValues={
                ":t": {"S": KPI_TYPE},
                **{f":c{i}": _number(value) for i, (_, value) in enumerate(named)},
            },
        )

    def close(self, month: str, stocks: Mapping[str, Count]) -> None:
        item = {
            **_key(_pk(month), f"{GROUP_PREFIX}{CLOSE}"),
            "type": {"S": KPI_TYPE},
            **{name: _number(value) for name, value in stocks.items()},
        }
        table_connection().client.put_item(TableName=LoyaltyItem.Meta.table_name, Item=item)

    def month(self, month: str) -> dict[str, dict[str, Count]]:
        client = table_connection().client
        figures: dict[str, dict[str, Count]] = {}
        query: dict[str, Any] = {
            "TableName": LoyaltyItem.Meta.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :group)",
            "ExpressionAttributeValues": {":pk": {"S": _pk(month)}, ":group": {"S": GROUP_PREFIX}},
            "ConsistentRead": True,
        }
        while True:
            page = client.query(**query)
            for item in page.get("Items", []):
                group = item["sk"]["S"].removeprefix(GROUP_PREFIX)
                figures[group] = {
                    name: _counted(value["N"]) for name, value in item.items() if name not in _KEYS and "N" in value
                }
            if "LastEvaluatedKey" not in page:
                return figures
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _counters(table: str, month: str, group: str, counts: Mapping[str, Count]) -> dict[str, Any]:
    """The update that adds ``counts`` to the month's figures of the group (the item made if new)."""
    added = sorted((name, value) for name, value in counts.items() if value)
    names = {"#t": "type", **{f"#c{i}": name for i, (name, _) in enumerate(added)}}
    values = {":t": {"S": KPI_TYPE}, **{f":c{i}": _number(value) for i, (_, value) in enumerate(added)}}
    expression = "SET #t = :t" + (" ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(added))) if added else "")
    return {
        "TableName": table,
        "Key": _key(_pk(month), f"{GROUP_PREFIX}{group}"),
        "UpdateExpression": expression,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _marker(table: str, month: str, counted: str) -> dict[str, Any]:
    """The put of what was counted's marker in the month (kept a while: the stream redelivers for a day)."""
    expires = int((now() + COUNTED_KEPT).timestamp())
    item = {**_key(_pk(month), f"COUNTED#{counted}"), "type": {"S": COUNTED_TYPE}, "ttl": {"N": str(expires)}}
    return {"Put": {"TableName": table, "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}


def _as_read(read: MemberMonths) -> dict[str, Any]:
    """The condition that a member's note is still as read (every field; a missing one as its default)."""
    names: dict[str, str] = {}
    values: dict[str, Any] = {}
    conditions = []
    for n, (name, value) in enumerate(asdict(read).items()):
        names[f"#m{n}"] = name
        if name == "held":  # a note kept before points were noted has none: 0
            values[f":m{n}"] = _number(value)
            absent = f"attribute_not_exists(#m{n}) OR " if value == 0 else ""
            conditions.append(f"({absent}#m{n} = :m{n})")
        elif value is None:
            conditions.append(f"attribute_not_exists(#m{n})")
        else:
            conditions.append(f"#m{n} = :m{n}")
            values[f":m{n}"] = {"S": value}
    return {
        "ConditionExpression": " AND ".join(conditions),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
    }


def _transact(items: list[dict[str, Any]]) -> int | None:
    """Write ``items`` in one transaction; the index of the first item whose condition failed (nothing written),
    None once written; retried while it conflicts with another transaction on the same items."""
    client = table_connection().client
    for attempt in range(CONFLICT_TRIES):
        try:
            client.transact_write_items(TransactItems=items)
            return None
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [reason.get("Code") for reason in error.response.get("CancellationReasons", [])]
            if "ConditionalCheckFailed" in reasons:
                return reasons.index("ConditionalCheckFailed")  # counted before, or read before a change
            if "TransactionConflict" not in reasons or attempt == CONFLICT_TRIES - 1:
                raise  # the stream retries the batch: what was counted is skipped then
            time.sleep(0.01 * 2**attempt)  # another entry of the month was counted at the same moment
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class TableRecords:
    """What the audit recomputes the figures from."""

    entries: list[Entry]
    enrolled: list[datetime]
    answers: list[NpsAnswer]
    offers: list[SendRecord]
    exposures: list[Exposure]


def scan_ledger(segments: int = 4) -> TableRecords:
    """For the audit only: every ledger entry, member's enrolment time, NPS answer, offer decision and measured
    offer's exposure on the table, read with parallel Scans (``segments`` at once). Never used by the counting,
    which reads no member it was not handed."""

    def read(segment: int) -> TableRecords:
        found = TableRecords([], [], [], [], [])
        condition = LoyaltyItem.type.is_in(EntryItem, MemberItem, NpsAnswerItem, OfferSendItem)
        for item in LoyaltyItem.scan(condition, segment=segment, total_segments=segments):
            if isinstance(item, EntryItem):
                found.entries.append(entry_of(item))
            elif isinstance(item, MemberItem):
                found.enrolled.append(item.enrolled_at)
            elif isinstance(item, NpsAnswerItem):
                found.answers.append(nps_answer(item))
            elif isinstance(item, OfferSendItem):
                found.offers.append(send_record(item))
        pages = (
            table_connection()
            .client.get_paginator("scan")
            .paginate(
                TableName=LoyaltyItem.Meta.table_name,
                FilterExpression="#t = :offer",
                ExpressionAttributeNames={"#t": "type"},
                ExpressionAttributeValues={":offer": {"S": EXPOSURE_TYPE}},
                Segment=segment,
                TotalSegments=segments,
            )
        )
        found.exposures.extend(_exposure(item) for page in pages for item in page.get("Items", []))
        return found

    with ThreadPoolExecutor(max_workers=segments) as pool:
        parts = list(pool.map(read, range(segments)))
    return TableRecords(*([record for part in parts for record in getattr(part, name)] for name in _RECORDS))


_RECORDS = ("entries", "enrolled", "answers", "offers", "exposures")


def _exposure(item: dict[str, Any]) -> Exposure:
    return Exposure(
        dedup=item["sk"]["S"].removeprefix(EXPOSURE_PREFIX),
        trigger=item["trigger"]["S"],
        arm=item["arm"]["S"],
        decided_at=datetime.fromisoformat(item["decided_at"]["S"]),
        until=datetime.fromisoformat(item["until"]["S"]),
        month=item["month"]["S"],
        orders=int(item["orders"]["N"]),
        revenue=Decimal(item["revenue"]["N"]),
        counted=frozenset(item.get("counted", {}).get("SS", [])),
    )
