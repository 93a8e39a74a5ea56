"""Flow HTTP callouts from Salesforce: authenticate them, parse their JSON into frozen models, shape the answer.

Authentication (verify over the exact bytes received, before parsing), either of:
- `x-loyalty-secret: <secret>`, set in a Salesforce External Credential;
- `x-loyalty-signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, from the Apex action we ship;
  several v1= entries may be sent (secret rotation): any match will do. The timestamp must be within
  `tolerance_seconds` of now, either way.

Body: `schemaVersion` (1), `type`, `requestId` (the idempotency key: Flow may call twice), `orgId`,
`requestedAt`, `source`, `contact`, then what the type needs. Taken as Flow sends them: unknown fields are
ignored; an integer may come as a JSON number or as text of digits ("1", a whole 250.0 too), a yes/no as a
boolean or as "true"/"false"; a number that does not apply to the offer's kind may be 0, null or absent.
An object where text or a number is expected, a fraction where an integer is, is refused. Errors name the
field path, never a value (they may be personal data).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from loyalty.errors import InvalidSignatureError, MalformedPayloadError

SECRET_HEADER = "x-loyalty-secret"
MAX_ADJUSTMENT = 1_000_000  # points one adjustment may add or take: a slip of the keyboard is refused, not applied
SIGNATURE_HEADER = "x-loyalty-signature"

# --- authentication ---------------------------------------------------------------------------------------

_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def verify_callout(
    raw_body: bytes, headers: Mapping[str, str], secret: str, now: datetime, tolerance_seconds: int = 300
) -> None:
    """Return if the callout carries the shared secret or a fresh, valid signature; else InvalidSignatureError.

    `headers` has lower-cased names. An empty secret refuses everything. `now` must be timezone-aware.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if not secret:
        raise InvalidSignatureError("flow callout: no secret is configured")
    key = secret.encode()
    presented = headers.get(SECRET_HEADER)
    if presented is not None and hmac.compare_digest(presented.encode(), key):
        return
    signature = headers.get(SIGNATURE_HEADER)
    if signature is not None and _signature_matches(raw_body, signature, key, now, tolerance_seconds):
        return
    raise InvalidSignatureError("flow callout: missing or invalid secret or signature")


def _signature_matches(raw_body: bytes, header: str, key: bytes, now: datetime, tolerance_seconds: int) -> bool:
    timestamps: list[str] = []
    candidates: list[bytes] = []
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            try:
                candidates.append(bytes.fromhex(value))
            except ValueError:
                continue  # a garbled entry never matches; another may
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]) or not candidates:
        return False
    if abs(now.timestamp() - int(timestamps[0])) > tolerance_seconds:
        return False
    expected = hmac.new(key, timestamps[0].encode() + b"." + raw_body, hashlib.sha256).digest()
    return any(hmac.compare_digest(candidate, expected) for candidate in candidates)


# --- the callouts -----------------------------------------------------------------------------------------


def _blank_to_none(value: Any) -> Any:
    """Flow sends an empty text variable as ""; for an optional identifier that means "not given"."""
    return None if isinstance(value, str) and not value.strip() else value


_INTEGER_TEXT = re.compile(r"\s*[-+]?[0-9]{1,18}\s*")


