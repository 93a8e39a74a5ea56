"""Member read API: balance, tier, next expiry, profile and the latest entries, for IAM-signed callers."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.adapters.dynamodb_models import bind_table
from loyalty.errors import InvalidAmountError, UnknownMemberError
from loyalty.http_errors import register_error_handlers
from loyalty.member_view import member_view
from loyalty.observability import logger, metrics
from loyalty.program import load_program
from loyalty.settings import MemberApiSettings, load_settings

app = APIGatewayHttpResolver()
register_error_handlers(app)


@cache
def _ledger() -> Ledger:
    bind_table(load_settings(MemberApiSettings).table)
    return Ledger(load_program())


@app.get("/members/<member_id>")
def get_member(member_id: str) -> dict[str, Any]:
    metrics.add_metric(name="MemberRead", unit="Count", value=1)
    return member_view(_ledger(), member_id)


@app.get("/members")
def find_member() -> dict[str, Any]:
    email = app.current_event.get_query_string_value("email")
    if not email:
        raise InvalidAmountError("give ?email=<address> or use /members/{member_id}")
    member_id = _ledger().member_for_email(email)
    if member_id is None:
        raise UnknownMemberError("no member with that e-mail address")
    metrics.add_metric(name="MemberRead", unit="Count", value=1)
    return member_view(_ledger(), member_id)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
