"""The cancellation flow's contract (docs/flows.md#cancellation):
its statuses, what the gateway starts it with, what it shows, and the messages it accepts.

The rules it decides with are in ``domain.allowance`` (may it be cancelled) and ``domain.penalty``
(what it costs, and whether an agent's quote adds up).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel

from domain.credit_ledger import CREDIT_VALIDITY, RefundDestination, RefundTo
from domain.flow_info import FlowInfo, FlowInput, HistoryEntry, Resolution
from domain.money import Money
from domain.waivers import Waiver, WaiverRequest

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
Decision = Literal["accept", "reject"]

# Trigger types (docs/triggers.md) a cancellation emits.
CANCELLATION_QUOTED = "cancellation.quoted"
CANCELLATION_COMPLETED = "cancellation.completed"
CANCELLATION_REJECTED = "cancellation.rejected"
CANCELLATION_NO_RESPONSE = "cancellation.no_response"
CANCELLATION_EXPIRED = "cancellation.expired"
CANCELLATION_FAILED = "cancellation.failed"


class CancellationInfo(FlowInfo, RefundDestination):
    """The flow info of a cancellation (``GET /v1/cancellations/{code}``); its refund goes where
    ``refund_to`` says (a credit: docs/settlement.md#credits)."""

    status: CancellationStatus
    resolution: Resolution
    # The travellers it cancels (docs/api.md#partial-cancellation); None for flows started before they were named.
    traveller_ids: list[str] | None = None
    paid: Money
    penalty: Money | None = None
    refund: Money | None = None
    agent_note: str | None = None
    # Until when an agent may quote (manual resolution); None for flows started before it was recorded.
    quote_deadline: AwareDatetime | None = None
    decision_deadline: AwareDatetime | None = None
    # The partner's answer to an agent quote, so a repeated PATCH can be recognised
    # even after the flow has finished.
    decision: Decision | None = None
    # The supplier changed the product (domain.involuntary): no penalty is charged.
    involuntary: bool = False
    # The penalty given up and why (domain.waivers); the waiver the partner asked for, shown to agents.
    waiver: Waiver | None = None
    waiver_request: WaiverRequest | None = None

    def waiting_until(self) -> datetime | None:
        if self.status == "awaiting_agent_quote":
            return self.quote_deadline
        if self.status == "awaiting_partner_decision":
            return self.decision_deadline
        return None

    def repeats(self, decision: Decision, refund_to: RefundTo | None = None) -> bool:
        """The partner sends the decision it already made: answered like the first time."""
        return self.decision is not None and self.decision == decision and refund_to in (None, self.refund_to)

    def shows_quote(self, quote: AgentQuote) -> bool:
        """The flow was quoted exactly so: an agent resending that quote is answered like the first time."""
        return (self.penalty, self.refund, self.agent_note) == (quote.penalty, quote.refund, quote.note or None) \
            and (quote.waiver is None and (self.waiver is None or self.involuntary)
                 or quote.waiver is not None and self.waiver is not None and self.waiver.code == quote.waiver.code) \
            and self.decision_deadline is not None


class CancellationInput(FlowInput):
    """Everything a cancellation flow needs, fixed when the gateway starts it."""

    resolution: Resolution
    # The travellers it cancels, and ``paid`` their share; None: the whole product (flows started before).
    traveller_ids: list[str] | None = None
    paid: Money
    penalty: Money | None = None
    refund: Money | None = None
    agent_quote_window: timedelta
    decision_window: timedelta
    # Where the refund goes; a manual cancellation's partner may still choose when it accepts the quote.
    refund_to: RefundTo = "original_payment"
    # How long a credit issued instead of the refund stays valid (AFTERSALES_CREDIT_VALIDITY when the flow started).
    credit_validity: timedelta = CREDIT_VALIDITY
    # Quoted as involuntary (a schedule change before the quote), with its waiver; the waiver the
    # partner asked for; the penalty the policy's tiers gave when quoted (what a waiver gives up).
    involuntary: bool = False
    waiver: Waiver | None = None
    waiver_request: WaiverRequest | None = None
    policy_penalty: Money | None = None
    # An automatic cancellation's ``processing``, recorded by the gateway in the write that opens the
    # flow, at this time: the workflow's first task then has nothing to record (patch
    # ``processing-recorded-at-opening``). None: flows opened before, and manual ones, whose workflow
    # records their first move itself.
    opened_at: AwareDatetime | None = None

    def initial_info(self) -> CancellationInfo:
        """The flow info as the gateway opens it (before the workflow's first transition; with
        ``processing`` recorded when ``opened_at`` says so): what the gateway indexes when it starts
        the flow, and the state the workflow starts from, so the two never disagree."""
        return CancellationInfo(
            **self.identity(),
            status="processing" if self.resolution == "automatic" else "awaiting_agent_quote",
            resolution=self.resolution,
            traveller_ids=self.traveller_ids,
            paid=self.paid,
            penalty=self.penalty,
            refund=self.refund,
            refund_to=self.refund_to,
            involuntary=self.involuntary,
            waiver=self.waiver,
            waiver_request=self.waiver_request,
            history=self.opening_history(),
        )

    def opening_history(self) -> list[HistoryEntry]:
        """The moves the gateway records when it opens the flow: ``processing``, when ``opened_at`` says so."""
        if self.resolution == "automatic" and self.opened_at is not None:
            return [HistoryEntry(at=self.opened_at, event="processing")]
        return []


class AgentQuote(BaseModel):
    penalty: Money
    refund: Money
    note: str = ""
    agent_id: str
    # The penalty given up, all or part, and why (docs/flows.md#waivers).
    waiver: WaiverRequest | None = None


class ScheduleChanged(BaseModel):
    """Signal ``schedule_changed``: the supplier changed the product while this cancellation is open
    (its rescheduling's code); the cancellation becomes involuntary (docs/flows.md#involuntary-cancellations)."""

    rescheduling_code: str


class PartnerDecision(BaseModel):
    decision: Decision
    # With ``accept``: where the refund goes; None keeps what the cancellation was started with.
    refund_to: RefundTo | None = None
