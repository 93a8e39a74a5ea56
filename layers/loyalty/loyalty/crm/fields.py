"""The Salesforce Contact and Task fields, and the transaction journal's and monthly KPI objects', that the
programme reads and writes, and how its values map onto them: the one place their API names live in Python.

infra/salesforce holds the matching metadata; tests/unit/test_salesforce_metadata.py proves they agree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from loyalty.ledger.model import Entry, MemberSummary
from loyalty.offers.records import SendRecord
from loyalty.ports.crm import RewardToArrange
from loyalty.ports.directory import HeldForReview
from loyalty.programme.rules import ProgramRules


class FieldType(StrEnum):
    TEXT = "Text"
    NUMBER = "Number"
    DATE = "Date"
    DATETIME = "DateTime"
    CHECKBOX = "Checkbox"
    PICKLIST = "Picklist"


# --- Contact ------------------------------------------------------------------------------------------------------

MEMBER_ID = "Loyalty_Member_Id__c"  # text, external id, unique: how a Contact is linked to a member
POINTS = "Loyalty_Points__c"  # available points
PENDING_POINTS = "Loyalty_Pending_Points__c"
LIFETIME_POINTS = "Loyalty_Lifetime_Points__c"
QUALIFYING_POINTS = "Loyalty_Qualifying_Points__c"  # toward the next tier this period (the card's progress bar)
TIER = "Loyalty_Tier__c"
NEXT_TIER = "Loyalty_Next_Tier__c"
POINTS_TO_NEXT_TIER = "Loyalty_Points_To_Next_Tier__c"
POINTS_TO_KEEP_TIER = "Loyalty_Points_To_Keep_Tier__c"
TIER_EXPIRES_ON = "Loyalty_Tier_Expires_On__c"
TIER_OVERRIDE_UNTIL = "Loyalty_Tier_Override_Until__c"  # a CRM user's tier override: its last day
TIER_OVERRIDE_REASON = "Loyalty_Tier_Override_Reason__c"
SEGMENT = "Loyalty_Segment__c"
SEGMENT_REASON = "Loyalty_Segment_Reason__c"
STATUS = "Loyalty_Status__c"  # text: active, blocked (and why) or leaving the programme (and when)
EXPIRING_POINTS = "Loyalty_Expiring_Points__c"
POINTS_EXPIRE_ON = "Loyalty_Points_Expire_On__c"
LAST_ACTIVITY = "Loyalty_Last_Activity__c"
ENROLLED_ON = "Loyalty_Enrolled_On__c"
SMS_OPT_IN = "Loyalty_SMS_Opt_In__c"  # set by the programme and by CRM users
LOCALE = "Loyalty_Locale__c"  # set by CRM users, read by the programme

EMAIL = "Email"
MOBILE_PHONE = "MobilePhone"
BIRTHDATE = "Birthdate"
HAS_OPTED_OUT_OF_EMAIL = "HasOptedOutOfEmail"
FIRST_NAME = "FirstName"
LAST_NAME = "LastName"

RECORD_ID = "Id"  # system fields every sObject has
LAST_MODIFIED = "LastModifiedDate"

# Loyalty fields on Contact written by the programme, with their types.
LOYALTY_FIELDS: dict[str, FieldType] = {
    MEMBER_ID: FieldType.TEXT,
    POINTS: FieldType.NUMBER,
    PENDING_POINTS: FieldType.NUMBER,
    LIFETIME_POINTS: FieldType.NUMBER,
    QUALIFYING_POINTS: FieldType.NUMBER,
    TIER: FieldType.PICKLIST,
    NEXT_TIER: FieldType.TEXT,
    POINTS_TO_NEXT_TIER: FieldType.NUMBER,
    POINTS_TO_KEEP_TIER: FieldType.NUMBER,
    TIER_EXPIRES_ON: FieldType.DATE,
    TIER_OVERRIDE_UNTIL: FieldType.DATE,
    TIER_OVERRIDE_REASON: FieldType.TEXT,
    SEGMENT: FieldType.PICKLIST,
    SEGMENT_REASON: FieldType.TEXT,
    STATUS: FieldType.TEXT,
    EXPIRING_POINTS: FieldType.NUMBER,
    POINTS_EXPIRE_ON: FieldType.DATE,
    LAST_ACTIVITY: FieldType.DATETIME,
    ENROLLED_ON: FieldType.DATE,
    SMS_OPT_IN: FieldType.CHECKBOX,
}

# Custom Contact fields the programme only reads.
READ_FIELDS: dict[str, FieldType] = {LOCALE: FieldType.TEXT}

# Standard Contact fields the programme reads (and, for consent, writes back on opt-outs).
STANDARD_FIELDS: dict[str, FieldType] = {
    EMAIL: FieldType.TEXT,
    MOBILE_PHONE: FieldType.TEXT,
    BIRTHDATE: FieldType.DATE,
    HAS_OPTED_OUT_OF_EMAIL: FieldType.CHECKBOX,
    FIRST_NAME: FieldType.TEXT,
    LAST_NAME: FieldType.TEXT,
}

# consent flag -> (the Contact field that shows it, the value it has when the member said no)
CONSENT_ON_CONTACT: dict[str, tuple[str, bool]] = {
    "email_consent": (HAS_OPTED_OUT_OF_EMAIL, True),
    "sms_consent": (SMS_OPT_IN, False),
}

# The loyalty segments marketers use here, as machine names; the picklist shows their labels.
SEGMENTS: dict[str, str] = {
    "satisfaction_driven": "Satisfaction-driven",
    "price_driven": "Price-driven",
    "opportunistic": "Opportunistic",
    "convenience_driven": "Convenience-driven",
    "loyal_ambassador": "Loyal ambassador",
    "new": "New",
    "at_risk": "At risk",
    "lapsed": "Lapsed",
}

# --- Task ---------------------------------------------------------------------------------------------------------

TASK_SEND_ID = "Loyalty_Offer_Send_Id__c"  # text, external id, unique: one Task per sent offer, upserted by it

# Task fields the programme writes when it records a sent offer (e-mail or SMS) as a completed Task on the
# member's Contact. The custom field is defined on Activity (Task and Event share it) in infra/salesforce.
TASK_FIELDS: dict[str, FieldType] = {
    "WhoId": FieldType.TEXT,  # the Contact id
    "Subject": FieldType.TEXT,
    "Status": FieldType.PICKLIST,  # Completed
    "ActivityDate": FieldType.DATE,
    "Description": FieldType.TEXT,
    "Type": FieldType.PICKLIST,  # Email or SMS (the org's admin adds SMS)
    TASK_SEND_ID: FieldType.TEXT,
}


# --- the transaction journal: a Loyalty_Transaction__c per ledger entry, on the member's Contact -------------------

JOURNAL = "Loyalty_Transaction__c"
JOURNAL_KEY = "Entry_Key__c"  # text, external id, unique: "<member id>#<entry>", upserted by it
JOURNAL_DATE = "Entry_Date__c"  # when the entry was written: the journal keeps a window of them
JOURNAL_MEMBER = "Member_Id__c"  # the member whose entry it is (an erasure deletes their records)
JOURNAL_FIELDS: dict[str, FieldType] = {
    "Contact__c": FieldType.TEXT,  # a lookup: the Contact id
    JOURNAL_MEMBER: FieldType.TEXT,
    JOURNAL_KEY: FieldType.TEXT,
    "Points__c": FieldType.NUMBER,
    "Pending_Points__c": FieldType.NUMBER,
    "Kind__c": FieldType.PICKLIST,
    "Reason__c": FieldType.TEXT,
    "Order__c": FieldType.TEXT,
    "Entry_Date__c": FieldType.DATETIME,
}

# --- the monthly figures: a Loyalty_Programme_KPI__c per month and group (programme, segment, tier) ---------------

KPI = "Loyalty_Programme_KPI__c"
KPI_KEY = "Key__c"  # text, external id, unique: "<YYYY-MM>#<group>"
KPI_FIELDS: dict[str, FieldType] = {
    KPI_KEY: FieldType.TEXT,
    "Month__c": FieldType.TEXT,
    "Group__c": FieldType.TEXT,
    "Members__c": FieldType.NUMBER,
    "New_Members__c": FieldType.NUMBER,
    "Active_Members__c": FieldType.NUMBER,
    "Active_Share__c": FieldType.NUMBER,
    "Purchasers__c": FieldType.NUMBER,
    "Returning_Share__c": FieldType.NUMBER,
    "Orders__c": FieldType.NUMBER,
    "Average_Order_Value__c": FieldType.NUMBER,
    "Currency__c": FieldType.TEXT,
    "Points_Issued__c": FieldType.NUMBER,
    "Points_Redeemed__c": FieldType.NUMBER,
    "Points_Expired__c": FieldType.NUMBER,
    "Points_Outstanding__c": FieldType.NUMBER,
    "Liability__c": FieldType.NUMBER,
    "Redemption_Rate__c": FieldType.NUMBER,
    "Breakage__c": FieldType.NUMBER,
    "NPS__c": FieldType.NUMBER,
    "Closed__c": FieldType.CHECKBOX,
}

# --- Files: the monthly report, attached to the month's KPI record ------------------------------------------------

CONTENT_VERSION = "ContentVersion"
CONTENT_VERSION_FIELDS: dict[str, FieldType] = {
    "Title": FieldType.TEXT,
    "PathOnClient": FieldType.TEXT,
    "VersionData": FieldType.TEXT,  # the file's content, base64
    "FirstPublishLocationId": FieldType.TEXT,  # the record the File is shared with
}

# --- values ---------------------------------------------------------------------------------------------------------


def contact_fields(summary: MemberSummary, rules: ProgramRules) -> dict[str, Any]:
    """The member's loyalty fields as Salesforce stores them.

    A value that is not known yet (the segment before the first review) is left out, not blanked; a value
    that no longer applies (tier expiry after falling to the lowest tier, an override that ended) is blanked."""
    next_tier = rules.tier(summary.next_tier) if summary.next_tier else None
    fields: dict[str, Any] = {
        MEMBER_ID: summary.member_id,
        POINTS: summary.available,
        PENDING_POINTS: summary.pending,
        LIFETIME_POINTS: summary.lifetime,
        QUALIFYING_POINTS: summary.qualifying,
        TIER: rules.tier(summary.tier).display_name,
        NEXT_TIER: next_tier.display_name if next_tier else None,
        POINTS_TO_NEXT_TIER: summary.points_to_next_tier,
        POINTS_TO_KEEP_TIER: summary.points_to_keep_tier,
        TIER_EXPIRES_ON: _date(summary.tier_expires_on),
        TIER_OVERRIDE_UNTIL: _date(summary.tier_override_until),
        TIER_OVERRIDE_REASON: summary.tier_override_reason,
        EXPIRING_POINTS: summary.next_expiry_points,
        POINTS_EXPIRE_ON: _date(summary.next_expiry_on),
        ENROLLED_ON: summary.enrolled_at.astimezone(UTC).date().isoformat(),
        STATUS: member_status(summary),
    }
    if summary.segment is not None:
        fields[SEGMENT] = SEGMENTS[summary.segment]
        fields[SEGMENT_REASON] = summary.segment_reason
    if summary.last_activity is not None:
        fields[LAST_ACTIVITY] = summary.last_activity.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    for flag, (field, showing_no) in CONSENT_ON_CONTACT.items():  # an opt-out (unsubscribe, bounce) reaches the CRM
        value = getattr(summary.profile, flag)
        if value is not None:
            fields[field] = (not value) if showing_no else value
    return fields


def member_status(summary: MemberSummary) -> str:
    """The member's status as the Contact shows it (in English, as the org's other loyalty texts)."""
    if summary.profile.blocked_reason:
        return f"Blocked (under review): {summary.profile.blocked_reason}"[:255]
    if summary.profile.leaving_on:
        return f"Leaving the programme on {summary.profile.leaving_on.isoformat()}"
    return "Active"


def consent_on(contact: Mapping[str, Any]) -> dict[str, bool | None]:
    """Each consent flag as a Contact's fields state it (None where a field is absent or empty): the fields a CRM
    user changed, or the fields last pushed to the Contact."""
    stated: dict[str, bool | None] = {}
    for flag, (field, showing_no) in CONSENT_ON_CONTACT.items():
        value = contact.get(field)
        stated[flag] = None if value is None else (not value) if showing_no else bool(value)
    return stated


def new_contact(summary: MemberSummary) -> dict[str, Any]:
    """A Contact for a member the org does not know yet (only when creating Contacts is switched on)."""
    return {
        LAST_NAME: summary.profile.first_name or "Member",
        EMAIL: summary.profile.email,
        MEMBER_ID: summary.member_id,
    }


def task_send_id(sent: SendRecord) -> str:
    """The Task's external id: the same send always upserts the same Task."""
    digest = hashlib.sha256(f"{sent.dedup}#{sent.channel}".encode()).hexdigest()[:24]
    return f"{sent.member_id}:{digest}"


