"""Salesforce into the programme: Outbound Messages (Contact changes) and Flow callouts (CRM users' requests)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.crm.outbound_messages import TOKEN_PARAMETER
from loyalty.http_body import raw_body
from loyalty.http_errors import register_error_handlers
from loyalty.observability import logger, metrics
from loyalty.wiring import services

app = APIGatewayHttpResolver()
register_error_handlers(app)


@app.post("/webhooks/salesforce/outbound")
def outbound_message() -> Response:
    inbound, max_bytes = services.crm_inbound()
    token = app.current_event.get_query_string_value(TOKEN_PARAMETER)
    ack = inbound.outbound_message(raw_body(app.current_event, max_bytes), token)
    return Response(200, "text/xml; charset=utf-8", ack.decode("utf-8"))


@app.post("/webhooks/salesforce/flow")
def flow_callout() -> Response:
    inbound, max_bytes = services.crm_inbound()
    answer = inbound.flow_callout(raw_body(app.current_event, max_bytes), app.current_event.headers)
    return Response(202, content_types.APPLICATION_JSON, answer)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    services.idempotency("notification_id").register_lambda_context(context)
    return app.resolve(event, context)
