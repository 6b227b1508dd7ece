"""Cancellation of one product (docs/flows.md#cancellation).
Workflow id = the flow code.

Automatic: processing → cancelled | failed.
Manual: awaiting_agent_quote → expired, or → awaiting_partner_decision → no_response | rejected
| cancelled | failed.
"""

from __future__ import annotations

from typing import Any, Literal

from temporalio import workflow

from domain.cancellation_flow import (
    CANCELLATION_COMPLETED,
    CANCELLATION_EXPIRED,
    CANCELLATION_FAILED,
    CANCELLATION_NO_RESPONSE,
    CANCELLATION_QUOTED,
    CANCELLATION_REJECTED,
    AgentQuote,
    CancellationInfo,
    CancellationInput,
    CancellationStatus,
    Decision,
    PartnerDecision,
)
from domain.codes import FlowKind
from domain.credit_ledger import RefundTo, credit_terms
from domain.flow_info import is_terminal
from domain.penalty import check_agent_quote
from domain.refusals import Refusal
from workflows import supplier_steps
from workflows.credit_expiry import start_expiry
from workflows.flow_transitions import FlowWorkflow
from workflows.patches import EXPIRE_AT_THE_DEADLINE
from workflows.update_refusals import refusal


@workflow.defn(name="CancellationWorkflow")
class CancellationWorkflow(FlowWorkflow[CancellationInfo, CancellationStatus]):
    kind = FlowKind.CANCELLATION

    @workflow.init
    def __init__(self, input: CancellationInput) -> None:
        # Built here, not in run(): an update may arrive in the very first activation.
        super().__init__(input.initial_info(), input.webhook_retry_for, input.deadlines_advanceable)
        self._input = input
        # What the flow is listening for right now. Validators check this rather than the
        # status, which changes only once the store has it: a decision arriving after the
        # window closed, while ``no_response`` is being recorded, must be refused.
        self._awaiting: Literal["quote", "decision"] | None = "quote" if input.resolution == "manual" else None
        self._quote: AgentQuote | None = None
        self._decision: Decision | None = None
        if input.resolution == "manual":
            # The agents' queue is ordered by this deadline, and the flow expires at it: however long
            # recording the move that shows it took (a burst of starts), not a window's length after
            # that. Known from the first activation, so an advance sent as soon as the flow answered
            # its start is heard.
            self._quote_deadline = self._deadline_ahead("agent_quote_window", workflow.now() + input.agent_quote_window)
        # Where the refund goes: as started, or as the partner says when it accepts a quote.
        self._refund_to: RefundTo = input.refund_to

    @workflow.run
    async def run(self, input: CancellationInput) -> CancellationInfo:
        if input.resolution == "automatic":
            await self._move("processing")
            await self._cancel_at_supplier()
        else:
            await self._run_manual()
        # Let update callers get their answer before the workflow closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._info

    async def _run_manual(self) -> None:
        await self._move("awaiting_agent_quote", quote_deadline=self._quote_deadline.at)
        workflow.deprecate_patch(EXPIRE_AT_THE_DEADLINE)  # kept until no run that recorded the patch is open (workflows.patches)
        await self._quote_deadline.wait(lambda: self._quote is not None)
        # Read after the wait, not from its result: a quote accepted by the validator in the
        # same activation as the timer firing is still honoured.
        quote = self._quote
        if quote is None:
            self._awaiting = None
            await self._move("expired", CANCELLATION_EXPIRED)
            return

        # Listening for the decision from the moment the quote is taken, not only once the move
        # below is recorded: the store (and the partner, told by its trigger) shows the quote as
        # soon as that move commits, while the workflow learns that the move is done a task or two
        # later (much later after a worker restart). A decision arriving meanwhile is accepted and
        # takes effect once the move is done (the decision wait below ends at once).
        self._awaiting = "decision"
        deadline = self._deadline_ahead("decision_window", workflow.now() + self._input.decision_window)
        await self._move(
            "awaiting_partner_decision",
            CANCELLATION_QUOTED,
            after_update=True,
            penalty=quote.penalty,
            refund=quote.refund,
            agent_note=quote.note or None,
            decision_deadline=deadline.at,
        )
        await deadline.wait(lambda: self._decision is not None)
        self._awaiting = None
        if self._decision is None:
            # The fee was not accepted: the product stays confirmed.
            await self._move("no_response", CANCELLATION_NO_RESPONSE)
        elif self._decision == "reject":
            await self._move("rejected", CANCELLATION_REJECTED, after_update=True)
        else:
            await self._cancel_at_supplier()

    async def _cancel_at_supplier(self) -> None:
        refused = await supplier_steps.cancel_at_supplier(self._input.product_id, self._input.code, self._input.traveller_ids)
        if refused is None:
            credit = credit_terms(self._input.code, self._info.refund, self._refund_to, self._input.credit_validity,
                                  workflow.now())
            await self._move("cancelled", CANCELLATION_COMPLETED, **credit)
            await start_expiry(self._info, self._input.deadlines_advanceable)
        else:
            await self._move("failed", CANCELLATION_FAILED)

    def _carried(self) -> dict[str, Any]:
        # Every transition records the partner's decision, once there is one.
        return {"decision": self._decision}

    @workflow.query
    def info(self) -> CancellationInfo:
        return self._info

    @workflow.update
    async def submit_quote(self, quote: AgentQuote) -> CancellationInfo:
        self._quote = quote
        await workflow.wait_condition(lambda: self._info.status != "awaiting_agent_quote")
        return self._info

    @submit_quote.validator
    def _validate_quote(self, quote: AgentQuote) -> None:
        if self._awaiting != "quote" or self._quote is not None:
            raise refusal(
                Refusal.NOT_AWAITING_QUOTE,
                f"cancellation {self._info.code} is not awaiting a quote (status {self._info.status})",
            )
        problems = check_agent_quote(self._info.paid, quote.penalty, quote.refund)
        if problems:
            raise refusal(
                Refusal.INVALID_QUOTE,
                "the quote does not add up",
                [{"field": field, "message": message} for field, message in problems],
            )

    def _quote_taken(self) -> bool:
        """The flow has taken the agent's quote and its decision window has not closed: a decision
        counts. True from the quote update's acceptance on, before its move is recorded (the run
        sets ``_awaiting`` to "decision" once it wakes, in the same activation)."""
        return self._awaiting == "decision" or (self._awaiting == "quote" and self._quote is not None)

    @workflow.update
    async def decide(self, decision: PartnerDecision) -> CancellationInfo:
        if self._decision is None:
            self._decision = decision.decision
            self._refund_to = decision.refund_to or self._refund_to
        # The partner's PATCH answers with the outcome, not with "accepted for processing".
        await workflow.wait_condition(lambda: is_terminal(self._info.status))
        return self._info

    @decide.validator
    def _validate_decision(self, decision: PartnerDecision) -> None:
        if self._decision is not None and decision.decision == self._decision and decision.refund_to in (None, self._refund_to):
            return  # the same decision repeated: answered like the first one
        if self._decision is None and self._awaiting == "quote" and self._quote is None:
            # No quote yet, but one may come: refused for now, and the partner may ask again.
            raise refusal(
                Refusal.NOT_AWAITING_DECISION,
                f"cancellation {self._info.code} is not awaiting a decision yet: no agent has quoted",
                not_yet=True,
            )
        if self._decision is not None or not self._quote_taken():
            raise refusal(
                Refusal.NOT_AWAITING_DECISION,
                f"cancellation {self._info.code} is not awaiting a decision (status {self._info.status})",
            )
