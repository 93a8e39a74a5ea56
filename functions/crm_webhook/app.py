"""Salesforce into the programme: Outbound Messages (Contact changes) and Flow callouts (CRM users' requests)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.adapters.dynamodb_crm_state import CrmStateStore
from loyalty.adapters.dynamodb_directory import Directory
from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.adapters.dynamodb_models import bind_table
from loyalty.adapters.salesforce_outbound import (
    ContactNotification,
    acknowledgement,
    org_id_matches,
    parse_outbound_message,
)
from loyalty.adapters.sqs_offer_queue import OfferQueue
from loyalty.clock import now
from loyalty.crm_inbound import CrmInbound
from loyalty.errors import ForeignOrgError
from loyalty.flow_callouts import accepted_response, parse_callout, verify_callout
from loyalty.http_body import raw_body
from loyalty.http_errors import register_error_handlers
from loyalty.observability import logger, metrics
from loyalty.program import load_program
from loyalty.settings import CrmWebhookSettings, load_settings

app = APIGatewayHttpResolver()
register_error_handlers(app)
notifications = IdempotencyConfig(event_key_jmespath="notification_id", expires_after_seconds=7 * 24 * 3600)


@cache
def _inbound() -> tuple[CrmInbound, Callable[..., str]]:
    settings = load_settings(CrmWebhookSettings)
    bind_table(settings.table)
    inbound = CrmInbound(
        Ledger(load_program()), Directory(), CrmStateStore(), OfferQueue(settings.offer_queue_url).send
    )
    store = DynamoDBPersistenceLayer(table_name=settings.idempotency_table)

    @idempotent_function(data_keyword_argument="notification", config=notifications, persistence_store=store)
    def apply_once(notification: ContactNotification) -> str:
        return inbound.apply_contact_change(notification)

    return inbound, apply_once


def _check_org(settings: CrmWebhookSettings, org_id: str) -> None:
    if not org_id_matches(settings.org_id, org_id):
        logger.warning("salesforce message from another organisation refused")
        metrics.add_metric(name="CrmForeignOrgRefused", unit="Count", value=1)
        raise ForeignOrgError("this endpoint serves another Salesforce organisation")


@app.post("/webhooks/salesforce/outbound")
def outbound_message() -> Response:
    settings = load_settings(CrmWebhookSettings)
    message = parse_outbound_message(raw_body(app.current_event, settings.max_body_bytes))
    _check_org(settings, message.organization_id)
    _, apply_once = _inbound()
    for notification in message.notifications:
        outcome = apply_once(notification=notification)
        logger.info(outcome, notification_id=notification.notification_id)
    metrics.add_metric(name="CrmContactChanges", unit="Count", value=len(message.notifications))
    return Response(200, "text/xml; charset=utf-8", acknowledgement().decode("utf-8"))


@app.post("/webhooks/salesforce/flow")
def flow_callout() -> Response:
    settings = load_settings(CrmWebhookSettings)
    raw = raw_body(app.current_event, settings.max_body_bytes)
    secret = str(parameters.get_secret(settings.callout_secret_name, max_age=settings.secret_max_age_seconds))
    verify_callout(raw, app.current_event.headers, secret, now())
    callout = parse_callout(raw)
    _check_org(settings, callout.org_id)
    inbound, _ = _inbound()
    duplicate = inbound.apply_callout(callout)
    logger.info("flow callout applied", type=callout.type, request_id=callout.request_id, duplicate=duplicate)
    metrics.add_metric(name="CrmCallouts", unit="Count", value=1)
    return Response(202, content_types.APPLICATION_JSON, accepted_response(callout.request_id, duplicate))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    notifications.register_lambda_context(context)
    return app.resolve(event, context)
