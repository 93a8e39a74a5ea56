"""Member API, for IAM-signed callers: balance, tier, next expiry, profile and the latest entries; the rewards a
member can have, redeeming one (with an Idempotency-Key), their redemptions, and cancelling an unused one; and the
programme's monthly figures (GET /kpis)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.errors import MalformedPayloadError
from loyalty.http_body import raw_body
from loyalty.http_errors import register_error_handlers
from loyalty.ledger.member_view import member_by_email, member_view
from loyalty.observability import logger, metrics
from loyalty.wire_json import load_json
from loyalty.wiring import services

MAX_BODY_BYTES = 4096

app = APIGatewayHttpResolver()
register_error_handlers(app)


@app.get("/members/<member_id>")
def get_member(member_id: str) -> dict[str, Any]:
    return member_view(services.member_ledger(), member_id)


@app.get("/members")
def find_member() -> dict[str, Any]:
    return member_by_email(services.member_ledger(), app.current_event.get_query_string_value("email"))


@app.get("/members/<member_id>/rewards")
def get_rewards(member_id: str) -> dict[str, Any]:
    return services.member_rewards().offer(member_id, app.current_event.get_query_string_value("lang"))


@app.post("/members/<member_id>/redemptions")
def redeem(member_id: str) -> Response:
    body = load_json(raw_body(app.current_event, MAX_BODY_BYTES), "redemption request")
    key = app.current_event.headers.get("idempotency-key")
    answer, _ = services.member_rewards().redeem(member_id, body, key)
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=answer)


@app.get("/members/<member_id>/redemptions")
def get_redemptions(member_id: str) -> dict[str, Any]:
    return services.member_rewards().redemptions(member_id)


@app.delete("/members/<member_id>/redemptions/<redemption_id>")
def cancel_redemption(member_id: str, redemption_id: str) -> dict[str, Any]:
    return services.member_rewards().cancel(member_id, redemption_id)


@app.get("/kpis")
def get_kpis() -> dict[str, Any]:
    """The programme's monthly figures (and by segment or tier) from ``from`` to ``to`` (YYYY-MM)."""
    query = app.current_event.get_query_string_value
    first, last, by = query("from"), query("to"), query("by")
    if not first or not last:
        raise MalformedPayloadError("`from` and `to` are needed, each a month as YYYY-MM")
    if by not in (None, "", "segment", "tier"):
        raise MalformedPayloadError(f"`by` is segment or tier, not {by!r}")
    return services.kpi_figures().months(first, last, "segment" if by == "segment" else "tier" if by else None)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
