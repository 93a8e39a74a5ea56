"""The one place that maps domain errors to HTTP answers, for every HTTP function."""

from __future__ import annotations

from http import HTTPStatus

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types

from loyalty.errors import (
    ForeignOrgError,
    IdempotencyKeyReusedError,
    InsufficientPointsError,
    InvalidAmountError,
    InvalidSignatureError,
    MalformedPayloadError,
    MemberBlockedError,
    PayloadTooLargeError,
    RedemptionRefusedError,
    ShopRetryableError,
    UnknownMemberError,
    UnknownRewardError,
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
    MemberBlockedError: HTTPStatus.CONFLICT,
    UnknownTierError: HTTPStatus.BAD_REQUEST,
    UnknownRewardError: HTTPStatus.NOT_FOUND,
    IdempotencyKeyReusedError: HTTPStatus.UNPROCESSABLE_ENTITY,
    ShopRetryableError: HTTPStatus.SERVICE_UNAVAILABLE,  # the shop cannot remove a code now: nothing changed
}


def error_response(status: HTTPStatus, message: str, /, **details: object) -> Response:
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body={"error": status.phrase, "message": message, **details},
    )


def register_error_handlers(app: APIGatewayHttpResolver) -> None:
    for error_type, status in STATUS_OF.items():

        def handle(error: Exception, status: HTTPStatus = status) -> Response:
            logger.info("request refused", status=status.value, error=type(error).__name__)
            return error_response(status, str(error) or status.phrase)

        app.exception_handler(error_type)(handle)

    @app.exception_handler(RedemptionRefusedError)
    def refused(error: RedemptionRefusedError) -> Response:
        """409 naming the rule (points, min_tier, per_month, lifetime, shop, status) with what it measured."""
        logger.info("redemption refused", rule=error.rule)
        return error_response(HTTPStatus.CONFLICT, str(error), rule=error.rule, **error.details)