def _integer_as_sent(value: Any) -> Any:
    """Flow sends a number as a JSON number, often as text ("1"), and a Number with decimals as 250.0."""
    if isinstance(value, str) and _INTEGER_TEXT.fullmatch(value):
        return int(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e18:
        return int(value)
    return value


def _boolean_as_sent(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    return value


OptionalText = Annotated[StrictStr | None, BeforeValidator(_blank_to_none)]
Text = Annotated[StrictStr, Field(min_length=1)]
Integer = Annotated[StrictInt, BeforeValidator(_integer_as_sent)]
Boolean = Annotated[bool, BeforeValidator(_boolean_as_sent)]


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", strict=True, populate_by_name=True)


class CalloutSource(_Wire):
    flow_api_name: Text = Field(alias="flowApiName")
    requested_by_user_id: Text = Field(alias="requestedByUserId")


class CalloutContact(_Wire):
    id: OptionalText = None  # the Contact id
    loyalty_member_id: OptionalText = Field(default=None, alias="loyaltyMemberId")
    email: OptionalText = None

    @model_validator(mode="after")
    def _identified(self) -> CalloutContact:
        if self.id is None and self.loyalty_member_id is None and self.email is None:
            raise ValueError("one of id, loyaltyMemberId or email is required")
        return self


class Adjustment(_Wire):
    points: Annotated[Integer, Field(ge=-MAX_ADJUSTMENT, le=MAX_ADJUSTMENT)]  # + credits, - debits; never zero
    reason: Annotated[StrictStr, Field(min_length=1, max_length=255)]

    @field_validator("points")
    @classmethod
    def _non_zero(cls, points: int) -> int:
        if points == 0:
            raise ValueError("must not be zero")
        return points


class _Callout(_Wire):
    schema_version: Integer = Field(alias="schemaVersion")
    request_id: Annotated[StrictStr, Field(min_length=1, max_length=100)] = Field(alias="requestId")
    org_id: Text = Field(alias="orgId")
    requested_at: AwareDatetime = Field(alias="requestedAt")
    source: CalloutSource
    contact: CalloutContact

    @field_validator("schema_version")
    @classmethod
    def _version_1(cls, version: int) -> int:
        if version != 1:
            raise ValueError("only schema version 1 is supported")
        return version


class PointsAdjustmentCallout(_Callout):
    """A goodwill credit or a correction by a CRM user."""

    type: Literal["points.adjustment"]
    adjustment: Adjustment


class MemberEnrolCallout(_Callout):
    """Enrol the Contact; the member gets the e-mail address, so it is required."""

    type: Literal["member.enrol"]

    @field_validator("contact")
    @classmethod
    def _has_email(cls, contact: CalloutContact) -> CalloutContact:
        if contact.email is None:
            raise ValueError("email is required to enrol")
        return contact


class TierOverride(_Wire):
    tier: Annotated[StrictStr, Field(min_length=1, max_length=40)]  # the programme's tier name or label
    valid_until: date = Field(alias="validUntil")  # last day the override applies
    reason: Annotated[StrictStr, Field(min_length=1, max_length=255)]


class TierOverrideCallout(_Callout):
    """A CRM user sets the member's tier for a limited time (audited with their user id)."""

    type: Literal["tier.override"]
    override: TierOverride


class OfferContact(CalloutContact):
    first_name: OptionalText = Field(default=None, alias="firstName")
    mobile_phone: OptionalText = Field(default=None, alias="mobilePhone")
    locale: OptionalText = None  # like sv_SE


def _decimal_text(value: Any) -> Any:
    """A multiplier comes as text ("1.5") or as a JSON number (2, 1.5): kept as text, checked as a decimal."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _not_applicable(value: Any) -> Any:
    """Flow has no nulls: a number a Flow leaves unused travels as 0 (or "0", or "")."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | float) and value == 0:
        return None
    if isinstance(value, str) and (not value.strip() or _ZERO.fullmatch(value)):
        return None
    return value


_ZERO = re.compile(r"\s*0+(\.0*)?\s*")


class CalloutOffer(_Wire):
    code: Annotated[StrictStr, Field(min_length=1, max_length=80)]
    kind: Literal["points_multiplier", "bonus_points", "voucher", "free_shipping"]
    multiplier: Annotated[
        Annotated[StrictStr, BeforeValidator(_decimal_text), Field(pattern=r"^[0-9]{1,2}(\.[0-9]{1,2})?$")] | None,
        BeforeValidator(_not_applicable),
    ] = None
    bonus_points: Annotated[Annotated[Integer, Field(gt=0, le=1_000_000)] | None, BeforeValidator(_not_applicable)] = (
        Field(default=None, alias="bonusPoints")
    )
    valid_from: date = Field(alias="validFrom")
    valid_until: date = Field(alias="validUntil")
    channels: Annotated[list[Literal["email", "sms"]], Field(max_length=2)] = []
    template_key: Annotated[StrictStr, Field(pattern=r"^[a-z0-9_]{1,60}$")] = Field(alias="templateKey")

    @model_validator(mode="after")
    def _consistent(self) -> CalloutOffer:
        if self.valid_until < self.valid_from:
            raise ValueError("validUntil is before validFrom")
        if self.kind == "points_multiplier" and (self.multiplier is None or Decimal(self.multiplier) <= 1):
            raise ValueError("a points_multiplier offer needs a multiplier above 1")
        if self.kind == "bonus_points" and self.bonus_points is None:
            raise ValueError("a bonus_points offer needs bonusPoints")
        return self


class CalloutConsent(_Wire):
    email: Boolean | None = None
    sms: Boolean | None = None


class OfferRequestedCallout(_Callout):
    """Marketing automation in the CRM asks for a personalised offer to be sent to the member."""

    type: Literal["offer.requested"]
    contact: OfferContact
    offer: CalloutOffer
    consent: CalloutConsent = CalloutConsent()


class RewardRedeemCallout(_Callout):
    """A service agent redeems a reward for the member (audited with their user id); the requestId is the
    redemption's idempotency key."""

    type: Literal["reward.redeem"]
    reward_id: Annotated[StrictStr, Field(min_length=1, max_length=40)] = Field(alias="rewardId")
    shop: OptionalText = None  # required for a reward with a code


MAX_COMMENT = 2000  # characters of an NPS comment kept (a longer one is cut there: it is free text, not money)


def _comment_as_sent(value: Any) -> Any:
    """A blank comment is none; a long one is kept to its first ``MAX_COMMENT`` characters."""
    value = _blank_to_none(value)
    return value[:MAX_COMMENT] if isinstance(value, str) else value


class NpsResponseCallout(_Callout):
    """A member's answer to an NPS survey (0 to 10: "how likely are you to recommend us?"), as a Flow passes it on
    from the org's survey or a survey tool. One answer per member and survey counts: a later one replaces it."""

    type: Literal["nps.response"]
    score: Annotated[Integer, Field(ge=0, le=10)]
    comment: Annotated[StrictStr | None, BeforeValidator(_comment_as_sent)] = None
    survey_id: Annotated[StrictStr, Field(min_length=1, max_length=100)] = Field(alias="surveyId")
    responded_at: AwareDatetime = Field(alias="respondedAt")


class MemberBlockCallout(_Callout):
    """Block the member while they are under review (``reason`` required: it shows on the orders they place
    meanwhile, which earn nothing), or lift the block (``member.unblock``). They cannot redeem while blocked."""

    type: Literal["member.block", "member.unblock"]
    reason: Annotated[StrictStr | None, Field(max_length=255)] = None

    @model_validator(mode="after")
    def _reason_to_block(self) -> MemberBlockCallout:
        if self.type == "member.block" and not (self.reason or "").strip():
            raise ValueError("reason is required to block a member")
        return self


class MemberLeaveCallout(_Callout):
    """The member leaves the programme (they asked the merchant): their orders earn nothing from now on, they may
    spend their points during the notice (program.yaml ``enrolment.leave_notice_days``), then what is left is
    forfeited and their personal data erased. The answer's ``leavingOn`` is that day."""

    type: Literal["member.leave"]


class MemberEraseCallout(_Callout):
    """Erase the person's data (GDPR erasure): what the programme keeps of them goes, every amount stays. The CRM
    user and the Flow that asked are logged with the request id."""

    type: Literal["member.erase"]


class MemberExportCallout(_Callout):
    """Everything the programme keeps of the person as one JSON file (GDPR access): the answer's ``downloadUrl``
    is a link to it for the CRM user, valid for a week."""

    type: Literal["member.export"]


# Add new callout types to this union.
FlowCallout = Annotated[
    PointsAdjustmentCallout
    | MemberEnrolCallout
    | TierOverrideCallout
    | OfferRequestedCallout
    | RewardRedeemCallout
    | NpsResponseCallout
    | MemberEraseCallout
    | MemberExportCallout
    | MemberBlockCallout
    | MemberLeaveCallout,
    Field(discriminator="type"),
]
_CALLOUT: TypeAdapter[FlowCallout] = TypeAdapter(FlowCallout)


def parse_callout(raw_body: bytes) -> FlowCallout:
    """The callout a verified body stands for; MalformedPayloadError names the fields that are wrong."""
    try:
        return _CALLOUT.validate_json(raw_body)
    except ValidationError as error:
        raise MalformedPayloadError(f"flow callout: {_describe(error)}") from None


def accepted_response(request_id: str, duplicate: bool, **more: Any) -> dict[str, Any]:
    """The JSON answer to an accepted callout; `duplicate` says the requestId had been seen before (``more``: what
    the callout made, such as a redemption's id)."""
    return {"status": "accepted", "requestId": request_id, "duplicate": duplicate, **more}


def _describe(error: ValidationError) -> str:
    """The field paths and what is wrong with them, never the values (pydantic's union messages quote them)."""
    parts = []
    for detail in error.errors(include_input=False, include_url=False, include_context=False):
        if detail["type"] == "union_tag_invalid":
            parts.append("type: unknown callout type")
            continue
        if detail["type"] == "union_tag_not_found":
            parts.append("type: required")
            continue
        # loc starts with the union tag (one of our literals) when the type is known
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in detail["loc"][1:]).lstrip(".")
        parts.append(f"{path or 'body'}: {detail['msg']}")
    return "; ".join(parts)
