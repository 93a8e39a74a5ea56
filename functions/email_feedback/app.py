"""SES bounce and complaint events (through SNS) turn the member's e-mail consent off."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import SnsModel
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.consent import apply_email_feedback
from loyalty.observability import logger, metrics
from loyalty.offers.ses_feedback import parse_ses_notification
from loyalty.wiring import services


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    records = parse(event=event, model=SnsModel).Records
    notices = [notice for record in records for notice in parse_ses_notification(str(record.Sns.Message))]
    ledger, directory = services.email_feedback()
    changed = apply_email_feedback(ledger.member_for_email, directory, notices)
    return {"notices": len(notices), "optedOut": changed}
