"""The services of every function but the webhook receiver (loyalty.wiring), built from the adapters once
per container, on first use."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

from loyalty.clock import now as clock_now
from loyalty.settings import load_settings
from loyalty.wiring import secret as _secret
from loyalty.wiring import webhook_receiver

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    from loyalty.adapters.dynamodb.stream import KpiChanges
    from loyalty.crm.figures import CrmFigures
    from loyalty.crm.inbound import CrmInbound
    from loyalty.crm.sync import CrmSync
    from loyalty.jobs import ScheduledJobs
    from loyalty.kpis.closing import KpiClosing
    from loyalty.kpis.counting import KpiCounting
    from loyalty.kpis.figures import KpiFigures
    from loyalty.kpis.report import MonthlyReport
    from loyalty.ledger.model import Entry
    from loyalty.ledger.service import Ledger
    from loyalty.offers.records import SendRecord
    from loyalty.offers.sending import OfferSender
    from loyalty.offers.unsubscribe import Unsubscribe
    from loyalty.ports.crm import RewardToArrange
    from loyalty.ports.directory import Directory, HeldForReview
    from loyalty.ports.shops import MemberImages, ShopCodes
    from loyalty.privacy import Privacy
    from loyalty.programme.rules import ProgramRules
    from loyalty.rewards.codes import CodeMaker
    from loyalty.rewards.member_api import MemberRewards
    from loyalty.rewards.member_page import MemberPage
    from loyalty.shop.applier import ShopEventApplier
    from loyalty.shop.customer_labels import CustomerLabeller
    from loyalty.wiring.settings import PrivacySettings

IDEMPOTENCY_DAYS = 7


@cache
def _table(name: str) -> None:
    from loyalty.adapters.dynamodb.models import bind_table

    bind_table(name)


@cache
def _rules() -> ProgramRules:
    from loyalty.programme.rules import load_program

    return load_program()


def programme_rules() -> ProgramRules:
    """The programme's rules (infra/program.yaml), loaded once."""
    return _rules()


def _ledger(table: str) -> Ledger:
    from loyalty.adapters.dynamodb.ledger import DynamoDBLedgerStore
    from loyalty.ledger.service import Ledger

    _table(table)
    return Ledger(DynamoDBLedgerStore(), _rules())


def _directory(table: str) -> Directory:
    from loyalty.adapters.dynamodb.directory import DynamoDBDirectory

    _table(table)
    return DynamoDBDirectory()


def _idempotent(config: IdempotencyConfig, table: str, function: Any, keyword: str, key_prefix: str) -> Any:
    """``function`` applied once per key (``key_prefix`` names the records, whatever the code's layout)."""
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer, idempotent_function

    store = DynamoDBPersistenceLayer(table_name=table)
    once = idempotent_function(
        data_keyword_argument=keyword, config=config, persistence_store=store, key_prefix=key_prefix
    )
    return once(function)


def _privacy(settings: PrivacySettings, page: tuple[str, str] | None = None) -> Privacy:
    """A person's data on request: exports to the export bucket, erasure reaching the dead-letter queues too;
    with ``page`` (the member page's URL and its secret's name), exports come with their download link."""
    from loyalty.adapters.dynamodb.offer_records import DynamoDBOfferRecords
    from loyalty.adapters.dynamodb.surveys import DynamoDBNpsAnswers
    from loyalty.adapters.s3_exports import S3MemberExports
    from loyalty.adapters.sqs_dead_letters import SqsDeadLetters
    from loyalty.ports.privacy import EXPORT_LINK_DAYS
    from loyalty.privacy import Privacy
    from loyalty.rewards.page_links import export_link

    def download_link(member_id: str, name: str) -> str:
        assert page is not None
        url, secret_name = page
        ends = clock_now() + timedelta(days=EXPORT_LINK_DAYS)  # the programme's clock (the embedded stack's too)
        return export_link(url, _secret(secret_name, settings), member_id, name, ends)

    return Privacy(
        _ledger(settings.table),
        _directory(settings.table),
        DynamoDBOfferRecords(),
        DynamoDBNpsAnswers(),
        S3MemberExports(settings.export_bucket),
        SqsDeadLetters(settings.dead_letter_queue_urls),
        download_link=download_link if page is not None else None,
    )


