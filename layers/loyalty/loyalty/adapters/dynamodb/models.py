"""The loyalty table as pynamodb models: the only place that knows its keys and attribute names.

template.yaml declares the same table; tests/integration/test_table_schema.py proves they agree.
"""

from __future__ import annotations

import hashlib
import os
from contextlib import suppress
from datetime import date
from functools import cache
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    DiscriminatorAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.connection import Connection, TableConnection
from pynamodb.exceptions import PynamoDBException, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.expressions.update import Action
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex, LocalSecondaryIndex
from pynamodb.models import Model


class ByTimeIndex(LocalSecondaryIndex["LoyaltyItem"]):
    class Meta:
        index_name = "by_time"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    hist_sk = UnicodeAttribute(range_key=True)


class OpenLotsIndex(LocalSecondaryIndex["LoyaltyItem"]):
    class Meta:
        index_name = "open_lots"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    lot_end = NumberAttribute(range_key=True)


class DueIndex(GlobalSecondaryIndex["LoyaltyItem"]):
    class Meta:
        index_name = "due"
        projection = AllProjection()

    due_pk = UnicodeAttribute(hash_key=True)
    due_sk = UnicodeAttribute(range_key=True)


class LoyaltyItem(Model):
    class Meta:
        table_name = "loyalty"
        region: str | None = None
        host: str | None = None

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    type = DiscriminatorAttribute()
    hist_sk = UnicodeAttribute(null=True)
    lot_end = NumberAttribute(null=True)
    due_pk = UnicodeAttribute(null=True)
    due_sk = UnicodeAttribute(null=True)
    ttl = NumberAttribute(null=True)  # epoch seconds; only on temporary items (guest order holds)

    by_time = ByTimeIndex()
    open_lots = OpenLotsIndex()
    due = DueIndex()

    @classmethod
    def _get_connection(cls) -> TableConnection:
        """The model's table on the one botocore client of its endpoint: pynamodb gives each model class a client
        of its own, and each costs tens of milliseconds to create (a cold start creates them all)."""
        table = super()._get_connection()
        shared = table_connection()
        if table.connection is not shared:
            with suppress(ValueError):  # the schema of this table is known already: every item type shares it
                shared.add_meta_table(table.connection.get_meta_table(table.table_name))
            table.connection = shared
        return table


