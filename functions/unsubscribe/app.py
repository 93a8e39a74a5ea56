"""The unsubscribe link in every message: GET shows a confirmation page, POST (the page's button, or a mail
client's one-click unsubscribe) turns the member's consent for that channel off. Links are signed."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.observability import logger, metrics
from loyalty.wiring import services

app = APIGatewayHttpResolver()
HTML = "text/html; charset=utf-8"


@app.get("/unsubscribe")
def confirm() -> Response:
    query = app.current_event.query_string_parameters or {}
    status, page = services.unsubscribe().confirm(query, app.current_event.raw_query_string)
    return Response(status, HTML, page)


@app.post("/unsubscribe")
def unsubscribe() -> Response:
    status, page = services.unsubscribe().unsubscribe(app.current_event.query_string_parameters or {})
    return Response(status, HTML, page)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
