"""The member's own page, GET and POST /apps/loyalty: a Shopify App Proxy target (the shop signs each request)
and the signed link in every e-mail. Server-rendered HTML; its forms post back to the same address."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from loyalty.errors import PayloadTooLargeError
from loyalty.http_body import raw_body
from loyalty.observability import logger, metrics
from loyalty.rewards.member_page import HTML, PageAnswer
from loyalty.wiring import services

MAX_FORM_BYTES = 2048
HEADERS = {
    "Cache-Control": "no-store",  # a member's own figures
    "Referrer-Policy": "no-referrer",  # the address may carry a signed link
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
}

app = APIGatewayHttpResolver()


def _query() -> list[tuple[str, str]]:
    return parse_qsl(app.current_event.raw_query_string, keep_blank_values=True)


def _answer(answer: PageAnswer) -> Response:
    return Response(answer.status, HTML, answer.html, headers=dict(HEADERS))


@app.get("/apps/loyalty")
def show() -> Response:
    return _answer(services.member_page().show(_query(), app.current_event.headers.get("accept-language")))


@app.get("/apps/loyalty/export")
def download() -> Response:
    """A member's data export, through the signed link the member or a CRM user was given."""
    found = services.member_page().download(_query())
    if found is None:
        return Response(
            404, "text/plain; charset=utf-8", "This link has expired or is not valid.", headers=dict(HEADERS)
        )
    disposition = {"Content-Disposition": 'attachment; filename="my-loyalty-data.json"'}
    return Response(200, "application/json; charset=utf-8", found.decode(), headers=dict(HEADERS) | disposition)


@app.post("/apps/loyalty")
def act() -> Response:
    try:
        body = raw_body(app.current_event, MAX_FORM_BYTES).decode("utf-8", "replace")
    except PayloadTooLargeError:
        body = ""  # no form: the page says it could not be read
    form = dict(parse_qsl(body, keep_blank_values=True))
    return _answer(services.member_page().act(_query(), form, app.current_event.headers.get("accept-language")))


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
