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
    ScheduleChanged,
)
from domain.codes import FlowKind
from domain.credit_ledger import RefundTo, credit_terms
from domain.flow_info import is_terminal
from domain.involuntary import check_involuntary_quote, involuntary_terms, schedule_change_waiver
from domain.money import Money
from domain.penalty import check_agent_quote
from domain.refusals import Refusal
from domain.waivers import grant
from workflows import supplier_steps
from workflows.credit_expiry import start_expiry
from workflows.flow_transitions import FlowWorkflow
from workflows.patches import EXPIRE_AT_THE_DEADLINE, INVOLUNTARY_ON_SCHEDULE_CHANGE, PROCESSING_RECORDED_AT_OPENING
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
        # The supplier changed the product (quoted so, or a ``schedule_changed`` signal since): no
        # penalty may be charged (docs/flows.md#involuntary-cancellations).
        self._involuntary = input.involuntary

    @workflow.run
    async def run(self, input: CancellationInput) -> CancellationInfo:
        if input.resolution == "automatic":
            if input.opened_at is None or not workflow.patched(PROCESSING_RECORDED_AT_OPENING):
                # Opened before the gateway recorded ``processing`` (or replayed from a run that
                # recorded it here): the workflow records it, from the input's state.
                self._info = self._info.model_copy(update={"history": []})
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
        while True:
            await self._quote_deadline.wait(lambda: self._quote is not None or self._to_show_involuntary())
            if self._quote is None and self._to_show_involuntary() and self._quote_deadline.at > workflow.now() \
                    and not self._quote_deadline.advanced:
                # Agents see the flag (and may then quote no penalty), until the same deadline.
                await self._move("awaiting_agent_quote", involuntary=True)
                self._quote_deadline.reopen()
                continue
            break
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
            **self._quoted_waiver(quote),
        )
        while True:
            await deadline.wait(lambda: self._decision is not None or self._to_show_involuntary())
            if self._decision is None and self._to_show_involuntary() and deadline.at > workflow.now() \
                    and not deadline.advanced:
                # The quote is replaced by one at penalty 0, with the same deadline, and the partner told.
                await self._move("awaiting_partner_decision", CANCELLATION_QUOTED, **self._involuntary_terms())
                deadline.reopen()
                continue
            break
        self._awaiting = None
        if self._decision is None:
            # The fee was not accepted: the product stays confirmed.
            await self._move("no_response", CANCELLATION_NO_RESPONSE)
        elif self._decision == "reject":
            await self._move("rejected", CANCELLATION_REJECTED, after_update=True)
        else:
            await self._cancel_at_supplier()

    def _to_show_involuntary(self) -> bool:
        """A schedule change made the flow involuntary since it last recorded itself."""
        return self._involuntary and not self._info.involuntary

    def _involuntary_terms(self) -> dict[str, Any]:
        """The flow's terms once involuntary: nothing charged, everything back, the penalty it had waived."""
        penalty, refund = involuntary_terms(self._info.paid)
        charged = self._info.penalty if self._info.penalty is not None and not self._info.penalty.is_zero() \
            else self._input.policy_penalty
        return {"penalty": penalty, "refund": refund, "involuntary": True,
                "waiver": schedule_change_waiver(charged, self._info.paid)}

    def _quoted_waiver(self, quote: AgentQuote) -> dict[str, Any]:
        """The waiver an agent's quote grants: the agent's, or, on an involuntary flow, the schedule change's."""
        if quote.waiver is not None:
            return {"waiver": grant(quote.waiver, quote.agent_id, self._input.policy_penalty, quote.penalty),
                    "involuntary": self._involuntary}
        if self._involuntary:
            return {"waiver": schedule_change_waiver(self._input.policy_penalty, self._info.paid), "involuntary": True}
        return {}

    async def _cancel_at_supplier(self) -> None:
        refused = await supplier_steps.cancel_at_supplier(self._input.product_id, self._input.code, self._input.traveller_ids)
        if refused is None:
            # A schedule change heard before now: nothing is charged, whatever was accepted.
            terms = self._involuntary_terms() if self._charges_despite_involuntary() else {}
            refund: Money | None = terms.get("refund", self._info.refund)
            credit = credit_terms(self._input.code, refund, self._refund_to, self._input.credit_validity,
                                  workflow.now())
            await self._move("cancelled", CANCELLATION_COMPLETED, **terms, **credit)
            await start_expiry(self._info, self._input.deadlines_advanceable)
        else:
            await self._move("failed", CANCELLATION_FAILED)

    def _charges_despite_involuntary(self) -> bool:
        penalty = self._info.penalty
        return self._involuntary and penalty is not None and not penalty.is_zero()

    def _carried(self) -> dict[str, Any]:
        # Every transition records the partner's decision, once there is one.
        return {"decision": self._decision}

    @workflow.query
    def info(self) -> CancellationInfo:
        return self._info

    @workflow.signal  # registered as "schedule_changed": the method's name is the signal's, never to change
    def schedule_changed(self, change: ScheduleChanged) -> None:
        """The supplier changed the product (a rescheduling started): the cancellation is involuntary.
        A run that received this signal before it was handled replays without the marker, ignoring it."""
        if not is_terminal(self._info.status) and workflow.patched(INVOLUNTARY_ON_SCHEDULE_CHANGE):
            self._involuntary = True

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
        if self._involuntary and not problems:
            involuntary = check_involuntary_quote(quote.penalty)
            if involuntary:
                raise refusal(
                    Refusal.INVOLUNTARY_NO_PENALTY,
                    f"cancellation {self._info.code} is involuntary (the airline changed the flight): penalty must be 0",
                    [{"field": field, "message": message} for field, message in involuntary],
                )
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
