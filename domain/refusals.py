"""Every way the after-sales rules say no, named once.

Workflow update validators raise them as ``ApplicationError`` types, the gateway's handlers raise
them for what they decide themselves, and ``api.problems`` maps each one to its HTTP status and
problem code (docs/api.md#errors lists them all).
"""

from __future__ import annotations

from enum import StrEnum


class Refusal(StrEnum):
    # Any mutating flow: one active flow per product.
    FLOW_IN_PROGRESS = "flow_in_progress"
    # Cancellation.
    CANCELLATION_DISALLOWED = "cancellation_disallowed"
    QUOTE_EXPIRED = "quote_expired"
    QUOTE_SUPERSEDED = "quote_superseded"
    QUOTE_USED = "quote_used"
    NOT_AWAITING_QUOTE = "not_awaiting_quote"
    INVALID_QUOTE = "invalid_quote"  # details[0] is [{"field", "message"}, ...]
    NOT_AWAITING_DECISION = "not_awaiting_decision"
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


class Refused(Exception):
    """A rule said no outside a workflow (the settlement rules, the store applying them): the
    gateway answers it as the refusal's problem (``api.problems``)."""

    def __init__(self, refusal: Refusal, detail: str) -> None:
        super().__init__(f"{refusal.value}: {detail}")
        self.refusal = refusal
        self.detail = detail
