"""Reading shop webhook bodies: exact JSON, and validation errors described without the values they hold."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from loyalty.errors import MalformedPayloadError

if TYPE_CHECKING:  # the webhook receiver loads this module and must not load pydantic
    from pydantic import ValidationError


MAX_DEPTH = 32  # objects and arrays within each other; the shops' bodies nest five or six deep


def load_json(raw_body: bytes | str, what: str) -> Any:
    """The body as JSON, numbers with a decimal point as Decimal; NaN and Infinity, and a body nested more than
    MAX_DEPTH deep, are refused."""
    try:
        body = json.loads(raw_body, parse_float=Decimal, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise MalformedPayloadError(f"{what}: body is not valid JSON ({error.msg} at {error.pos})") from None
    except ValueError:  # not UTF-8, or NaN/Infinity
        raise MalformedPayloadError(f"{what}: body is not valid UTF-8 JSON") from None
    except RecursionError:
        body = None
    else:
        if _within_depth(body, MAX_DEPTH):
            return body
    raise MalformedPayloadError(f"{what}: body is nested more than {MAX_DEPTH} deep")


def _within_depth(value: Any, limit: int) -> bool:
    """True if no object or array in `value` is more than `limit` levels deep (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return True


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number")


def text_only(value: Any) -> Any:
    """For a pydantic BeforeValidator: dates come as text; a number (pydantic would read seconds since 1970) is
    refused."""
    if value is not None and not isinstance(value, str):
        raise ValueError("a date must be text (ISO 8601)")
    return value


def describe(error: ValidationError) -> str:
    """The fields a ValidationError names and what is wrong with them, without the values (they may be PII)."""
    parts = []
    for detail in error.errors(include_input=False, include_url=False):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in detail["loc"]).lstrip(".")
        where = path or ("body" if error.title.startswith("_") else error.title)  # _Wire models are the body
        parts.append(f"{where}: {detail['msg']}")
    return "; ".join(parts)