def task_fields(sent: SendRecord, contact_id: str) -> dict[str, Any]:
    """A sent offer as a completed Task on the member's Contact."""
    what = sent.offer_code or sent.template_key.replace("_", " ")
    channel = "E-mail" if sent.channel == "email" else "SMS"
    subject = f"Loyalty offer {what} sent by {channel} (template {sent.template_key})"
    if sent.trigger == "reward_redeemed":  # the code of a reward the member spent points on
        subject = f"Reward redeemed: {sent.subject or sent.template_key} (code sent by {channel})"
    return {
        "WhoId": contact_id,
        "Subject": subject[:255],
        "Status": "Completed",
        "ActivityDate": sent.decided_at.astimezone(UTC).date().isoformat(),
        "Type": "Email" if sent.channel == "email" else "SMS",
        "Description": (
            f"Sent by the loyalty programme on {sent.decided_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC "
            f"({sent.trigger}), in {sent.language or 'en'}: {sent.subject or ''}"
        )[:32000],
        TASK_SEND_ID: task_send_id(sent),
    }


def review_task_fields(held: HeldForReview, contact_id: str) -> dict[str, Any]:
    """An order held for review as an open Task on the member's Contact: a CRM user looks at it with the shop."""
    order = held.order
    return _open_task(
        contact_id,
        f"Loyalty: order {order.order_id} held for review",
        held.held_at,
        f"The loyalty programme did not apply order {order.order_id} from {order.shop}, placed "
        f"{order.placed_at.astimezone(UTC):%Y-%m-%d}: {held.reason}. No points were given. Check the order "
        "with the shop; python -m infra.held_orders lists every held order.",
        f"review:{_digest(f'{order.shop}#{order.order_id}')}",
    )


