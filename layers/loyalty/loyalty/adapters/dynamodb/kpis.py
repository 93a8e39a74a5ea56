"""The monthly figures on the table: KPI#<YYYY-MM> holds a GROUP#<group> item of counters per group, and a
COUNTED#<entry> marker per entry counted, written in one transaction with the counters (so a stream delivering an
entry again adds nothing)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import timedelta

from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from loyalty.adapters.dynamodb.models import (
    FirstPurchaseItem,
    KpiCountedItem,
    KpiItem,
    LoyaltyItem,
    condition_failed,
    member_pk,
    table_connection,
)
from loyalty.clock import now

COUNTED_KEPT = timedelta(days=40)  # the stream keeps records 24 hours: a marker is needed far less long
GROUP_PREFIX = "GROUP#"
FIRST_PURCHASE_SK = "FIRST_PURCHASE"
CONFLICT_TRIES = 6


def _pk(month: str) -> str:
    return f"KPI#{month}"


class DynamoDBKpiStore:
    def add(self, counted: str, month: str, groups: Sequence[str], counts: Mapping[str, int]) -> bool:
        marker = KpiCountedItem(_pk(month), f"COUNTED#{counted}", ttl=int((now() + COUNTED_KEPT).timestamp()))
        added = [getattr(KpiItem, name).add(value) for name, value in sorted(counts.items()) if value]
        for attempt in range(CONFLICT_TRIES):
            try:
                with TransactWrite(connection=table_connection()) as transaction:
                    transaction.save(marker, condition=KpiCountedItem.pk.does_not_exist())
                    for group in dict.fromkeys(groups):
                        item = KpiItem(_pk(month), f"{GROUP_PREFIX}{group}")
                        transaction.update(item, actions=[KpiItem.type.set(KpiItem), *added])
                return True
            except TransactWriteError as error:
                reasons = [reason.code if reason else None for reason in (error.cancellation_reasons or [])]
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    return False  # counted before
                if "TransactionConflict" not in reasons or attempt == CONFLICT_TRIES - 1:
                    raise  # the stream retries the batch: what was counted is skipped then
                time.sleep(0.01 * 2**attempt)  # another entry of the month was counted at the same moment
        raise AssertionError("unreachable")

    def first_purchase(self, member_id: str, month: str) -> str:
        item = FirstPurchaseItem(member_pk(member_id), FIRST_PURCHASE_SK, month=month)
        try:
            item.save(condition=FirstPurchaseItem.pk.does_not_exist())
        except PutError as error:
            if not condition_failed(error):
                raise
            noted = FirstPurchaseItem.get(member_pk(member_id), FIRST_PURCHASE_SK, consistent_read=True)
            return str(noted.month)
        return month

    def month(self, month: str) -> dict[str, dict[str, int]]:
        figures: dict[str, dict[str, int]] = {}
        for item in LoyaltyItem.query(_pk(month), LoyaltyItem.sk.startswith(GROUP_PREFIX), consistent_read=True):
            if isinstance(item, KpiItem):
                counts = item.attribute_values
                figures[item.sk.removeprefix(GROUP_PREFIX)] = {
                    name: int(value) for name, value in counts.items() if name in KPI_ATTRIBUTES and value is not None
                }
        return figures


KPI_ATTRIBUTES = frozenset(name for name in KpiItem.get_attributes() if name not in LoyaltyItem.get_attributes())