class MemberItem(LoyaltyItem, discriminator="member"):
    member_id = UnicodeAttribute()
    email = UnicodeAttribute(null=True)
    first_name = UnicodeAttribute(null=True)
    last_name = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)
    locale = UnicodeAttribute(null=True)
    email_consent = BooleanAttribute(null=True)
    email_consent_at = UTCDateTimeAttribute(null=True)  # when the e-mail consent last changed (or was stated)
    sms_consent = BooleanAttribute(null=True)
    sms_consent_at = UTCDateTimeAttribute(null=True)
    crm_contact_id = UnicodeAttribute(null=True)
    birthdate = UnicodeAttribute(null=True)  # ISO date
    profile_updated_at = UTCDateTimeAttribute(null=True)  # time of the newest profile change applied
    enrolled_at = UTCDateTimeAttribute()
    last_activity = UTCDateTimeAttribute(null=True)
    available = NumberAttribute(default=0)
    pending = NumberAttribute(default=0)
    lifetime = NumberAttribute(default=0)
    released = NumberAttribute(default=0)  # length of the lot stream
    consumed = NumberAttribute(default=0)  # taken from the front of the stream
    redeemed = NumberAttribute(default=0)
    expired = NumberAttribute(default=0)
    lot_expiry_max = UnicodeAttribute(null=True)  # ISO date of the newest lot's expiry
    qualifying: MapAttribute[str, Any] = MapAttribute(default=dict)  # month "YYYY-MM" -> qualifying points
    qualifying_version = NumberAttribute(default=0)  # +1 on every change of `qualifying`, the tier or its override
    tier = UnicodeAttribute(null=True)  # the earned tier; absent: the lowest
    tier_period_end = UnicodeAttribute(null=True)  # ISO date; the tier is assessed after it (loyalty.programme.tiers)
    tier_changed_at = UTCDateTimeAttribute(null=True)  # when the earned tier last changed (the figures' tier moves)
    tier_override: MapAttribute[str, Any] = MapAttribute(null=True)  # {tier, valid_until, reason, actor}
    segment = UnicodeAttribute(null=True)
    segment_reason = UnicodeAttribute(null=True)
    segment_rfm = UnicodeAttribute(null=True)
    offers: MapAttribute[str, Any] = MapAttribute(default=dict)  # granted offers that change earning (see Ledger)
    segment_on = UnicodeAttribute(null=True)  # ISO date the segment was judged for
    segment_at = UTCDateTimeAttribute(null=True)  # when it was computed (from the entries written up to then)
    customers = UnicodeSetAttribute(null=True)  # "<shop>#<customer id>" of each shop customer linked to the member
    erased_at = UTCDateTimeAttribute(null=True)  # when the person's data was erased (the CRM push's cue)
    email_parked = UnicodeAttribute(null=True)  # a new e-mail another member holds, waiting for a person to decide
    blocked_reason = UnicodeAttribute(null=True)  # set while the member is blocked: no earning, no redeeming
    joined_via = UnicodeAttribute(null=True)  # a shop ("shopify:<domain>"), "crm" or "import"
    leaving_on = UnicodeAttribute(null=True)  # ISO date: the member leaves; their points are forfeited that day
    terms_version = UnicodeAttribute(null=True)  # the programme terms in force when they joined
    blocked_at = UTCDateTimeAttribute(null=True)
    blocked_by = UnicodeAttribute(null=True)
    email_parked_reason = UnicodeAttribute(null=True)


class EntryItem(LoyaltyItem, discriminator="entry"):
    member_id = UnicodeAttribute()
    source_key = UnicodeAttribute()
    kind = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    points = NumberAttribute(default=0)
    pending = NumberAttribute(default=0)
    lifetime = NumberAttribute(default=0)
    qualifying = NumberAttribute(default=0)
    reason = UnicodeAttribute()
    source = UnicodeAttribute(null=True)
    order_key = UnicodeAttribute(null=True)
    actor = UnicodeAttribute(null=True)
    campaigns = ListAttribute(of=UnicodeAttribute, null=True)
    lines: MapAttribute[str, Any] = MapAttribute(null=True)
    lot_start = NumberAttribute(null=True)
    expires_on = UnicodeAttribute(null=True)
    unrecovered = NumberAttribute(default=0)
    month = UnicodeAttribute(null=True)  # "YYYY-MM" whose qualifying points this entry changes
    tier = UnicodeAttribute(null=True)  # accrual: the tier it earned at; tier entries: the tier decided
    tier_reached = UnicodeAttribute(null=True)  # accrual: the tier this order reached at once
    tier_period_end = UnicodeAttribute(null=True)  # ISO date: period end the entry set
    valid_until = UnicodeAttribute(null=True)  # tier override: last day
    placed_on = UnicodeAttribute(null=True)  # accrual: the order's date
    base_points = NumberAttribute(null=True)  # accrual: what the order earns at x1 (its spend, for segments)
    value = UnicodeAttribute(null=True)  # accrual: the order's value; reversal: what the refund took off (exact)
    currency = UnicodeAttribute(null=True)
    discounted = BooleanAttribute(null=True)  # accrual: a discount code was used
    categories = ListAttribute(of=UnicodeAttribute, null=True)  # accrual: the order's product categories
    offers = ListAttribute(of=UnicodeAttribute, null=True)  # accrual: codes of the member's offers that applied


