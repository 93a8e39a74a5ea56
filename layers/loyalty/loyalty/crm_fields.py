"""The Salesforce Contact and Task fields the programme reads and writes: the one place their API names live.

infra/salesforce holds the matching metadata; tests/unit/test_salesforce_metadata.py proves they agree.
"""

from __future__ import annotations

from enum import StrEnum


class FieldType(StrEnum):
    TEXT = "Text"
    NUMBER = "Number"
    DATE = "Date"
    DATETIME = "DateTime"
    CHECKBOX = "Checkbox"
    PICKLIST = "Picklist"


MEMBER_ID = "Loyalty_Member_Id__c"  # text, external id, unique: how a Contact is linked to a member

# Loyalty fields on Contact written by the programme, with their types.
LOYALTY_FIELDS: dict[str, FieldType] = {
    MEMBER_ID: FieldType.TEXT,
    "Loyalty_Points__c": FieldType.NUMBER,  # available points
    "Loyalty_Pending_Points__c": FieldType.NUMBER,
    "Loyalty_Lifetime_Points__c": FieldType.NUMBER,
    "Loyalty_Tier__c": FieldType.PICKLIST,
    "Loyalty_Next_Tier__c": FieldType.TEXT,
    "Loyalty_Points_To_Next_Tier__c": FieldType.NUMBER,
    "Loyalty_Points_To_Keep_Tier__c": FieldType.NUMBER,
    "Loyalty_Tier_Expires_On__c": FieldType.DATE,
    "Loyalty_Tier_Override_Until__c": FieldType.DATE,  # a CRM user's tier override: its last day
    "Loyalty_Tier_Override_Reason__c": FieldType.TEXT,
    "Loyalty_Segment__c": FieldType.PICKLIST,
    "Loyalty_Segment_Reason__c": FieldType.TEXT,
    "Loyalty_Expiring_Points__c": FieldType.NUMBER,
    "Loyalty_Points_Expire_On__c": FieldType.DATE,
    "Loyalty_Last_Activity__c": FieldType.DATETIME,
    "Loyalty_Enrolled_On__c": FieldType.DATE,
    "Loyalty_SMS_Opt_In__c": FieldType.CHECKBOX,
}

# Standard Contact fields the programme reads (and, for consent, writes back on opt-outs).
STANDARD_FIELDS: dict[str, FieldType] = {
    "Email": FieldType.TEXT,
    "MobilePhone": FieldType.TEXT,
    "Birthdate": FieldType.DATE,
    "HasOptedOutOfEmail": FieldType.CHECKBOX,
    "FirstName": FieldType.TEXT,
    "LastName": FieldType.TEXT,
}

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