def reward_task_fields(reward: RewardToArrange, contact_id: str) -> dict[str, Any]:
    """An experience a member redeemed as an open Task on their Contact: a person arranges it and closes the Task."""
    return _open_task(
        contact_id,
        f"Loyalty reward to arrange: {reward.reward_id}",
        reward.redeemed_at,
        f"The member spent {reward.points} points on the reward {reward.reward_id} on "
        f"{reward.redeemed_at.astimezone(UTC):%Y-%m-%d} (redemption {reward.redemption_id}). Contact them to "
        "arrange it, then close this Task. If it cannot be arranged, cancel the redemption through the member "
        "API: the points come back.",
        f"reward:{_digest(f'{reward.member_id}#{reward.redemption_id}')}",
    )


def _open_task(contact_id: str, subject: str, on: datetime, description: str, send_id: str) -> dict[str, Any]:
    """An open Task on the Contact, keyed by ``send_id`` so that a retry finds it rather than adding another."""
    return {
        "WhoId": contact_id,
        "Subject": subject[:255],
        "Status": "Not Started",
        "ActivityDate": on.astimezone(UTC).date().isoformat(),
        "Description": description[:32000],
        TASK_SEND_ID: send_id,
    }


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:24]


def _date(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def journal_record(entry: Entry, contact_id: str) -> dict[str, Any]:
    """A ledger entry as its journal record on the member's Contact (a reason longer than the field is cut)."""
    return {
        JOURNAL_KEY: f"{entry.member_id}#{entry.source_key}"[:255],
        "Contact__c": contact_id,
        JOURNAL_MEMBER: entry.member_id,
        "Points__c": entry.points,
        "Pending_Points__c": entry.pending,
        "Kind__c": entry.kind.value,
        "Reason__c": entry.reason[:255],
        "Order__c": entry.order_key[:255] if entry.order_key else None,
        "Entry_Date__c": entry.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


def kpi_records(rows: Iterable[Mapping[str, Any]], currency: str) -> list[dict[str, Any]]:
    """The monthly figures (GET /kpis rows: the programme's, a segment's or a tier's month) as KPI records, once
    per month and group; money in ``currency`` (the reporting currency; an average order in another is left out)."""
    records: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = f"{row['month']}#{row['group']}"
        average = row.get("averageOrderValue", {}).get(currency)
        liability = row.get("liability")
        records[key] = {
            KPI_KEY: key,
            "Month__c": row["month"],
            "Group__c": row["group"],
            "Members__c": row.get("members"),
            "New_Members__c": row.get("newMembers", row.get("membersEnrolled")),
            "Active_Members__c": row.get("activeMembers"),
            "Active_Share__c": row.get("activeShare"),
            "Purchasers__c": row.get("purchasers"),
            "Returning_Share__c": row.get("returningShare"),
            "Orders__c": row.get("orders"),
            "Average_Order_Value__c": float(average) if average is not None else None,
            "Currency__c": currency,
            "Points_Issued__c": row.get("pointsIssued"),
            "Points_Redeemed__c": row.get("pointsRedeemed"),
            "Points_Expired__c": row.get("pointsExpired"),
            "Points_Outstanding__c": row.get("pointsOutstanding"),
            "Liability__c": float(liability["amount"]) if liability else None,
            "Redemption_Rate__c": row.get("redemptionRate"),
            "Breakage__c": row.get("breakage"),
            "NPS__c": row.get("nps"),
            "Closed__c": bool(row.get("closed", False)),
        }
    return list(records.values())
