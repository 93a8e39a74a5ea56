"""The unsubscribe link in every message: GET shows a confirmation page, POST (the page's button, or a mail
client's one-click unsubscribe) turns the member's consent for that channel off. Links are signed."""

from __future__ import annotations

from functools import cache
from html import escape
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.adapters.dynamodb_directory import Directory
from loyalty.adapters.dynamodb_models import bind_table
from loyalty.clock import now
from loyalty.consent_feedback import CONSENT_FIELD, opt_out
from loyalty.observability import logger, metrics
from loyalty.offer_sending import valid_unsubscribe
from loyalty.settings import UnsubscribeSettings, load_settings

app = APIGatewayHttpResolver()
HTML = "text/html; charset=utf-8"


@cache
def _directory() -> Directory:
    bind_table(load_settings(UnsubscribeSettings).table)
    return Directory()


def _page(status: int, title: str, text: str) -> Response:
    name = escape(load_settings(UnsubscribeSettings).programme_name)
    body = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
        f"<body><h1>{escape(title)}</h1><p>{text}</p><p>{name}</p></body></html>"
    )
    return Response(status, HTML, body)


def _checked() -> tuple[str, str] | Response:
    query = app.current_event.query_string_parameters or {}
    member_id, channel, token = query.get("m", ""), query.get("c", ""), query.get("t", "")
    settings = load_settings(UnsubscribeSettings)
    secret = str(parameters.get_secret(settings.unsubscribe_secret_name, max_age=settings.secret_max_age_seconds))
    if channel not in CONSENT_FIELD or not member_id or not valid_unsubscribe(secret, member_id, channel, token):
        return _page(400, "This link is not valid", "Please use the link in the message you received.")
    return member_id, channel


@app.get("/unsubscribe")
def confirm() -> Response:
    checked = _checked()
    if isinstance(checked, Response):
        return checked
    query = escape(app.current_event.raw_query_string)
    form = f'<form method="post" action="/unsubscribe?{query}"><button type="submit">Unsubscribe</button></form>'
    return _page(200, "Unsubscribe", f"Stop receiving offers by {escape(checked[1])}? {form}")


@app.post("/unsubscribe")
def unsubscribe() -> Response:
    checked = _checked()
    if isinstance(checked, Response):
        return checked
    member_id, channel = checked
    opt_out(_directory(), member_id, channel, now())
    logger.info("member unsubscribed", member_id=member_id, channel=channel)
    metrics.add_metric(name="Unsubscribed", unit="Count", value=1)
    return _page(200, "You are unsubscribed", f"You will no longer receive offers by {escape(channel)}.")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
