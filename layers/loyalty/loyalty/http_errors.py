"""The one place that maps domain errors to HTTP answers, for every HTTP function."""

from __future__ import annotations

from http import HTTPStatus

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from loyalty.errors import (
    ForeignOrgError,
    InsufficientPointsError,
    InvalidAmountError,
    InvalidSignatureError,
    MalformedPayloadError,
    PayloadTooLargeError,
    UnknownMemberError,
    UnknownTierError,
)
from loyalty.observability import logger

STATUS_OF: dict[type[Exception], HTTPStatus] = {
    InvalidSignatureError: HTTPStatus.UNAUTHORIZED,
    PayloadTooLargeError: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    MalformedPayloadError: HTTPStatus.BAD_REQUEST,
    InvalidAmountError: HTTPStatus.BAD_REQUEST,
    UnknownMemberError: HTTPStatus.NOT_FOUND,
    ForeignOrgError: HTTPStatus.FORBIDDEN,
    InsufficientPointsError: HTTPStatus.CONFLICT,
    UnknownTierError: HTTPStatus.BAD_REQUEST,
}


def error_response(status: HTTPStatus, message: str) -> Response:
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body={"error": status.phrase, "message": message},
    )


def register_error_handlers(app: APIGatewayHttpResolver) -> None:
    for error_type, status in STATUS_OF.items():

        def handle(error: Exception, status: HTTPStatus = status) -> Response:
            logger.info("request refused", status=status.value, error=type(error).__name__)
            return error_response(status, str(error) or status.phrase)

        app.exception_handler(error_type)(handle)
