"""Opt-outs that come back from the channels: e-mail bounces and complaints (SES through SNS) and unsubscribe
links. Each turns the member's consent for that channel off, as of when it happened (a newer consent change,
such as a later opt-in in the CRM, is not overwritten), and crm_sync carries it to the Contact."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from loyalty.adapters.dynamodb_directory import Directory
from loyalty.adapters.dynamodb_ledger import Ledger
from loyalty.adapters.ses_feedback import EmailFeedback
from loyalty.observability import logger, mask_email

CONSENT_FIELD = {"email": "email_consent", "sms": "sms_consent"}


def apply_email_feedback(ledger: Ledger, directory: Directory, feedback: Iterable[EmailFeedback]) -> int:
    """Opt members out of e-mail for complaints and permanent bounces; returns how many changed."""
    changed = 0
    for notice in feedback:
        if not notice.permanent:
            logger.info("transient bounce ignored", email=mask_email(notice.email))
            continue
        member_id = ledger.member_for_email(notice.email)
        if member_id is None:
            logger.info("e-mail feedback for no member", email=mask_email(notice.email), kind=notice.kind)
            continue
        if directory.update_profile(member_id, {"email_consent": False}, notice.at):
            logger.info("e-mail opt-out recorded", member_id=member_id, kind=notice.kind)
            changed += 1
    return changed


def opt_out(directory: Directory, member_id: str, channel: str, at: datetime) -> bool:
    """The member unsubscribed from ``channel`` (a link in a message)."""
    return directory.update_profile(member_id, {CONSENT_FIELD[channel]: False}, at)