class OrderItem(LoyaltyItem, discriminator="order"):
    """An order's earning state. Created by the accrual, or first by a refund that arrived before its order."""

    member_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute(null=True)  # pending | released | cancelled
    earned = NumberAttribute(null=True)
    left = NumberAttribute(null=True)
    qualifying_earned = NumberAttribute(null=True)
    qualifying_left = NumberAttribute(null=True)
    qualifying_month = UnicodeAttribute(null=True)
    earned_on = UnicodeAttribute(null=True)
    release_on = UnicodeAttribute(null=True)  # while pending; on the due index as RELEASE#<shard> / <date>#<key>
    currency = UnicodeAttribute(null=True)
    lines: MapAttribute[str, Any] = MapAttribute(null=True)  # line id -> {q, ql, p, pl, v, vl} (values exact)
    refunds = UnicodeSetAttribute(null=True)  # refund ids applied
    parked: MapAttribute[str, Any] = MapAttribute(null=True)  # refund id -> {line id: quantity} or {} for all
    version = NumberAttribute(default=0)  # +1 on every write: each is conditioned on the version read


class EmailItem(LoyaltyItem, discriminator="email"):
    """One per e-mail address (keyed by its hash): the same person in two shops is one member."""

    member_id = UnicodeAttribute()


class CustomerItem(LoyaltyItem, discriminator="customer"):
    """A shop's customer id linked to the member."""

    member_id = UnicodeAttribute()


class ProductItem(LoyaltyItem, discriminator="product"):
    """The product catalogue: order lines carry no product type, so categories come from here."""

    title = UnicodeAttribute()
    categories = ListAttribute(of=UnicodeAttribute, default=list)
    updated_at = UTCDateTimeAttribute()


class HeldOrderItem(LoyaltyItem, discriminator="held_order"):
    """A guest order with an e-mail, held until ``hold_until`` so its points can be claimed on enrolment."""

    order = UnicodeAttribute()  # the Order as JSON
    hold_until = UTCDateTimeAttribute()


class ReviewHoldItem(LoyaltyItem, discriminator="review_hold"):
    """An order beyond the programme's bounds, kept unapplied for an operator (pk REVIEW_HOLD: they are few)."""

    order = UnicodeAttribute()  # the Order as JSON
    reason = UnicodeAttribute()
    held_at = UTCDateTimeAttribute()
    member_id = UnicodeAttribute(null=True)  # the customer's member, if they are one
    task_state = UnicodeAttribute(null=True)  # their CRM Task: pending (the stream passes it), pushed, ...


class RequestItem(LoyaltyItem, discriminator="request"):
    """A CRM request id already applied (Flow callouts answer "duplicate" on a repeat)."""


class CrmStateItem(LoyaltyItem, discriminator="crm_state"):
    """What was last pushed to the member's Contact, and why a member is not in sync (parked, unlinked, stale).

    Members not in sync carry due_pk CRM#parked / CRM#unlinked / CRM#stale, so they can be listed, never lost.
    push_requested (with push_requested_at, so that every request changes the item) is set by a job that asks
    for the member's push again: template.yaml's filter passes that change on the stream to crm_sync, whose
    next save of the state drops both (crm_sync saves only a state that changed: an unchanged one keeps the mark,
    which is harmless, since only a write reaches the stream)."""

    member_id = UnicodeAttribute()
    pushed: MapAttribute[str, Any] = MapAttribute(default=dict)  # field API name -> value as last sent
    status = UnicodeAttribute()  # synced | parked | unlinked | stale
    reason = UnicodeAttribute(null=True)
    updated_at = UTCDateTimeAttribute()
    push_requested = BooleanAttribute(null=True)
    push_requested_at = UTCDateTimeAttribute(null=True)


class ReviewItem(LoyaltyItem, discriminator="review"):
    """When the member's tier and segment are next looked at: due_pk REVIEW#<date>."""

    member_id = UnicodeAttribute()
    review_on = UnicodeAttribute()  # ISO date


