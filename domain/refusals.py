"""Every way the after-sales rules say no, named once.

Workflow update validators raise them as ``ApplicationError`` types, the services raise them as
:class:`Refused` for what they decide themselves, and ``api.problems`` maps each one to its HTTP
status and problem code (docs/api.md#errors lists them all).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

# One field a request got wrong, as a 422 lists it: ``{"field": "amount.currency", "message": "…"}``.
FieldError = dict[str, str]


class Refusal(StrEnum):
    # Anything a caller names: unknown, or another partner's (existence does not leak).
    NOT_FOUND = "not_found"
    # Fields that parse but break a rule the request model cannot state (details: the field errors).
    INVALID_FIELDS = "invalid_fields"
    # Any mutating flow: one active flow per product.
    FLOW_IN_PROGRESS = "flow_in_progress"
    # Cancellation.
    CANCELLATION_DISALLOWED = "cancellation_disallowed"
    QUOTE_EXPIRED = "quote_expired"
    QUOTE_SUPERSEDED = "quote_superseded"
    QUOTE_USED = "quote_used"
    NOT_AWAITING_QUOTE = "not_awaiting_quote"
    INVALID_QUOTE = "invalid_quote"  # details[0] is [{"field", "message"}, ...]
    # A penalty quoted on an involuntary cancellation (docs/flows.md#involuntary-cancellations).
    INVOLUNTARY_NO_PENALTY = "involuntary_no_penalty"  # details[0] is [{"field", "message"}, ...]
    NOT_AWAITING_DECISION = "not_awaiting_decision"
    # Advancing a deadline (docs/flows.md#advancing-a-deadline): none is pending, or the flow was
    # started where deadlines pass only with time.
    NO_PENDING_DEADLINE = "no_pending_deadline"
    DEADLINE_NOT_ADVANCEABLE = "deadline_not_advanceable"
    # An operator's retry of a refused record (docs/operations.md#a-refused-record): the flow is not
    # parked on one, or is recording it again already.
    NO_REFUSED_RECORD = "no_refused_record"
    # Change.
    CHANGE_DISALLOWED = "change_disallowed"
    MANUAL_CHANGE = "manual_change"
    DATE_INCOMPATIBLE = "date_incompatible"
    ITINERARY_EXPIRED = "itinerary_expired"
    ITINERARY_SUPERSEDED = "itinerary_superseded"
    CONTEXT_EXPIRED = "context_expired"
    CHECKOUT_EXPIRED = "checkout_expired"
    NOT_AWAITING_BOOKING = "not_awaiting_booking"
    NOT_AWAITING_PREBOOK = "not_awaiting_prebook"
    NOT_PREBOOKED = "not_prebooked"
    INVALID_CHECKOUT = "invalid_checkout"  # details[0] is [{"field", "message"}, ...]
    CHANGE_FAILED = "change_failed"
    # Rescheduling.
    NOT_AWAITING_CHOICE = "not_awaiting_choice"
    UNKNOWN_ALTERNATIVE = "unknown_alternative"  # details[0] is [{"field", "message"}, ...]
    # Special request.
    SPECIAL_REQUEST_DISALLOWED = "special_request_disallowed"
    # Triggers: a webhook that may not receive them, and a redelivery with nowhere to go.
    WEBHOOK_URL_REFUSED = "webhook_url_refused"  # details[0] is [{"field", "message"}, ...]
    NO_WEBHOOK = "no_webhook"
    # Settlement (docs/settlement.md).
    NOT_CANCELLED = "not_cancelled"
    REFUND_NOT_DRAFT = "refund_not_draft"
    REFUND_EXCEEDS_CHARGED = "refund_exceeds_charged"
    DUPLICATE_BACK_OFFICE_CODE = "duplicate_back_office_code"
    DEPOSIT_ALREADY_REFUNDED = "deposit_already_refunded"
    NO_DEPOSIT = "no_deposit"
    # Credits (docs/settlement.md#credits).
    CREDIT_CURRENCY_MISMATCH = "credit_currency_mismatch"
    CREDIT_NOT_ACTIVE = "credit_not_active"


class Refused(Exception):
    """A rule said no outside a workflow (a service checking a request, the settlement rules, the
    store applying them): the gateway answers it as the refusal's problem (``api.problems``), with
    ``errors`` as its field errors. ``not_yet``: the request is refused for now, not for good (the flow
    has not reached the step it is for): answered with ``Retry-After`` and never stored under an
    Idempotency-Key, so a retry asks again."""

    def __init__(
        self, refusal: Refusal, detail: str, errors: list[FieldError] | None = None, *, not_yet: bool = False
    ) -> None:
        super().__init__(f"{refusal.value}: {detail}")
        self.refusal = refusal
        self.detail = detail
        self.errors = errors
        self.not_yet = not_yet


def not_found(what: str) -> Refused:
    """``what`` names nothing the caller may see (docs/api.md#authentication-and-roles)."""
    return Refused(Refusal.NOT_FOUND, f"no such {what}")


def invalid_fields(errors: Iterable[tuple[str, str]]) -> Refused:
    """A 422 naming each ``(field, message)``."""
    return Refused(Refusal.INVALID_FIELDS, "the request has invalid fields",
                   [{"field": field, "message": message} for field, message in errors])


def invalid_field(field: str, message: str) -> Refused:
    return invalid_fields([(field, message)])
