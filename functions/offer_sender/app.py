"""Offer requests from the queue to e-mail and SMS: consent, caps, quiet hours, language; one bad request never
fails its batch, and a failure worth retrying comes back through the queue."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.parser.models import SqsRecordModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import Json

from loyalty.adapters.dynamodb_directory import Directory
from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.adapters.dynamodb_models import bind_table
from loyalty.adapters.dynamodb_offers import OfferStore
from loyalty.adapters.ses_email import SesEmailSender
from loyalty.adapters.sns_sms import SnsSmsSender
from loyalty.observability import logger, metrics
from loyalty.offer_requests import OfferRequest
from loyalty.offer_rules import load_offer_rules
from loyalty.offer_sending import OfferSender, unsubscribe_url
from loyalty.program import load_program
from loyalty.settings import OfferSenderSettings, load_settings


class OfferRecord(SqsRecordModel):
    body: Json[OfferRequest]


processor = BatchProcessor(event_type=EventType.SQS, model=OfferRecord)


@cache
def _sender() -> OfferSender:
    settings = load_settings(OfferSenderSettings)
    bind_table(settings.table)

    def link(member_id: str, channel: str) -> str:
        secret = str(parameters.get_secret(settings.unsubscribe_secret_name, max_age=settings.secret_max_age_seconds))
        return unsubscribe_url(settings.unsubscribe_base_url, secret, member_id, channel)

    return OfferSender(
        ledger=Ledger(load_program()),
        directory=Directory(),
        store=OfferStore(),
        email=SesEmailSender(settings.email_from, settings.configuration_set),
        sms=SnsSmsSender(settings.sms_sender_id),
        rules=load_offer_rules(),
        links=link,
        programme_name=settings.programme_name,
    )


def record_handler(record: OfferRecord) -> dict[str, str]:
    request = record.body
    outcome = _sender().handle(request)
    logger.info("offer request handled", request_id=request.request_id, trigger=request.trigger.value, channels=outcome)
    return outcome


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)
