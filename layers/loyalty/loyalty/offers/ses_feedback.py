"""SES feedback about sent mail, as SES publishes it to an SNS topic: bounces and complaints per recipient.

Reads the `Sns.Message` string of a Lambda SNS event record in either format AWS documents:
- event publishing through a configuration set: `eventType` ("Bounce", "Complaint", "Delivery", "Send",
  "Reject", "Open", "Click", ...), with the message tags in `mail.tags` (name -> list of values);
- identity notifications: `notificationType` ("Bounce", "Complaint", "Delivery"), without tags.
Only bounces and complaints give feedback, one per recipient; any other type (including SES's
"AmazonSnsSubscriptionSucceeded" test notice) gives []. A message that is not a JSON object, or a bounce or
complaint lacking a field we need, raises MalformedPayloadError naming the field path, never the address.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, StringConstraints, ValidationError
from pydantic.alias_generators import to_camel

from loyalty.consent import EmailFeedback
from loyalty.errors import MalformedPayloadError
from loyalty.wire_json import describe, load_json

WHAT = "SES notification"

Address = Annotated[str, StringConstraints(strip_whitespace=True, to_lower=True, min_length=1)]
NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", alias_generator=to_camel)


class _Recipient(_Wire):
    email_address: Address


class _Mail(_Wire):
    message_id: NonEmpty
    timestamp: AwareDatetime | None = None
    tags: dict[str, list[str]] = {}


class _Bounce(_Wire):
    bounce_type: NonEmpty
    bounced_recipients: list[_Recipient]
    feedback_id: NonEmpty
    timestamp: AwareDatetime | None = None


class _Complaint(_Wire):
    complained_recipients: list[_Recipient]
    feedback_id: NonEmpty
    timestamp: AwareDatetime | None = None


class _BounceNotice(_Wire):
    mail: _Mail
    bounce: _Bounce


class _ComplaintNotice(_Wire):
    mail: _Mail
    complaint: _Complaint


def parse_ses_notification(message: str) -> list[EmailFeedback]:
    """The bounces and complaints an SES notification (the SNS record's `Sns.Message`) reports, one per recipient."""
    body = load_json(message.encode(), WHAT)
    if not isinstance(body, dict):
        raise MalformedPayloadError(f"{WHAT}: body is not a JSON object")
    event_type, notification_type = body.get("eventType"), body.get("notificationType")
    kind = event_type if event_type is not None else notification_type
    if not isinstance(kind, str):
        raise MalformedPayloadError(f"{WHAT}: eventType or notificationType: a string is required")
    tagged = event_type is not None
    try:
        if kind == "Bounce":
            return _bounces(_BounceNotice.model_validate(body), tagged)
        if kind == "Complaint":
            return _complaints(_ComplaintNotice.model_validate(body), tagged)
    except ValidationError as error:
        raise MalformedPayloadError(f"{WHAT} ({kind}): {describe(error)}") from None
    return []


def _bounces(notice: _BounceNotice, tagged: bool) -> list[EmailFeedback]:
    bounce = notice.bounce
    at = _time(bounce.timestamp, notice.mail, "bounce")
    recipients = _recipients(bounce.bounced_recipients, "bounce.bouncedRecipients")
    return [
        EmailFeedback(
            email=email,
            kind="bounce",
            permanent=bounce.bounce_type == "Permanent",
            at=at,
            feedback_id=f"{bounce.feedback_id}:{email}",
            message_id=notice.mail.message_id,
            tags=_tags(notice.mail) if tagged else {},
        )
        for email in recipients
    ]


def _complaints(notice: _ComplaintNotice, tagged: bool) -> list[EmailFeedback]:
    complaint = notice.complaint
    at = _time(complaint.timestamp, notice.mail, "complaint")
    recipients = _recipients(complaint.complained_recipients, "complaint.complainedRecipients")
    return [
        EmailFeedback(
            email=email,
            kind="complaint",
            permanent=True,
            at=at,
            feedback_id=f"{complaint.feedback_id}:{email}",
            message_id=notice.mail.message_id,
            tags=_tags(notice.mail) if tagged else {},
        )
        for email in recipients
    ]


def _recipients(recipients: list[_Recipient], path: str) -> list[str]:
    """The distinct recipient addresses, in order; a notice about nobody is malformed."""
    if not recipients:
        raise MalformedPayloadError(f"{WHAT}: {path}: at least one recipient is required")
    return list(dict.fromkeys(recipient.email_address for recipient in recipients))


def _time(timestamp: datetime | None, mail: _Mail, kind: str) -> datetime:
    if timestamp is not None:
        return timestamp.astimezone(UTC)
    if mail.timestamp is not None:
        return mail.timestamp.astimezone(UTC)
    raise MalformedPayloadError(f"{WHAT}: {kind}.timestamp (or mail.timestamp) is required")


def _tags(mail: _Mail) -> dict[str, str]:
    return {name: values[0] for name, values in mail.tags.items() if values}
