"""Builds each function's services from the adapters: the one place that chooses DynamoDB, SQS, SES, SNS and
Salesforce for the ports the use cases take.

Built once per container, on first use (never at import), and each function loads only what its path needs.
This module wires the webhook receiver, the function that must start fastest (boto3 and Powertools, no
pydantic, pynamodb or simple_salesforce); loyalty.wiring.services wires the others. Settings are read here
(loyalty.settings): a missing variable fails the first invocation, naming it.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities import parameters

from loyalty.settings import Settings, load_settings

if TYPE_CHECKING:
    from loyalty.shop.intake import WebhookReceiver


def secret(name: str, settings: Settings) -> str:
    """A secret from Secrets Manager, cached for the settings' SECRET_MAX_AGE_SECONDS."""
    return str(parameters.get_secret(name, max_age=getattr(settings, "secret_max_age_seconds", 300)))


@cache
def webhook_receiver() -> tuple[WebhookReceiver, int]:
    """webshop_webhook: the receiver and the largest body it takes."""
    from loyalty.adapters.sqs import SqsLedgerQueue
    from loyalty.settings import WebhookSettings
    from loyalty.shop.intake import WebhookReceiver

    settings = load_settings(WebhookSettings)
    receiver = WebhookReceiver(
        SqsLedgerQueue(settings.queue_url),
        lambda name: secret(name, settings),
        settings.shopify_secret_name,
        settings.woocommerce_secret_name,
    )
    return receiver, settings.max_body_bytes