@cache
def idempotency(event_key: str) -> IdempotencyConfig:
    """The idempotency of a function's unit of work (the handler registers the Lambda context on it)."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig

    return IdempotencyConfig(event_key_jmespath=event_key, expires_after_seconds=IDEMPOTENCY_DAYS * 24 * 3600)


# ------------------------------------------------------------------ one per function


@cache
def shop_event_applier() -> ShopEventApplier:
    """ledger_writer: each shop event (by its dedup key) applied once."""
    from loyalty.adapters.shop_codes import ShopCodesBySecret
    from loyalty.adapters.sqs_offers import SqsOfferQueue
    from loyalty.offers.rules import load_offer_rules
    from loyalty.shop.applier import ShopEventApplier
    from loyalty.wiring.settings import LedgerWriterSettings

    settings = load_settings(LedgerWriterSettings)
    credentials = _shop_credentials(settings.shop_credentials_secret)  # read only when an order lists refunds

    def reads_refunds(shop: str) -> bool:
        return shop.startswith("woocommerce:") and shop in credentials()

    applier = ShopEventApplier(
        _ledger(settings.table),
        _directory(settings.table),
        settings.guest_hold_days,
        load_offer_rules(),
        SqsOfferQueue(settings.offer_queue_url),
        test_orders_earn=settings.test_orders_earn,
        refunds=ShopCodesBySecret(credentials),
        reads_refunds=reads_refunds,
    )
    privacy = _privacy(settings)
    applier.erase_member, applier.export_member = privacy.erase, privacy.export
    config, table = idempotency("dedup_key"), settings.idempotency_table
    applier.apply_event = _idempotent(config, table, applier.apply, "event", "ledger_writer.shop_event")
    return applier


@cache
def member_ledger() -> Ledger:
    """member_api: the ledger, read only."""
    from loyalty.wiring.settings import MemberApiSettings

    return _ledger(load_settings(MemberApiSettings).table)


@cache
def member_rewards() -> MemberRewards:
    """member_api: the rewards catalogue over the ledger (redemptions are written here; a cancelled code is removed
    from its shop)."""
    from loyalty.wiring.settings import MemberApiSettings

    settings = load_settings(MemberApiSettings)
    return member_rewards_for(_ledger(settings.table), _shop_codes(settings.shop_credentials_secret))


def member_rewards_for(ledger: Ledger, shops: ShopCodes | None) -> MemberRewards:
    from loyalty.programme.rewards import load_rewards
    from loyalty.rewards.member_api import MemberRewards

    return MemberRewards(ledger, load_rewards(ledger.rules), shops)


def _shop_credentials(secret_name: str) -> Callable[[], dict[str, dict[str, str]]]:
    """Each shop's credentials from the secret (read again after five minutes)."""
    from aws_lambda_powertools.utilities.parameters import get_secret

    def credentials() -> dict[str, dict[str, str]]:
        value = get_secret(secret_name, transform="json", max_age=300)
        return value if isinstance(value, dict) else {}

    return credentials


def _shop_codes(secret_name: str) -> ShopCodes:
    from loyalty.adapters.shop_codes import ShopCodesBySecret

    return ShopCodesBySecret(_shop_credentials(secret_name))


@cache
def member_page() -> MemberPage:
    """member_page: the member's own page, through the shop (App Proxy) or from a signed e-mail link."""
    from loyalty.adapters.shop_codes import ShopCodesBySecret
    from loyalty.adapters.sqs_offers import SqsOfferQueue
    from loyalty.offers.rules import load_offer_rules
    from loyalty.rewards.member_page import MemberPage
    from loyalty.wiring.settings import MemberPageSettings

    settings = load_settings(MemberPageSettings)
    credentials = _shop_credentials(settings.shop_credentials_secret)
    ledger = _ledger(settings.table)
    rewards = member_rewards_for(ledger, ShopCodesBySecret(credentials))

    def app_secret(shop: str) -> str | None:
        found = credentials().get(shop, {}).get("appSecret")
        return str(found) if found else None

    return MemberPage(
        rewards=rewards,
        directory=_directory(settings.table),
        offer_queue=SqsOfferQueue(settings.offer_queue_url),
        offer_rules=load_offer_rules(),
        page_secret=lambda: _secret(settings.member_page_secret_name, settings),
        app_secret=app_secret,
        page_url=settings.member_page_url,
        programme_name=settings.programme_name,
        export_member=(
            privacy := _privacy(settings, (settings.member_page_url, settings.member_page_secret_name))
        ).export,
        erase_member=privacy.erase,
        read_export=privacy.exports.read,
    )


