"""RFC 9457 problem details: the one shape every error answer takes, and the one table from the
domain's refusals to HTTP status and problem code (docs/api.md#errors).

The services raise :class:`~domain.refusals.Refused` for what they decide, and pass on a workflow
update validator's refusal the same way (``services.flow_start.refusal_of``); a handler naming a
query field it cannot read (a cursor it never gave) raises one too. The error middleware answers
each with its problem (:func:`as_problem`). The gateway raises :class:`Problem` itself only for what
the HTTP layer decides: a body that is not JSON or not its model, authentication, transport.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from domain.refusals import Refusal, Refused
from services.flow_start import FlowUnavailable

PROBLEM_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """Raised anywhere in a handler; the error middleware turns it into problem+json."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str = "",
        *,
        errors: list[dict[str, str]] | None = None,
        title: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.title = title or _TITLES.get(status, "Error")
        # Seconds after which a retry may succeed: a refusal for now only (never stored under an
        # Idempotency-Key), or an outage (a 503: the middleware adds its default).
        self.retry_after = retry_after

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        body: dict[str, Any] = {
            "type": f"/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail or self.title,
            "code": self.code,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return web.Response(
            status=self.status, text=json.dumps(body), content_type=PROBLEM_TYPE, headers=headers
        )


def field_path(loc: tuple[int | str, ...], tags: frozenset[str] = frozenset()) -> str:
    """``("products", 0, "flight", "price", "amount")`` → ``products[0].price.amount``.

    Discriminated unions put the tag (``flight``) in the location; a partner never wrote it.
    """
    path = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(previous, int) and part in tags:
            pass
        elif part.startswith(("function-", "tagged-union[")):
            pass
        else:
            path += f".{part}" if path else part
        previous = part
    return path


def validation_problem(error: ValidationError, tags: frozenset[str] = frozenset(), prefix: str = "") -> Problem:
    errors = []
    for item in error.errors(include_url=False, include_input=False):
        path = field_path(tuple(item["loc"]), tags)
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        message = str(item["msg"]).removeprefix("Value error, ")
        errors.append({"field": path or "body", "message": message})
    return Problem(422, "validation_failed", "the request has invalid fields", errors=errors)


# --- refusals -------------------------------------------------------------------------------------

CONFLICT, GONE, INVALID = 409, 410, 422

# Refusal → (HTTP status, problem code). The code is the refusal's own name unless a
# generic one serves partners better (field errors are all ``validation_failed``).
REFUSALS: dict[Refusal, tuple[int, str]] = {
    Refusal.NOT_FOUND: (404, "not_found"),
    Refusal.INVALID_FIELDS: (INVALID, "validation_failed"),
    Refusal.FLOW_IN_PROGRESS: (CONFLICT, "flow_in_progress"),
    Refusal.CANCELLATION_DISALLOWED: (CONFLICT, "cancellation_disallowed"),
    Refusal.QUOTE_EXPIRED: (GONE, "quote_expired"),
    Refusal.QUOTE_SUPERSEDED: (CONFLICT, "quote_superseded"),
    Refusal.QUOTE_USED: (CONFLICT, "quote_used"),
    Refusal.NOT_AWAITING_QUOTE: (CONFLICT, "not_awaiting_quote"),
    Refusal.INVALID_QUOTE: (INVALID, "invalid_quote"),
    Refusal.INVOLUNTARY_NO_PENALTY: (INVALID, "involuntary_no_penalty"),
    Refusal.NOT_AWAITING_DECISION: (CONFLICT, "not_awaiting_decision"),
    Refusal.NO_PENDING_DEADLINE: (CONFLICT, "no_pending_deadline"),
    Refusal.NO_REFUSED_RECORD: (CONFLICT, "no_refused_record"),
    Refusal.DEADLINE_NOT_ADVANCEABLE: (CONFLICT, "deadline_not_advanceable"),
    Refusal.CHANGE_DISALLOWED: (CONFLICT, "change_disallowed"),
    Refusal.MANUAL_CHANGE: (CONFLICT, "manual_change"),
    Refusal.DATE_INCOMPATIBLE: (INVALID, "date_incompatible"),
    Refusal.ITINERARY_EXPIRED: (GONE, "itinerary_expired"),
    Refusal.ITINERARY_SUPERSEDED: (CONFLICT, "itinerary_superseded"),
    Refusal.CONTEXT_EXPIRED: (GONE, "context_expired"),
    Refusal.CHECKOUT_EXPIRED: (GONE, "checkout_expired"),
    Refusal.NOT_AWAITING_BOOKING: (CONFLICT, "not_awaiting_booking"),
    Refusal.NOT_AWAITING_PREBOOK: (CONFLICT, "not_awaiting_prebook"),
    Refusal.NOT_PREBOOKED: (CONFLICT, "not_prebooked"),
    Refusal.INVALID_CHECKOUT: (INVALID, "validation_failed"),
    Refusal.CHANGE_FAILED: (CONFLICT, "change_failed"),
    Refusal.NOT_AWAITING_CHOICE: (CONFLICT, "not_awaiting_choice"),
    Refusal.UNKNOWN_ALTERNATIVE: (INVALID, "unknown_alternative"),
    Refusal.SPECIAL_REQUEST_DISALLOWED: (CONFLICT, "special_request_disallowed"),
    Refusal.WEBHOOK_URL_REFUSED: (INVALID, "webhook_url_refused"),
    Refusal.NO_WEBHOOK: (CONFLICT, "webhook_not_set"),
    Refusal.NOT_CANCELLED: (CONFLICT, "not_cancelled"),
    Refusal.REFUND_NOT_DRAFT: (CONFLICT, "refund_not_draft"),
    Refusal.REFUND_EXCEEDS_CHARGED: (INVALID, "refund_exceeds_charged"),
    Refusal.DUPLICATE_BACK_OFFICE_CODE: (CONFLICT, "duplicate_back_office_code"),
    Refusal.DEPOSIT_ALREADY_REFUNDED: (CONFLICT, "deposit_already_refunded"),
    Refusal.NO_DEPOSIT: (CONFLICT, "no_deposit"),
    Refusal.CREDIT_CURRENCY_MISMATCH: (INVALID, "credit_currency_mismatch"),
    Refusal.CREDIT_NOT_ACTIVE: (CONFLICT, "credit_not_active"),
}


# What a handler may raise and be answered with a problem document.
ANSWERED = (Problem, Refused, FlowUnavailable)

# How long a caller refused for now (``Refused.not_yet``) waits before asking again.
NOT_YET_RETRY_AFTER_S = 5


def as_problem(raised: Problem | Refused | FlowUnavailable) -> Problem:
    if isinstance(raised, Refused):
        status, code = REFUSALS[raised.refusal]
        retry_after = NOT_YET_RETRY_AFTER_S if raised.not_yet else None
        return Problem(status, code, raised.detail, errors=raised.errors, retry_after=retry_after)
    if isinstance(raised, FlowUnavailable):
        return Problem(503, "flow_unavailable", str(raised))
    return raised
