"""Errors raised by the `loyalty` package: one flat list, each a subclass of LoyaltyError."""


class LoyaltyError(Exception):
    """Base class of every error raised on purpose by the `loyalty` package."""


class ProgramConfigError(LoyaltyError):
    """The programme rules file is missing, malformed or invalid; the message names the file and the field."""


class UnknownCurrencyError(LoyaltyError):
    """An order is in a currency the programme has no earning rate for."""


class UnknownTierError(LoyaltyError, ValueError):
    """A tier name that the programme does not define."""


class UnknownMemberError(LoyaltyError):
    """No member with this id is enrolled."""


class InvalidAmountError(LoyaltyError, ValueError):
    """A points amount that is zero, negative where it must be positive, or not an integer."""


class MemberBlockedError(LoyaltyError):
    """The member is blocked (under review): nothing is earned or spent until the block is lifted."""


class InsufficientPointsError(LoyaltyError):
    """A redemption or deduction larger than the member's available points; nothing was written."""


class UnknownOrderError(LoyaltyError):
    """The order is not in the ledger (for release) or a refund names a line the order does not have."""


class RefundExceedsOrderError(LoyaltyError):
    """A refund asks to reverse more than is left of the order; nothing was written."""


class UnknownRecordError(LoyaltyError, LookupError):
    """A stored record that a write needs is not there (an offer record whose Task or erasure is written)."""


class ConcurrentUpdateError(LoyaltyError):
    """Other writers kept changing the member while this operation retried; safe to retry later."""


class NotDueError(LoyaltyError):
    """A scheduled step (expiry of a lot) was asked for before its date."""


class MalformedPayloadError(LoyaltyError, ValueError):
    """A webhook body that is not valid JSON or lacks a required field; the message names the field, never its value."""


class SettingsError(LoyaltyError):
    """A function's environment variable is missing or invalid; the message names it."""


class InvalidSignatureError(LoyaltyError):
    """A webhook or callout whose signature is missing or does not match; nothing was stored."""


class PayloadTooLargeError(LoyaltyError):
    """A request body over the configured limit; nothing was stored."""


class CrmRetryableError(LoyaltyError):
    """Salesforce kept failing in a way that may pass (locks, limits, 5xx, timeouts); retry the batch later."""


class CrmAuthError(LoyaltyError):
    """Salesforce refused the integration user's login, or the credentials are incomplete."""


class CrmRequestError(LoyaltyError):
    """Salesforce refused a request as malformed (for example an unknown field); retrying will not help."""


class ForeignOrgError(LoyaltyError):
    """A Salesforce message or callout from an organisation other than the programme's; nothing was applied."""


class ChannelRetryableError(LoyaltyError):
    """E-mail or SMS could not be sent for now (throttling, a service error); the send is retried later."""


class OfferInFlightError(LoyaltyError):
    """Another delivery of the offer request is deciding it on a channel; this one is retried later, when it finds
    the decision, or takes over the claim if its sender died."""


class ChannelRejectedError(LoyaltyError):
    """The e-mail or SMS service refused the message for good (a rejected or malformed address, a paused account)."""


class ChannelOptedOutError(ChannelRejectedError):
    """The phone number opted out of SMS at the carrier or SNS; the programme records the opt-out."""


class UnknownRewardError(LoyaltyError):
    """A reward, a shop or a redemption the catalogue or the member does not have."""


class RedemptionRefusedError(LoyaltyError):
    """A redemption the rules do not allow now (not enough points, tier too low, a limit reached, a reward that
    does not apply to the shop, a code that can no longer be cancelled); nothing was written. ``rule`` names it."""

    def __init__(self, rule: str, message: str, **details: object) -> None:
        super().__init__(message)
        self.rule = rule
        self.details = details


class IdempotencyKeyReusedError(LoyaltyError):
    """An Idempotency-Key sent again with a different request; nothing was written."""


class ShopRetryableError(LoyaltyError):
    """The shop could not make or remove a code for now (throttled, a server error, credentials refused); the
    work is retried later and the member's points stay spent."""


class ShopRefusedError(LoyaltyError):
    """The shop refused the code for good (its userErrors or a 4xx naming the input); the points come back."""
