"""Rescheduling of one flight product after an airline's schedule change (docs/flows.md#rescheduling).
Workflow id = the flow code, derived from the supplier's change id.

waiting_for_product → awaiting_partner_action → accepted | auto_accepted | failed;
waiting_for_product → obsolete when the product was cancelled before the change's turn came.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

from domain.codes import FlowKind
from domain.credit_ledger import RefundTo, credit_terms
from domain.flow_info import is_terminal
from domain.refusals import Refusal
from domain.rescheduling_flow import (
    RESCHEDULING_ACCEPTED,
    RESCHEDULING_AUTO_ACCEPTED,
    RESCHEDULING_DETECTED,
    RESCHEDULING_FAILED,
    RESCHEDULING_OBSOLETE,
    AlternativeChoice,
    ReschedulingAlternative,
    ReschedulingInfo,
    ReschedulingInput,
    ReschedulingStatus,
)
from workflows import supplier_steps
from workflows.credit_expiry import start_expiry
from workflows.flow_transitions import FlowWorkflow
from workflows.patches import OPEN_IN_ONE_RECORD
from workflows.update_refusals import refusal

# Referenced, never called here: the sandbox takes the activity module (and what it imports) from outside.
with workflow.unsafe.imports_passed_through():
    from activities.transitions import FlowActivities

# A schedule change is never refused, it waits its turn (docs/flows.md#one-active-flow-per-product):
# taking a busy product's lock is retried without limit, backing off to once a minute while the
# holder's flow runs.
ACQUIRE_TIMEOUT = timedelta(seconds=30)
ACQUIRE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn(name="ReschedulingWorkflow")
class ReschedulingWorkflow(FlowWorkflow[ReschedulingInfo, ReschedulingStatus]):
    kind = FlowKind.RESCHEDULING

    @workflow.init
    def __init__(self, input: ReschedulingInput) -> None:
        # Built here, not in run(): an update may arrive in the very first activation.
        super().__init__(input.info, input.webhook_retry_for, input.deadlines_advanceable)
        self._input = input
        # Whether a choice is listened for. Validators check this rather than the status, which
        # changes only once the store has it: a choice arriving after the window closed, while
        # the default is being applied, must be refused.
        self._awaiting = False
        self._choice: str | None = None
        # Where the refund alternative's refund goes, as the partner chose with it.
        self._refund_to: RefundTo = "original_payment"

    @workflow.run
    async def run(self, input: ReschedulingInput) -> ReschedulingInfo:
        # The change is never refused: it waits for any other flow of the product to end.
        if workflow.patched(OPEN_IN_ONE_RECORD):
            taken = await self._open()
        else:
            await self._move("waiting_for_product")
            taken = None
        if taken is None:
            taken = await self._acquire_product()
            if taken:
                await self._offer()
        if not taken:
            await self._move("obsolete", RESCHEDULING_OBSOLETE)
        else:
            await self._decide()
        # Let update callers get their answer before the workflow closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._info

    async def _open(self) -> bool | None:
        """Record ``waiting_for_product`` and, if the product is free, take it and offer the alternatives,
        all in one record (a disruption opens thousands of these at once: one workflow task and one write
        each, not three). True once offered, False when the product was cancelled, None while another flow
        holds it (or the store refused the record: then nothing is written and the flow moves one step at
        a time)."""
        # As in _offer: listening (a choice, an advance of the deadline) before the record, so a partner
        # who answers its event at once is heard.
        deadline = self._deadline_ahead("rescheduling_window", self._decision_deadline())
        self._awaiting = True
        opened = await self._open_waiting("waiting_for_product", "awaiting_partner_action", RESCHEDULING_DETECTED,
                                          decision_deadline=deadline.at)
        if opened == "acquired":
            return True
        # Not offered after all. A choice or an advance admitted in the instant between the record and
        # this (the store showed the flow waiting for the product) is kept for the offer to come (_offer).
        self._awaiting = False
        if not deadline.advanced:
            self._deadline = None
        if opened is None:
            await self._move("waiting_for_product")
            return None
        return None if opened == "busy" else False

    async def _acquire_product(self) -> bool:
        """Wait until this flow holds the product's one-active-flow lock, however long another flow
        holds it; False when the product was cancelled meanwhile (there is nothing left to act on)."""
        return await workflow.execute_activity_method(
            FlowActivities.acquire_product,
            args=[self._info.product_id, self._info.code],
            start_to_close_timeout=ACQUIRE_TIMEOUT,
            retry_policy=ACQUIRE_RETRY,
            summary="wait for the product's lock",
        )

    def _decision_deadline(self) -> datetime:
        """The window, or the airline's action time limit when earlier (docs/rescheduling.md)."""
        return self._input.decision_deadline(workflow.now())

    async def _offer(self) -> None:
        """Offer the alternatives once the product is this flow's, after waiting for it."""
        earlier = self._deadline  # advanced while _open found the product busy; None on the old path
        deadline = self._deadline_ahead("rescheduling_window", self._decision_deadline())
        deadline.advanced = earlier is not None and earlier.advanced
        # Listening before the trigger leaves: a partner who answers it at once is heard.
        self._awaiting = True
        await self._move("awaiting_partner_action", RESCHEDULING_DETECTED, decision_deadline=deadline.at)

    async def _decide(self) -> None:
        """Wait for the partner's choice until the deadline, then apply it, or the default."""
        assert self._deadline is not None  # offered: _open or _offer set it
        await self._deadline.wait(lambda: self._choice is not None)
        self._awaiting = False
        # Read after the wait, not from its result: a choice accepted by the validator in the
        # same activation as the timer firing is still honoured.
        if self._choice is None:
            await self._apply(self._info.default_alternative, "auto_accepted", RESCHEDULING_AUTO_ACCEPTED)
        else:
            chosen = self._info.alternative(self._choice)
            assert chosen is not None  # the validator admits known alternatives only
            await self._apply(chosen, "accepted", RESCHEDULING_ACCEPTED)

    async def _apply(self, alternative: ReschedulingAlternative, status: ReschedulingStatus, event_type: str) -> None:
        product_id, code = self._info.product_id, self._info.code
        if alternative.kind == "refund":
            # A refund is the product cancelled at no penalty: the full price goes back.
            refused = await supplier_steps.cancel_at_supplier(product_id, code)
        else:
            refused = await supplier_steps.reschedule_at_supplier(product_id, alternative.segments, code)
        if refused is None:
            refund_to: RefundTo = self._refund_to if alternative.kind == "refund" else "original_payment"
            credit = credit_terms(code, alternative.refund, refund_to, self._input.credit_validity, workflow.now())
            await self._move(status, event_type, alternative_id=alternative.alternative_id, **credit)
            await start_expiry(self._info, self._input.deadlines_advanceable)
        else:
            await self._move("failed", RESCHEDULING_FAILED, alternative_id=alternative.alternative_id)

    @workflow.query
    def info(self) -> ReschedulingInfo:
        return self._info

    @workflow.update
    async def accept(self, choice: AlternativeChoice) -> ReschedulingInfo:
        if self._choice is None:
            self._choice = choice.alternative_id
            self._refund_to = choice.refund_to
        elif self._choice != choice.alternative_id or self._refund_to != choice.refund_to:
            # Two different choices admitted in one activation: the first one won.
            raise _not_awaiting(self._info)
        # The partner's POST answers with the outcome, not with "accepted for processing".
        await workflow.wait_condition(lambda: is_terminal(self._info.status))
        return self._info

    @accept.validator
    def _validate_choice(self, choice: AlternativeChoice) -> None:
        if self._choice is not None and choice.alternative_id == self._choice and choice.refund_to == self._refund_to:
            return  # the same choice repeated: answered like the first one
        if self._choice is None and not self._awaiting and self._info.status == "waiting_for_product":
            # Not offering yet (another flow holds the product), but it will once it takes the product:
            # refused for now, and the partner may ask again.
            raise refusal(
                Refusal.NOT_AWAITING_CHOICE,
                f"rescheduling {self._info.code} is not offering its alternatives yet: it waits for the product",
                not_yet=True,
            )
        if self._choice is not None or not self._awaiting:
            raise _not_awaiting(self._info)
        chosen = self._info.alternative(choice.alternative_id)
        if chosen is None:
            raise refusal(
                Refusal.UNKNOWN_ALTERNATIVE,
                f"rescheduling {self._info.code} has no alternative {choice.alternative_id!r}",
                [{"field": "alternative_id", "message": "not one of this rescheduling's alternatives"}],
            )
        if choice.refund_to == "credit" and chosen.kind != "refund":
            raise refusal(
                Refusal.INVALID_FIELDS,
                f"alternative {chosen.alternative_id!r} refunds nothing",
                [{"field": "refund_to", "message": "credit goes only with the refund alternative"}],
            )


def _not_awaiting(info: ReschedulingInfo) -> ApplicationError:
    return refusal(
        Refusal.NOT_AWAITING_CHOICE, f"rescheduling {info.code} is not awaiting a choice (status {info.status})"
    )