class NpsAnswerItem(LoyaltyItem, discriminator="nps"):
    """MEMBER#<id> / NPS#<survey>: the member's answer to an NPS survey; due_pk NPS#<YYYY-MM> finds a month's."""

    member_id = UnicodeAttribute()
    survey_id = UnicodeAttribute()
    score = NumberAttribute()
    responded_at = UTCDateTimeAttribute()
    month = UnicodeAttribute()
    segment = UnicodeAttribute(null=True)
    tier = UnicodeAttribute(null=True)
    comment = UnicodeAttribute(null=True)
    request_id = UnicodeAttribute(null=True)


class KpiItem(LoyaltyItem, discriminator="kpi"):
    """KPI#<YYYY-MM> / GROUP#<group>: a month's figures for the programme, a tier or a segment: an atomic counter
    per figure, named as loyalty.kpis.flows names them (money per currency, e.g. ``order_value#SEK``, exact), so
    written and read by loyalty.adapters.dynamodb.kpis through the low-level client."""


class MemberMonthsItem(LoyaltyItem, discriminator="kpi_member"):
    """MEMBER#<id> / KPI_MONTHS: what the figures note for the member (last active, last bought, first bought; the
    tier and segment their stocks count in, the points held there, the latest month counted), moved with the
    months' counters in one transaction (loyalty.ports.kpis.MemberMonths)."""

    active = UnicodeAttribute(null=True)
    bought = UnicodeAttribute(null=True)
    first_bought = UnicodeAttribute(null=True)
    tier = UnicodeAttribute(null=True)
    segment = UnicodeAttribute(null=True)
    held = NumberAttribute(null=True)
    latest = UnicodeAttribute(null=True)


class KpiExposureItem(LoyaltyItem, discriminator="kpi_offer"):
    """MEMBER#<id> / KPI_OFFER#<dedup>: an offer measured against its holdout, decided for the member, and what they
    bought in its window (loyalty.ports.kpis.Exposure; written and read by loyalty.adapters.dynamodb.kpis)."""

    trigger = UnicodeAttribute()
    arm = UnicodeAttribute()
    decided_at = UnicodeAttribute()
    until = UnicodeAttribute()
    month = UnicodeAttribute()
    orders = NumberAttribute(default=0)
    revenue = NumberAttribute(default=0)
    counted = UnicodeSetAttribute(null=True)


class KpiCountedItem(LoyaltyItem, discriminator="kpi_counted"):
    """KPI#<YYYY-MM> / COUNTED#<entry>: the entry's contribution is in the month's figures (gone with its ttl,
    long after the stream could deliver the entry again)."""


class BirthdayItem(LoyaltyItem, discriminator="birthday"):
    """The member's birthday on the due index (BIRTHDAY#<MM-DD>), and when it was entered."""

    member_id = UnicodeAttribute()
    birthdate = UnicodeAttribute()  # ISO date
    entered_on = UnicodeAttribute()  # ISO date the programme learnt this birthday


class JobRunItem(LoyaltyItem, discriminator="job_run"):
    """One scheduled job's run for one date: done, or where it got to (so a rerun resumes there)."""

    status = UnicodeAttribute()  # running | done
    cursor = UnicodeAttribute(null=True)  # the due index's LastEvaluatedKey, as JSON
    processed = NumberAttribute(default=0)
    changed = NumberAttribute(default=0)
    updated_at = UTCDateTimeAttribute()


class OfferSendItem(LoyaltyItem, discriminator="offer_send"):
    """MEMBER#<id> / SEND#<dedup>#<channel>: what was decided for one offer on one channel, and why."""

    member_id = UnicodeAttribute()
    channel = UnicodeAttribute()
    status = UnicodeAttribute()  # sending | sent | refused | capped | held | failed
    reason = UnicodeAttribute(null=True)
    evidence: MapAttribute[str, Any] = MapAttribute(null=True)  # consent: which flag, its value, when, from where
    request = UnicodeAttribute()  # the OfferRequest as JSON (a held message is sent from it later)
    request_id = UnicodeAttribute()
    trigger = UnicodeAttribute()
    template_key = UnicodeAttribute()
    offer_code = UnicodeAttribute(null=True)
    language = UnicodeAttribute(null=True)
    subject = UnicodeAttribute(null=True)  # e-mail subject; for SMS the first words
    message_id = UnicodeAttribute(null=True)
    hold_until = UTCDateTimeAttribute(null=True)
    decided_at = UTCDateTimeAttribute()
    task_state = UnicodeAttribute(null=True)  # pending -> pushed | no_contact | refused: the CRM Task of a sent offer
    task_reason = UnicodeAttribute(null=True)


