"""Logger, metrics and masking shared by every layer (handlers and `loyalty` alike)."""

from __future__ import annotations

import re

from aws_lambda_powertools import Logger, Metrics

logger = Logger(service="loyalty")
metrics = Metrics(namespace="Loyalty", service="loyalty")

_EMAIL = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9])[A-Za-z0-9.-]*(\.[A-Za-z]{2,})")
_PHONE = re.compile(r"\+?\d[\d\s-]{5,}(\d{2})")


def mask_email(email: str | None) -> str | None:
    """``anna.berg@example.com`` -> ``a***@e***.com``: enough to tell addresses apart in logs, no more."""
    if not email:
        return email
    return _EMAIL.sub(r"\1***@\2***\3", email)


def mask_phone(phone: str | None) -> str | None:
    """``+46 70 123 45 67`` -> ``***67``."""
    if not phone:
        return phone
    return _PHONE.sub(r"***\1", phone)
