"""Function settings: read from the environment once, every problem named at start, no value ever shown."""

from __future__ import annotations

import pytest

from loyalty.errors import SettingsError
from loyalty.settings import WebhookSettings, load_settings, setting, text
from loyalty.wiring.settings import CrmSyncSettings, OfferSenderSettings

WEBHOOK = {
    "LEDGER_QUEUE_URL": "http://127.0.0.1:5000/123456789012/ledger",
    "SHOPIFY_SECRET_NAME": "loyalty/shopify",
    "WOOCOMMERCE_SECRET_NAME": "loyalty/woocommerce",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in [*WEBHOOK, "MAX_BODY_BYTES", "SECRET_MAX_AGE_SECONDS", "CRM_CREATE_CONTACTS", "SES_CONFIGURATION_SET"]:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_values_are_read_and_defaults_fill_the_rest(env: pytest.MonkeyPatch) -> None:
    for name, value in WEBHOOK.items():
        env.setenv(name, value)
    env.setenv("MAX_BODY_BYTES", "65536")
    settings = load_settings(WebhookSettings)
    assert settings.queue_url == WEBHOOK["LEDGER_QUEUE_URL"]
    assert settings.shopify_secret_name == "loyalty/shopify"
    assert settings.woocommerce_secret_name == "loyalty/woocommerce"
    assert settings.max_body_bytes == 65536
    assert settings.secret_max_age_seconds == 300


def test_every_problem_is_named_at_once_without_its_value(env: pytest.MonkeyPatch) -> None:
    env.setenv("LEDGER_QUEUE_URL", "")
    env.setenv("SHOPIFY_SECRET_NAME", "loyalty/shopify")
    env.setenv("MAX_BODY_BYTES", "a-secret-looking-value")
    env.setenv("SECRET_MAX_AGE_SECONDS", "-1")
    with pytest.raises(SettingsError) as raised:
        load_settings(WebhookSettings)
    message = str(raised.value)
    assert "LEDGER_QUEUE_URL: must be at least 1 characters" in message
    assert "WOOCOMMERCE_SECRET_NAME: required" in message
    assert "MAX_BODY_BYTES: must be a whole number" in message
    assert "SECRET_MAX_AGE_SECONDS: must be at least 0" in message
    assert "SHOPIFY_SECRET_NAME" not in message and "a-secret-looking-value" not in message


@pytest.mark.parametrize(
    ("raw", "expected"), [("true", True), ("Yes", True), ("1", True), ("false", False), ("off", False)]
)
def test_flags(env: pytest.MonkeyPatch, raw: str, expected: bool) -> None:
    env.setenv("LOYALTY_TABLE", "loyalty")
    env.setenv("SALESFORCE_SECRET_NAME", "loyalty/salesforce")
    env.setenv("CRM_CREATE_CONTACTS", raw)
    assert load_settings(CrmSyncSettings).create_contacts is expected


def test_a_flag_that_is_neither_is_refused(env: pytest.MonkeyPatch) -> None:
    env.setenv("LOYALTY_TABLE", "loyalty")
    env.setenv("SALESFORCE_SECRET_NAME", "loyalty/salesforce")
    env.setenv("CRM_CREATE_CONTACTS", "maybe")
    with pytest.raises(SettingsError, match="CRM_CREATE_CONTACTS: must be true or false"):
        load_settings(CrmSyncSettings)


def test_lengths_patterns_and_optional_values(env: pytest.MonkeyPatch) -> None:
    env.setenv("LOYALTY_TABLE", "loyalty")
    env.setenv("EMAIL_FROM_ADDRESS", "club@example.com")
    env.setenv("SMS_SENDER_ID", "LoyaltyClubNordic")  # 17 characters: over SNS's 11
    env.setenv("UNSUBSCRIBE_BASE_URL", "ftp://example.com/u")
    env.setenv("UNSUBSCRIBE_SECRET_NAME", "loyalty/unsubscribe")
    env.setenv("MEMBER_PAGE_URL", "https://club.example.com/apps/loyalty")
    env.setenv("MEMBER_PAGE_SECRET_NAME", "loyalty/member-page")
    with pytest.raises(SettingsError) as raised:
        load_settings(OfferSenderSettings)
    assert "SMS_SENDER_ID: must be at most 11 characters" in str(raised.value)
    assert "UNSUBSCRIBE_BASE_URL: must match https?://" in str(raised.value)
    load_settings.cache_clear()
    env.setenv("SMS_SENDER_ID", "Loyalty")
    env.setenv("UNSUBSCRIBE_BASE_URL", "https://club.example.com/u")
    env.setenv("SES_CONFIGURATION_SET", "")  # CloudFormation's empty parameter: no configuration set
    settings = load_settings(OfferSenderSettings)
    assert settings.configuration_set is None
    assert settings.programme_name == "Loyalty Club"


def test_settings_are_read_once_and_frozen(env: pytest.MonkeyPatch) -> None:
    for name, value in WEBHOOK.items():
        env.setenv(name, value)
    first = load_settings(WebhookSettings)
    env.setenv("MAX_BODY_BYTES", "1")
    assert load_settings(WebhookSettings) is first and first.max_body_bytes == 1_048_576
    with pytest.raises(AttributeError, match="frozen"):
        first.max_body_bytes = 1
    with pytest.raises(AttributeError, match="frozen"):
        del first.queue_url
    assert "loyalty/shopify" not in repr(first)


def test_a_base_setting_is_read_for_every_function_and_a_subclass_may_redeclare_it(env: pytest.MonkeyPatch) -> None:
    env.setenv("LOYALTY_TABLE", "loyalty-prod")
    env.setenv("SALESFORCE_SECRET_NAME", "loyalty/salesforce")
    assert load_settings(CrmSyncSettings).table == "loyalty-prod"

    class Renamed(CrmSyncSettings):
        table = setting("OTHER_TABLE", text(min_length=3))
        create_contacts = True  # a plain value: not read from the environment

    env.setenv("OTHER_TABLE", "loyalty-other")
    env.setenv("CRM_CREATE_CONTACTS", "not a flag")
    env.delenv("LOYALTY_TABLE")
    settings = load_settings(Renamed)
    assert (settings.table, settings.create_contacts) == ("loyalty-other", True)


def test_settings_come_only_from_load_settings() -> None:
    with pytest.raises(TypeError, match="read by load_settings"):
        WebhookSettings()