@cache
def code_maker() -> CodeMaker:
    """reward_codes: each pending redemption's code made in its shop, and the member's e-mail with it asked for."""
    from loyalty.adapters.sqs_offers import SqsOfferQueue
    from loyalty.offers.rules import load_offer_rules
    from loyalty.programme.rewards import load_rewards
    from loyalty.rewards.codes import CodeMaker
    from loyalty.wiring.settings import RewardCodesSettings

    settings = load_settings(RewardCodesSettings)
    shops = _shop_codes(settings.shop_credentials_secret)
    ledger = _ledger(settings.table)
    offer_queue = SqsOfferQueue(settings.offer_queue_url)
    return CodeMaker(ledger, load_rewards(ledger.rules), shops, offer_queue, load_offer_rules())


@cache
def customer_labeller() -> CustomerLabeller:
    """shop_customers: the member's tier and segment written to their customers in the programme's shops."""
    from loyalty.adapters.shop_codes import ShopCodesBySecret
    from loyalty.clock import now
    from loyalty.programme.rewards import load_rewards
    from loyalty.shop.customer_labels import CustomerLabeller
    from loyalty.wiring.settings import ShopCustomersSettings

    settings = load_settings(ShopCustomersSettings)
    rules = _rules()
    shops = ShopCodesBySecret(_shop_credentials(settings.shop_credentials_secret))
    return CustomerLabeller(shops, rules, now, frozenset(load_rewards(rules).shops))


def member_images(event: dict[str, Any]) -> list[MemberImages]:
    """shop_customers: each member item's change in a stream batch, before and after."""
    from loyalty.adapters.dynamodb.stream import member_images as images

    return images(event)


def redemption_of(image: dict[str, Any]) -> tuple[str, str] | None:
    """reward_codes: the (member id, redemption id) of a stream record's new image."""
    from loyalty.adapters.dynamodb.stream import redemption_of as of

    return of(image)


@cache
def crm_inbound() -> tuple[CrmInbound, int]:
    """crm_webhook: Outbound Messages (each notification once) and Flow callouts; and the largest body taken."""
    from loyalty.adapters.dynamodb.crm_states import DynamoDBCrmStates
    from loyalty.adapters.dynamodb.surveys import DynamoDBNpsAnswers
    from loyalty.adapters.sqs_offers import SqsOfferQueue
    from loyalty.crm.inbound import CrmInbound
    from loyalty.wiring.settings import CrmWebhookSettings

    settings = load_settings(CrmWebhookSettings)
    ledger = _ledger(settings.table)
    inbound = CrmInbound(
        ledger,
        _directory(settings.table),
        DynamoDBCrmStates(),
        SqsOfferQueue(settings.offer_queue_url),
        settings.org_id,
        lambda: _secret(settings.callout_secret_name, settings),
        lambda: _secret(settings.outbound_token_name, settings),
        redeem_reward=member_rewards_for(ledger, None).redeem,  # a service agent's redemption (no shop call)
        nps_answers=DynamoDBNpsAnswers(),
    )
    privacy = _privacy(settings, (settings.member_page_url, settings.member_page_secret_name))
    inbound.erase_member, inbound.export_member = privacy.erase, privacy.export
    notifications = idempotency("notification_id")
    inbound.apply_notification = _idempotent(
        notifications, settings.idempotency_table, inbound.apply_contact_change, "change", "crm_webhook.contact_change"
    )
    return inbound, settings.max_body_bytes


