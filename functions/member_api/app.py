"""Member read API: balance, tier, next expiry, profile and the latest entries, for IAM-signed callers."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.http_errors import register_error_handlers
from loyalty.ledger.member_view import member_by_email, member_view
from loyalty.observability import logger, metrics
from loyalty.wiring import services

app = APIGatewayHttpResolver()
register_error_handlers(app)


@app.get("/members/<member_id>")
def get_member(member_id: str) -> dict[str, Any]:
    return member_view(services.member_ledger(), member_id)


@app.get("/members")
def find_member() -> dict[str, Any]:
    return member_by_email(services.member_ledger(), app.current_event.get_query_string_value("email"))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
