"""SES bounce and complaint events (through SNS) turn the member's e-mail consent off."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import SnsModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.adapters.dynamodb_directory import Directory
from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.adapters.dynamodb_models import bind_table
from loyalty.adapters.ses_feedback import parse_ses_notification
from loyalty.consent_feedback import apply_email_feedback
from loyalty.observability import logger, metrics
from loyalty.program import load_program
from loyalty.settings import TableSettings, load_settings


@cache
def _services() -> tuple[Ledger, Directory]:
    bind_table(load_settings(TableSettings).table)
    return Ledger(load_program()), Directory()


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    ledger, directory = _services()
    notices = [
        notice
        for record in parse(event=event, model=SnsModel).Records
        for notice in parse_ses_notification(str(record.Sns.Message))
    ]
    changed = apply_email_feedback(ledger, directory, notices)
    metrics.add_metric(name="EmailOptOuts", unit="Count", value=changed)
    return {"notices": len(notices), "optedOut": changed}
