"""Each function's settings, read from the environment on first use and validated.

A missing or invalid variable fails at start with a message that names it. Nothing is read at import time.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from loyalty.errors import SettingsError


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)


class TableSettings(_Settings):
    table: str = Field(alias="LOYALTY_TABLE", min_length=3)


class WebhookSettings(_Settings):
    queue_url: str = Field(alias="LEDGER_QUEUE_URL", min_length=1)
    shopify_secret_name: str = Field(alias="SHOPIFY_SECRET_NAME", min_length=1)
    woocommerce_secret_name: str = Field(alias="WOOCOMMERCE_SECRET_NAME", min_length=1)
    max_body_bytes: int = Field(alias="MAX_BODY_BYTES", default=1_048_576, gt=0)
    secret_max_age_seconds: int = Field(alias="SECRET_MAX_AGE_SECONDS", default=300, ge=0)


class LedgerWriterSettings(TableSettings):
    idempotency_table: str = Field(alias="LOYALTY_IDEMPOTENCY_TABLE", min_length=3)
    guest_hold_days: int = Field(alias="GUEST_HOLD_DAYS", default=30, ge=0)
    offer_queue_url: str = Field(alias="OFFER_QUEUE_URL", min_length=1)


class MemberApiSettings(TableSettings):
    pass


class CrmSyncSettings(TableSettings):
    salesforce_secret_name: str = Field(alias="SALESFORCE_SECRET_NAME", min_length=1)
    create_contacts: bool = Field(alias="CRM_CREATE_CONTACTS", default=False)
    secret_max_age_seconds: int = Field(alias="SECRET_MAX_AGE_SECONDS", default=300, ge=0)


class CrmWebhookSettings(TableSettings):
    idempotency_table: str = Field(alias="LOYALTY_IDEMPOTENCY_TABLE", min_length=3)
    org_id: str = Field(alias="SALESFORCE_ORG_ID", min_length=15, max_length=18)
    callout_secret_name: str = Field(alias="SALESFORCE_CALLOUT_SECRET_NAME", min_length=1)
    offer_queue_url: str = Field(alias="OFFER_QUEUE_URL", min_length=1)
    max_body_bytes: int = Field(alias="MAX_BODY_BYTES", default=1_048_576, gt=0)
    secret_max_age_seconds: int = Field(alias="SECRET_MAX_AGE_SECONDS", default=300, ge=0)


class ScheduledJobsSettings(TableSettings):
    offer_queue_url: str = Field(alias="OFFER_QUEUE_URL", min_length=1)


class OfferSenderSettings(TableSettings):
    email_from: str = Field(alias="EMAIL_FROM_ADDRESS", min_length=3)
    configuration_set: str | None = Field(alias="SES_CONFIGURATION_SET", default=None)
    sms_sender_id: str = Field(alias="SMS_SENDER_ID", min_length=1, max_length=11)
    unsubscribe_base_url: str = Field(alias="UNSUBSCRIBE_BASE_URL", pattern=r"^https?://")
    unsubscribe_secret_name: str = Field(alias="UNSUBSCRIBE_SECRET_NAME", min_length=1)
    programme_name: str = Field(alias="PROGRAMME_NAME", default="Loyalty Club", min_length=1)
    secret_max_age_seconds: int = Field(alias="SECRET_MAX_AGE_SECONDS", default=300, ge=0)


class UnsubscribeSettings(TableSettings):
    unsubscribe_secret_name: str = Field(alias="UNSUBSCRIBE_SECRET_NAME", min_length=1)
    programme_name: str = Field(alias="PROGRAMME_NAME", default="Loyalty Club", min_length=1)
    secret_max_age_seconds: int = Field(alias="SECRET_MAX_AGE_SECONDS", default=300, ge=0)


S = TypeVar("S", bound=_Settings)


@cache
def load_settings(kind: type[S]) -> S:
    """The settings of ``kind`` from the environment, validated once and cached for the container's life."""
    names = {field.alias for field in kind.model_fields.values() if field.alias}
    try:
        return kind.model_validate({name: os.environ[name] for name in names if name in os.environ})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise SettingsError(f"invalid or missing environment variables: {problems}") from error
