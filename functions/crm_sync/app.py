"""The table's stream to Salesforce: changed members' loyalty fields pushed to their Contacts, coalesced."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.adapters.dynamodb_crm_state import CrmStateStore
from loyalty.adapters.dynamodb_directory import Directory
from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.adapters.dynamodb_models import bind_table
from loyalty.adapters.dynamodb_offers import OfferStore
from loyalty.adapters.salesforce import JwtCredentials, SalesforceClient
from loyalty.crm_sync import CrmSync, SentOffer
from loyalty.observability import logger, metrics
from loyalty.program import load_program
from loyalty.settings import CrmSyncSettings, load_settings


@cache
def _sync() -> CrmSync:
    settings = load_settings(CrmSyncSettings)
    bind_table(settings.table)

    def credentials() -> JwtCredentials:
        secret = parameters.get_secret(settings.salesforce_secret_name, max_age=settings.secret_max_age_seconds)
        return JwtCredentials.from_secret(str(secret))

    client = SalesforceClient(credentials=credentials)
    return CrmSync(
        Ledger(load_program()),
        client,
        CrmStateStore(),
        Directory(),
        OfferStore(),
        create_contacts=settings.create_contacts,
    )


def changes(event: dict[str, Any]) -> tuple[set[str], list[SentOffer]]:
    """Members whose member item changed, and offers sent whose Task is pending (the filter sends only those)."""
    stream = parse(event=event, model=DynamoDBStreamModel)
    members = set()
    sends = []
    for record in stream.Records:
        image = record.dynamodb.NewImage if record.dynamodb else None
        if not isinstance(image, dict):
            continue
        if image.get("type") == "member":
            members.add(str(image["member_id"]))
        elif image.get("type") == "offer_send" and image.get("task_state") == "pending":
            sends.append(
                SentOffer(
                    member_id=str(image["member_id"]),
                    dedup=str(image["sk"]).removeprefix("SEND#").rsplit("#", 1)[0],
                    channel=str(image["channel"]),
                    template_key=str(image["template_key"]),
                    offer_code=image.get("offer_code"),
                    trigger=str(image["trigger"]),
                    language=image.get("language"),
                    subject=image.get("subject"),
                    sent_at=datetime.fromisoformat(str(image["decided_at"]).replace("Z", "+00:00")),
                )
            )
    return members, sends


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    members, sends = changes(event)
    sync = _sync()
    report = sync.push(members)
    tasks = sync.record_tasks(sends)
    report.tasks, report.tasks_not_recorded = tasks.tasks, tasks.tasks_not_recorded
    logger.info("crm push done", records=len(event.get("Records", [])), members=len(members), **vars(report))
    metrics.add_metric(name="CrmContactsPushed", unit="Count", value=report.pushed)
    metrics.add_metric(name="CrmMembersUnlinked", unit="Count", value=report.unlinked)
    return {"batchItemFailures": []}
