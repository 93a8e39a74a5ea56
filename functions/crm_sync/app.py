"""The table's stream to Salesforce: changed members' loyalty fields pushed to their Contacts, coalesced; sent offers,
orders held for review and experiences to arrange recorded as Tasks; new ledger entries in the Contacts'
transaction journal. Daily (a schedule, {"job": "journal_trim"}): journal records older than its window deleted."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger, metrics
from loyalty.wiring import services


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if event.get("job") == "journal_trim":  # the daily schedule: the journal keeps its window
        return {"job": "journal_trim", "changed": services.crm_sync().trim_journal()}
    members, sent, held, arranged, entries = services.stream_changes(event)
    services.crm_sync().sync(members, sent, held, arranged, entries)
    return {"batchItemFailures": []}