@cache
def crm_sync() -> CrmSync:
    """crm_sync: the Salesforce client (JWT bearer, reused for the container's life) and the CRM state."""
    from loyalty.adapters.dynamodb.crm_states import DynamoDBCrmStates
    from loyalty.adapters.dynamodb.offer_records import DynamoDBOfferRecords
    from loyalty.adapters.salesforce import JwtCredentials, SalesforceClient
    from loyalty.crm.sync import CrmSync
    from loyalty.wiring.settings import CrmSyncSettings

    settings = load_settings(CrmSyncSettings)
    client = SalesforceClient(
        credentials=lambda: JwtCredentials.from_secret(_secret(settings.salesforce_secret_name, settings))
    )
    return CrmSync(
        _ledger(settings.table),
        client,
        DynamoDBCrmStates(),
        _directory(settings.table),
        DynamoDBOfferRecords(),
        create_contacts=settings.create_contacts,
        journal_months=settings.journal_months,
    )


def stream_changes(
    event: dict[str, Any],
) -> tuple[set[str], list[SendRecord], list[HeldForReview], list[RewardToArrange], list[Entry]]:
    """crm_sync: what the table's stream batch changed (members; sent offers, held orders and experiences to
    arrange waiting for a Task)."""
    from loyalty.adapters.dynamodb.stream import stream_changes as changes

    return changes(event)


@cache
def scheduled_jobs() -> ScheduledJobs:
    from loyalty.adapters.dynamodb.crm_states import DynamoDBCrmStates
    from loyalty.adapters.dynamodb.job_runs import DynamoDBJobRuns
    from loyalty.adapters.dynamodb.offer_records import DynamoDBOfferRecords
    from loyalty.adapters.dynamodb.reviews import DynamoDBReviews
    from loyalty.adapters.sqs_offers import SqsOfferQueue
    from loyalty.jobs import ScheduledJobs
    from loyalty.offers.rules import load_offer_rules
    from loyalty.programme.rewards import load_rewards
    from loyalty.rewards.codes import CodeMaker
    from loyalty.wiring.settings import ScheduledJobsSettings

    settings = load_settings(ScheduledJobsSettings)
    ledger = _ledger(settings.table)
    shops = _shop_codes(settings.shop_credentials_secret)
    offer_queue = SqsOfferQueue(settings.offer_queue_url)
    codes = CodeMaker(ledger, load_rewards(ledger.rules), shops, offer_queue, load_offer_rules())
    return ScheduledJobs(
        ledger,
        DynamoDBReviews(),
        DynamoDBJobRuns(),
        offer_queue,
        load_offer_rules(),
        DynamoDBOfferRecords(),
        workers=settings.workers,
        crm_states=DynamoDBCrmStates(),
        end_unused_code=codes.end_unused,
        erase_member=_privacy(settings).erase,  # the retention rule
    )


@cache
def kpi_counting() -> KpiCounting:
    """kpis: new ledger entries into the monthly figures."""
    from loyalty.adapters.dynamodb.kpis import DynamoDBKpiStore
    from loyalty.kpis.counting import KpiCounting
    from loyalty.kpis.flows import revenue_rates
    from loyalty.offers.rules import load_offer_rules
    from loyalty.programme.rewards import load_rewards
    from loyalty.settings import TableSettings

    ledger = _ledger(load_settings(TableSettings).table)
    holdout = load_offer_rules().holdout
    rates = revenue_rates(ledger.rules, load_rewards(ledger.rules).reporting)
    return KpiCounting(ledger, DynamoDBKpiStore(), holdout.triggers, holdout.conversion_days, rates)


@cache
def kpi_figures() -> KpiFigures:
    """member_api, kpis_close: the monthly figures as GET /kpis answers them."""
    from loyalty.adapters.dynamodb.kpis import DynamoDBKpiStore
    from loyalty.kpis.figures import KpiFigures
    from loyalty.programme.rewards import load_rewards
    from loyalty.settings import TableSettings

    ledger = _ledger(load_settings(TableSettings).table)
    return KpiFigures(DynamoDBKpiStore(), load_rewards(ledger.rules))


