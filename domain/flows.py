"""What a running flow says about itself, and the messages workflows, activities, the store and the gateway exchange.

These are the shapes that cross a boundary (Temporal payloads, the ``flows`` index row, the
``events`` outbox, API bodies), so they live here once. Money stays ``Decimal`` end to end:
pydantic's JSON mode writes it as a decimal string (API.md §1).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from domain.codes import FlowKind
from domain.money import Money

CancellationStatus = Literal[
    "awaiting_agent_quote",
    "awaiting_partner_decision",
    "processing",
    "cancelled",
    "rejected",
    "no_response",
    "expired",
    "failed",
]
# API.md §8; a schedule change on a busy product is ``waiting_for_product`` until that flow ends.
ReschedulingStatus = Literal[
    "waiting_for_product",
    "awaiting_partner_action",
    "accepted",
    "auto_accepted",
    "obsolete",
    "failed",
]
FlowStatus = CancellationStatus | ReschedulingStatus  # the other kinds' statuses join this union as their flows arrive

# A terminal flow never moves again: its product's active-flow lock is released (API.md §1).
TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"cancelled", "rejected", "no_response", "expired", "failed", "accepted", "auto_accepted", "obsolete"}
    | {"modified"}  # change (domain.change_flows)
    | {"confirmed", "declined"}  # special request (domain.special_requests)
)


def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATUSES


Resolution = Literal["automatic", "manual"]
Decision = Literal["accept", "reject"]

# Trigger types (API.md §10) a cancellation emits.
CANCELLATION_QUOTED = "cancellation.quoted"
CANCELLATION_COMPLETED = "cancellation.completed"
CANCELLATION_REJECTED = "cancellation.rejected"
CANCELLATION_NO_RESPONSE = "cancellation.no_response"
CANCELLATION_EXPIRED = "cancellation.expired"
CANCELLATION_FAILED = "cancellation.failed"

# ApplicationError types an update or activity refuses with; the gateway maps them to problem codes.
NOT_AWAITING_QUOTE = "not_awaiting_quote"  # 409
INVALID_QUOTE = "invalid_quote"  # 422; details[0] is [{"field", "message"}, ...]
NOT_AWAITING_DECISION = "not_awaiting_decision"  # 409
SUPPLIER_REFUSED = "supplier_refused"
PRODUCT_BUSY = "product_busy"  # retryable: a flow that waits its turn tries again

# Activity names are the contract between workflows and the worker's activities; workflows
# call them by name so that no workflow module imports I/O code (aiohttp, SQLAlchemy).
RECORD_FLOW = "record_flow"
CANCEL_AT_SUPPLIER = "cancel_at_supplier"
RESCHEDULE_AT_SUPPLIER = "reschedule_at_supplier"
ACQUIRE_PRODUCT = "acquire_product"
DELIVER_EVENT = "deliver_event"
MARK_EVENT_FAILED = "mark_event_failed"


class HistoryEntry(BaseModel):
    at: AwareDatetime
    event: str


class FlowInfo(BaseModel):
    """What every flow kind shows about itself; each kind's info adds its own fields."""

    code: str
    product_id: str
    reservation_id: str
    partner_id: str
    status: str
    history: list[HistoryEntry] = Field(default_factory=list)


class CancellationInfo(FlowInfo):
    """The seed's FlowInfo for a cancellation (API.md §6)."""

    status: CancellationStatus
    resolution: Resolution
    paid: Money
    penalty: Money | None = None
    refund: Money | None = None
    agent_note: str | None = None
    decision_deadline: AwareDatetime | None = None
    # The partner's answer to an agent quote, so a repeated PATCH can be recognised
    # even after the flow has finished.
    decision: Decision | None = None


class FlowRecord(BaseModel):
    """One transition of a flow as the store persists it: the index row, and the event if there is one."""

    code: str
    kind: FlowKind
    product_id: str
    reservation_id: str
    partner_id: str
    status: str
    terminal: bool
    info: dict[str, Any]  # the flow info in JSON mode, as GET answers it and as the event's ``data``
    event_id: str | None = None
    event_type: str | None = None
    at: AwareDatetime


class CancellationInput(BaseModel):
    """Everything a cancellation flow needs, fixed when the gateway starts it (workflow id = ``code``)."""

    code: str
    product_id: str
    reservation_id: str
    partner_id: str
    resolution: Resolution
    paid: Money
    penalty: Money | None = None
    refund: Money | None = None
    agent_quote_window: timedelta
    decision_window: timedelta
    webhook_retry_for: timedelta

    def initial_info(self) -> CancellationInfo:
        """The flow info before its first transition: what the gateway indexes when it starts the
        flow, and the state the workflow starts from, so the two never disagree."""
        return CancellationInfo(
            code=self.code,
            product_id=self.product_id,
            reservation_id=self.reservation_id,
            partner_id=self.partner_id,
            status="processing" if self.resolution == "automatic" else "awaiting_agent_quote",
            resolution=self.resolution,
            paid=self.paid,
            penalty=self.penalty,
            refund=self.refund,
        )


class AgentQuote(BaseModel):
    penalty: Money
    refund: Money
    note: str = ""
    agent_id: str


class PartnerDecision(BaseModel):
    decision: Decision


def event_body(event_id: str, event_type: str, created_at: datetime, info: dict[str, Any]) -> dict[str, Any]:
    """A trigger as partners receive it (API.md §10), for the store to keep and the outbox to send."""
    return {"id": event_id, "type": event_type, "created_at": created_at.isoformat(), "data": info}