class ContactCapItem(LoyaltyItem, discriminator="contact_cap"):
    """MEMBER#<id> / CAP#<kind>#<channel>: when the member was last contacted, for the frequency cap."""

    sent = ListAttribute(of=UnicodeAttribute, default=list)  # "<ISO time>|<message key>" within the window
    version = NumberAttribute(default=0)


class RedemptionItem(LoyaltyItem, discriminator="redemption"):
    """MEMBER#<id> / REDEMPTION#<redemption id>: a reward a member spent points on, and what became of it."""

    member_id = UnicodeAttribute()
    reward_id = UnicodeAttribute()
    kind = UnicodeAttribute()
    shop = UnicodeAttribute()
    points = NumberAttribute()
    status = UnicodeAttribute()
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    request_hash = UnicodeAttribute()
    code = UnicodeAttribute(null=True)
    valid_until = UnicodeAttribute(null=True)  # ISO date
    actor = UnicodeAttribute(null=True)
    reason = UnicodeAttribute(null=True)
    order_key = UnicodeAttribute(null=True)
    shop_code_id = UnicodeAttribute(null=True)
    apply_url = UnicodeAttribute(null=True)
    task_state = UnicodeAttribute(null=True)  # an experience's CRM Task (pending: crm_sync records it)


class RedemptionCodeItem(LoyaltyItem, discriminator="redemption_code"):
    """CODE#<shop>#<code, upper case> / CODE: whose redemption a code is (an order that uses it finds it)."""

    member_id = UnicodeAttribute()
    redemption_id = UnicodeAttribute()


class RewardUsesItem(LoyaltyItem, discriminator="reward_uses"):
    """MEMBER#<id> / REWARD#<reward id>: how often the member redeemed the reward, by month and in all."""

    months: MapAttribute[str, Any] = MapAttribute(default=dict)  # "YYYY-MM" -> redemptions
    lifetime = NumberAttribute(default=0)
    version = NumberAttribute(default=0)


ALL_MODELS: tuple[type[LoyaltyItem], ...] = (
    LoyaltyItem,
    MemberItem,
    EntryItem,
    OrderItem,
    EmailItem,
    CustomerItem,
    ProductItem,
    HeldOrderItem,
    CrmStateItem,
    RequestItem,
    ReviewItem,
    BirthdayItem,
    NpsAnswerItem,
    KpiItem,
    KpiCountedItem,
    MemberMonthsItem,
    KpiExposureItem,
    JobRunItem,
    OfferSendItem,
    ContactCapItem,
    RedemptionItem,
    RedemptionCodeItem,
    RewardUsesItem,
)


def bind_table(table_name: str, region: str | None = None, host: str | None = None) -> None:
    """Point the models at a table. ``host`` None lets botocore use AWS_ENDPOINT_URL(_DYNAMODB) if set."""
    LoyaltyItem.Meta.table_name = table_name
    LoyaltyItem.Meta.region = region
    LoyaltyItem.Meta.host = host
    for model in ALL_MODELS:
        model._connection = None  # indexes use their model's connection


@cache
def _connection(region: str | None, host: str | None) -> Connection:
    return Connection(region=region, host=host)


