"""The body of an HTTP API request exactly as the sender sent it, within the size limit."""

from __future__ import annotations

import base64

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEventV2

from loyalty.errors import PayloadTooLargeError


def raw_body(event: APIGatewayProxyEventV2, max_bytes: int) -> bytes:
    """API Gateway base64-encodes bodies it deems binary; signatures are over the original bytes."""
    body = event.get("body") or ""
    raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")
    if len(raw) > max_bytes:
        raise PayloadTooLargeError(f"body of {len(raw)} bytes is over the limit of {max_bytes}")
    return raw
