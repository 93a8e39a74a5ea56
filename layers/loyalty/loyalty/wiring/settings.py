"""The settings of every function but the webhook receiver (loyalty.settings has the receiver's, and how settings
are declared and read): one class per function, read from the environment on first use and checked."""

from __future__ import annotations

from loyalty.settings import TableSettings, flag, optional_text, setting, text, whole_number


def url_list(value: str) -> tuple[str, ...]:
    """Addresses separated by commas (none: empty)."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


class PrivacySettings(TableSettings):
    """What a function that answers privacy requests needs: where exports go, and the dead-letter queues that
    keep message bodies (an erasure reaches them)."""

    export_bucket: str = setting("EXPORT_BUCKET", text(min_length=3))
    dead_letter_queue_urls: tuple[str, ...] = setting("DEAD_LETTER_QUEUE_URLS", url_list, ())


class LedgerWriterSettings(PrivacySettings):
    idempotency_table: str = setting("LOYALTY_IDEMPOTENCY_TABLE", text(min_length=3))
    guest_hold_days: int = setting("GUEST_HOLD_DAYS", whole_number(0), 30)
    test_orders_earn: bool = setting("TEST_ORDERS_EARN", flag, False)
    offer_queue_url: str = setting("OFFER_QUEUE_URL", text())
    shop_credentials_secret: str = setting("SHOP_CREDENTIALS_SECRET_NAME", text())  # WooCommerce refunds' lines


class MemberApiSettings(TableSettings):
    shop_credentials_secret: str = setting("SHOP_CREDENTIALS_SECRET_NAME", text())


class RewardCodesSettings(TableSettings):
    shop_credentials_secret: str = setting("SHOP_CREDENTIALS_SECRET_NAME", text())
    offer_queue_url: str = setting("OFFER_QUEUE_URL", text())  # the e-mail with the code


class ShopCustomersSettings(TableSettings):
    shop_credentials_secret: str = setting("SHOP_CREDENTIALS_SECRET_NAME", text())


class CrmSyncSettings(TableSettings):
    salesforce_secret_name: str = setting("SALESFORCE_SECRET_NAME", text())
    create_contacts: bool = setting("CRM_CREATE_CONTACTS", flag, False)
    journal_months: int = setting("CRM_JOURNAL_MONTHS", whole_number(1), 24)
    secret_max_age_seconds: int = setting("SECRET_MAX_AGE_SECONDS", whole_number(0), 300)


class KpiCloseSettings(TableSettings):
    salesforce_secret_name: str = setting("SALESFORCE_SECRET_NAME", text())
    report_bucket: str = setting("REPORT_BUCKET", text(min_length=3))
    secret_max_age_seconds: int = setting("SECRET_MAX_AGE_SECONDS", whole_number(0), 300)


class CrmWebhookSettings(PrivacySettings):
    member_page_url: str = setting("MEMBER_PAGE_URL", text(pattern=r"https?://"))  # member.export's download link
    member_page_secret_name: str = setting("MEMBER_PAGE_SECRET_NAME", text())
    idempotency_table: str = setting("LOYALTY_IDEMPOTENCY_TABLE", text(min_length=3))
    org_id: str = setting("SALESFORCE_ORG_ID", text(min_length=15, max_length=18))
    callout_secret_name: str = setting("SALESFORCE_CALLOUT_SECRET_NAME", text())
    outbound_token_name: str = setting("SALESFORCE_OUTBOUND_TOKEN_NAME", text())
    offer_queue_url: str = setting("OFFER_QUEUE_URL", text())
    max_body_bytes: int = setting("MAX_BODY_BYTES", whole_number(1), 1_048_576)
    secret_max_age_seconds: int = setting("SECRET_MAX_AGE_SECONDS", whole_number(0), 300)


class ScheduledJobsSettings(PrivacySettings):
    offer_queue_url: str = setting("OFFER_QUEUE_URL", text())
    workers: int = setting("JOB_WORKERS", whole_number(1), 8)  # members worked on at once within a page
    shop_credentials_secret: str = setting("SHOP_CREDENTIALS_SECRET_NAME", text())  # code_expiry removes codes


class OfferSenderSettings(TableSettings):
    email_from: str = setting("EMAIL_FROM_ADDRESS", text(min_length=3))
    configuration_set: str | None = setting("SES_CONFIGURATION_SET", optional_text, None)
    sms_sender_id: str = setting("SMS_SENDER_ID", text(max_length=11))
    unsubscribe_base_url: str = setting("UNSUBSCRIBE_BASE_URL", text(pattern=r"https?://"))
    unsubscribe_secret_name: str = setting("UNSUBSCRIBE_SECRET_NAME", text())
    programme_name: str = setting("PROGRAMME_NAME", text(), "Loyalty Club")
    secret_max_age_seconds: int = setting("SECRET_MAX_AGE_SECONDS", whole_number(0), 300)
    member_page_url: str = setting("MEMBER_PAGE_URL", text(pattern=r"https?://"))  # in every e-mail, signed
    member_page_secret_name: str = setting("MEMBER_PAGE_SECRET_NAME", text())


class MemberPageSettings(PrivacySettings):
    member_page_url: str = setting("MEMBER_PAGE_URL", text(pattern=r"https?://"))
    member_page_secret_name: str = setting("MEMBER_PAGE_SECRET_NAME", text())  # signs its links and forms
    shop_credentials_secret: str = setting("SHOP_CREDENTIALS_SECRET_NAME", text())  # each shop's app secret
    offer_queue_url: str = setting("OFFER_QUEUE_URL", text())  # the one-time link, by e-mail
    programme_name: str = setting("PROGRAMME_NAME", text(), "Loyalty Club")
    secret_max_age_seconds: int = setting("SECRET_MAX_AGE_SECONDS", whole_number(0), 300)


class UnsubscribeSettings(TableSettings):
    unsubscribe_secret_name: str = setting("UNSUBSCRIBE_SECRET_NAME", text())
    programme_name: str = setting("PROGRAMME_NAME", text(), "Loyalty Club")
    secret_max_age_seconds: int = setting("SECRET_MAX_AGE_SECONDS", whole_number(0), 300)