def table_connection() -> Connection:
    """The connection transactions use: one botocore client per endpoint for the process (slow to create). With no
    host bound, the endpoint the environment names is part of the key: a client keeps the endpoint it was made
    with, so one made without it must not serve a process that has one since."""
    host = LoyaltyItem.Meta.host
    if host is None:
        host = os.environ.get("AWS_ENDPOINT_URL_DYNAMODB") or os.environ.get("AWS_ENDPOINT_URL")
    return _connection(LoyaltyItem.Meta.region, host)


REVIEW_SHARDS = 8
RELEASE_SHARDS = 8


def _shard(key: str, shards: int) -> int:
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % shards


def review_due(member_id: str, on: date) -> tuple[str, str]:
    """The due-index key of a member's next review: sharded partitions sorted by date, so one query per shard
    finds every review due up to a day, however long ago it fell due."""
    return f"REVIEW#{_shard(member_id, REVIEW_SHARDS)}", f"{on.isoformat()}#{member_id}"


def review_brought_forward(member_id: str, on: date) -> tuple[list[Action], Condition]:
    """The update that makes sure the member is reviewed on ``on`` or earlier, and its condition: a review due
    later (or none) is replaced; one due by then fails the condition (and is kept)."""
    due_pk, due_sk = review_due(member_id, on)
    actions: list[Action] = [
        ReviewItem.type.set(ReviewItem),
        ReviewItem.member_id.set(member_id),
        ReviewItem.review_on.set(on.isoformat()),
        ReviewItem.due_pk.set(due_pk),
        ReviewItem.due_sk.set(due_sk),
    ]
    return actions, ReviewItem.review_on.does_not_exist() | (ReviewItem.review_on > on.isoformat())


def release_due(order_key: str, on: date) -> tuple[str, str]:
    """The due-index key of a pending order: sharded partitions sorted by release day, so one query per shard
    finds every order whose return window has passed, however long ago (a day's orders spread over the shards,
    so a sale's burst of writes is not one partition's)."""
    return f"RELEASE#{_shard(order_key, RELEASE_SHARDS)}", f"{on.isoformat()}#{order_key}"


def can_exist(pk: str, sk: str) -> bool:
    """False for a key over DynamoDB's limits (2,048 bytes of partition key, 1,024 of sort key): no item has it,
    and DynamoDB would refuse the request rather than find nothing (an id of 2,000 characters from a caller)."""
    return len(pk.encode("utf-8", "surrogatepass")) <= 2048 and len(sk.encode("utf-8", "surrogatepass")) <= 1024


def code_pk(shop: str, code: str) -> str:
    return f"CODE#{shop}#{code.upper()}"


def member_pk(member_id: str) -> str:
    return f"MEMBER#{member_id}"


def order_pk(order_key: str) -> str:
    return f"ORDER#{order_key}"


def product_pk(shop: str, product_id: str) -> str:
    return f"PRODUCT#{shop}#{product_id}"


def product_id_of(item: ProductItem) -> str:
    return item.pk.rsplit("#", 1)[1]


def email_pk(email: str) -> str:
    """The e-mail's key: a hash of the normalised address, so no key holds the address itself."""
    return "EMAIL#" + hashlib.sha256(normalise_email(email).encode()).hexdigest()


def normalise_email(email: str) -> str:
    return email.strip().lower()


MEMBER_SK = "MEMBER"
CRM_STATE_SK = "CRM"
EMAIL_SK = "EMAIL"
ORDER_SK = "ORDER"
ENTRY_PREFIX = "ENTRY#"
REVIEW_SK = "REVIEW"
BIRTHDAY_SK = "BIRTHDAY"
PRODUCT_SK = "PRODUCT"
REDEMPTION_PREFIX = "REDEMPTION#"
CODE_SK = "CODE"
REWARD_USES_PREFIX = "REWARD#"


def condition_failed(error: PynamoDBException) -> bool:
    """The write was refused because a condition did not hold (a single write's, or any item's of a transaction)."""
    if isinstance(error, TransactWriteError):
        return any(reason and reason.code == "ConditionalCheckFailed" for reason in error.cancellation_reasons or [])
    return error.cause_response_code == "ConditionalCheckFailedException"