@cache
def crm_figures() -> CrmFigures:
    """kpis_close: the monthly figures' records in Salesforce (the same JWT bearer client as crm_sync)."""
    from loyalty.adapters.salesforce import JwtCredentials, SalesforceClient
    from loyalty.crm.figures import CrmFigures
    from loyalty.wiring.settings import KpiCloseSettings

    settings = load_settings(KpiCloseSettings)
    client = SalesforceClient(
        credentials=lambda: JwtCredentials.from_secret(_secret(settings.salesforce_secret_name, settings))
    )
    return CrmFigures(client)


@cache
def monthly_report() -> MonthlyReport:
    """kpis_close: the month's report, written to the report bucket."""
    from loyalty.adapters.s3_reports import S3ReportStore
    from loyalty.kpis.report import MonthlyReport
    from loyalty.wiring.settings import KpiCloseSettings

    settings = load_settings(KpiCloseSettings)
    tiers = [tier.name for tier in _rules().tiers]
    return MonthlyReport(kpi_figures(), S3ReportStore(settings.report_bucket), tiers)


@cache
def kpi_closing() -> KpiClosing:
    """kpis_close: each month's closing figures."""
    from loyalty.adapters.dynamodb.kpis import DynamoDBKpiStore
    from loyalty.kpis.closing import KpiClosing
    from loyalty.settings import TableSettings

    _table(load_settings(TableSettings).table)
    return KpiClosing(DynamoDBKpiStore())


def kpi_changes(event: dict[str, Any]) -> KpiChanges:
    """kpis: the members who joined, the ledger entries written, the NPS answers given and the offers decided that
    a stream batch brings."""
    from loyalty.adapters.dynamodb.stream import kpi_changes as changes

    return changes(event)


@cache
def offer_sender() -> OfferSender:
    from loyalty.adapters.dynamodb.offer_records import DynamoDBOfferRecords
    from loyalty.adapters.ses_email import SesEmailSender
    from loyalty.adapters.sns_sms import SnsSmsSender
    from loyalty.clock import now
    from loyalty.offers.rules import load_offer_rules
    from loyalty.offers.sending import OfferSender
    from loyalty.offers.unsubscribe import unsubscribe_url
    from loyalty.rewards.page_links import view_link
    from loyalty.wiring.settings import OfferSenderSettings

    settings = load_settings(OfferSenderSettings)

    def link(member_id: str, channel: str) -> str:
        secret = _secret(settings.unsubscribe_secret_name, settings)
        return unsubscribe_url(settings.unsubscribe_base_url, secret, member_id, channel)

    def page_link(member_id: str) -> str:
        secret = _secret(settings.member_page_secret_name, settings)
        return view_link(settings.member_page_url, secret, member_id, now())

    return OfferSender(
        ledger=_ledger(settings.table),
        directory=_directory(settings.table),
        store=DynamoDBOfferRecords(),
        email=SesEmailSender(settings.email_from, settings.configuration_set),
        sms=SnsSmsSender(settings.sms_sender_id),
        rules=load_offer_rules(),
        links=link,
        programme_name=settings.programme_name,
        page_links=page_link,
    )


@cache
def email_feedback() -> tuple[Ledger, Directory]:
    """email_feedback: who an address belongs to, and where their consent is kept."""
    from loyalty.settings import TableSettings

    table = load_settings(TableSettings).table
    return _ledger(table), _directory(table)


@cache
def unsubscribe() -> Unsubscribe:
    from loyalty.clock import now
    from loyalty.offers.unsubscribe import Unsubscribe
    from loyalty.wiring.settings import UnsubscribeSettings

    settings = load_settings(UnsubscribeSettings)
    secret = settings.unsubscribe_secret_name
    return Unsubscribe(
        _directory(settings.table), lambda: _secret(secret, settings), settings.programme_name, clock=now
    )


def reset() -> None:
    """Forget every service built and every setting read (the embedded stack and tests change the environment)."""
    built: list[Any] = [_table, _rules, idempotency, webhook_receiver, shop_event_applier, member_ledger, crm_inbound]
    built += [crm_sync, scheduled_jobs, offer_sender, email_feedback, unsubscribe, member_page, customer_labeller]
    built += [kpi_counting, kpi_figures, kpi_closing, crm_figures, monthly_report, load_settings]
    for function in built:
        function.cache_clear()
