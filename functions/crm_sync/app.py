"""The table's stream to Salesforce: changed members' loyalty fields pushed to their Contacts, coalesced."""

from __future__ import annotations

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
from loyalty.adapters.salesforce import JwtCredentials, SalesforceClient
from loyalty.crm_sync import CrmSync
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
        Ledger(load_program()), client, CrmStateStore(), Directory(), create_contacts=settings.create_contacts
    )


def changed_members(event: dict[str, Any]) -> set[str]:
    """Member ids whose member item changed in this batch (the event source's filter sends only those)."""
    stream = parse(event=event, model=DynamoDBStreamModel)
    members = set()
    for record in stream.Records:
        image = record.dynamodb.NewImage if record.dynamodb else None
        if isinstance(image, dict) and image.get("type") == "member":
            members.add(str(image["member_id"]))
    return members


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    members = changed_members(event)
    report = _sync().push(members)
    logger.info("crm push done", records=len(event.get("Records", [])), members=len(members), **vars(report))
    metrics.add_metric(name="CrmContactsPushed", unit="Count", value=report.pushed)
    metrics.add_metric(name="CrmMembersUnlinked", unit="Count", value=report.unlinked)
    return {"batchItemFailures": []}
