"""A change of one product (docs/flows.md#change). Workflow id = the flow code.

Started when the partner pre-books an alternative (a context) or when an agent issues a checkout,
so it holds the product's one-active-flow lock for as long as the price is held:

- automatic: awaiting_booking → modified | failed, or → expired when the context's TTL passes;
- manual: checkout_issued → checkout_prebooked → modified | failed, or → expired when the
  checkout's TTL passes (one deadline for the checkout and its pre-book context).
"""

from __future__ import annotations

from typing import Any, Literal

from temporalio import workflow
from temporalio.exceptions import ApplicationError

from domain.change_flow import (
    CHANGE_CHECKOUT_ISSUED,
    CHANGE_COMPLETED,
    CHANGE_EXPIRED,
    CHANGE_FAILED,
    CHECKOUT_CONTEXT_PREFIX,
    Booking,
    ChangeInfo,
    ChangeInput,
    ChangeStatus,
    Prebooking,
    public_id,
)
from domain.codes import FlowKind
from domain.credit_ledger import CREDIT_PAYMENT_METHOD
from domain.flow_info import is_terminal
from domain.refusals import Refusal
from workflows import supplier_steps
from workflows.flow_transitions import FlowWorkflow
from workflows.update_refusals import refusal


@workflow.defn(name="ChangeWorkflow")
class ChangeWorkflow(FlowWorkflow[ChangeInfo, ChangeStatus]):
    kind = FlowKind.CHANGE

    @workflow.init
    def __init__(self, input: ChangeInput) -> None:
        # Built here, not in run(): an update may arrive in the very first activation.
        super().__init__(input.initial_info(), input.webhook_retry_for, input.deadlines_advanceable)
        self._input = input
        self._manual = input.resolution == "manual"
        # One deadline for the whole flow, the partner's from the start: a checkout's validity (its
        # pre-book and booking), or a change context's.
        self._expiry = self._deadline_ahead("checkout_ttl" if self._manual else "change_context_ttl", input.expires_at)
        # What the flow listens for right now. Validators check this (and the deadline) rather than
        # the status, which changes only once the store has it: a booking arriving after the TTL,
        # while ``expired`` is being recorded, must be refused.
        self._awaiting: Literal["prebook", "booking"] | None = "prebook" if self._manual else "booking"
        self._prebooked = False
        self._booking: Booking | None = None

    @workflow.run
    async def run(self, input: ChangeInput) -> ChangeInfo:
        if self._manual:
            await self._move("checkout_issued", CHANGE_CHECKOUT_ISSUED)
            await self._expiry.wait(lambda: self._prebooked)
            # Read after the wait: a pre-book accepted in the activation the timer fired in is honoured.
            if self._prebooked:
                # The checkout's validity holds its booking too: the same deadline, waited on again
                # (passed already if its time came or it was advanced).
                self._expiry.reopen()
                await self._move(
                    "checkout_prebooked",
                    after_update=True,
                    checkout_context_id=public_id(CHECKOUT_CONTEXT_PREFIX, input.code),
                )
                self._awaiting = "booking"
        else:
            await self._move("awaiting_booking")
        if self._awaiting == "booking":
            await self._expiry.wait(lambda: self._booking is not None)
        self._awaiting = None
        booking = self._booking
        if booking is None:
            await self._move("expired", CHANGE_EXPIRED)
        else:
            await self._apply(booking)
        # Let update callers get their answer before the workflow closes.
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._info

    async def _apply(self, booking: Booking) -> None:
        kept: dict[str, Any] = {"invoice_hint": booking.invoice_hint, "payment_method": booking.payment_method,
                                "credit_id": booking.credit_id}
        refused = await supplier_steps.apply_change_at_supplier(
            self._input.product_id, self._input.itinerary, self._input.code
        )
        if refused is None:
            await self._move("modified", CHANGE_COMPLETED, **kept)
        else:
            await self._move("failed", CHANGE_FAILED, failure=refused, **kept)

    def _expired(self) -> bool:
        return workflow.now() >= self._input.expires_at or (self._awaiting is None and self._booking is None)

    def _expired_refusal(self) -> ApplicationError:
        if self._manual:
            return refusal(Refusal.CHECKOUT_EXPIRED, f"checkout of {self._info.code} has expired")
        return refusal(Refusal.CONTEXT_EXPIRED, f"change context of {self._info.code} has expired")

    @workflow.query
    def info(self) -> ChangeInfo:
        return self._info

    @workflow.update
    async def prebook(self, prebooking: Prebooking) -> ChangeInfo:
        self._prebooked = True
        await workflow.wait_condition(lambda: self._info.status != "checkout_issued")
        return self._info

    @prebook.validator
    def _validate_prebook(self, prebooking: Prebooking) -> None:
        if not self._manual:
            raise refusal(Refusal.NOT_AWAITING_PREBOOK, f"{self._info.code} is not a checkout")
        if prebooking.transaction_id != self._info.reservation_id:
            raise refusal(
                Refusal.INVALID_CHECKOUT,
                "the checkout belongs to another reservation",
                [{"field": "transaction_id", "message": "is not the reservation this checkout was issued for"}],
            )
        if self._prebooked:
            return  # pre-booked already: answered like the first time
        if self._expired():
            raise self._expired_refusal()
        if self._awaiting != "prebook":
            raise refusal(Refusal.NOT_AWAITING_PREBOOK, f"checkout {self._info.code} is not awaiting a pre-book")

    def _booking_taken(self) -> bool:
        """The flow listens for a booking: an automatic change from its start, a checkout from the
        moment its pre-book is taken, before that pre-book's move is recorded. The store (and the
        partner, answered with the checkout context) shows the pre-book as soon as that move commits,
        while the workflow hears that it is done a task or two later (much later after a worker
        restart): a booking meanwhile is taken, and applied once the move is done (the booking wait
        in ``run`` then ends at once)."""
        return self._awaiting == "booking" or (self._awaiting == "prebook" and self._prebooked)

    @workflow.update
    async def book(self, booking: Booking) -> ChangeInfo:
        if self._booking is None:
            self._booking = booking
        # The partner's book answers with the outcome, not with "accepted for processing".
        await workflow.wait_condition(lambda: is_terminal(self._info.status))
        return self._info

    @book.validator
    def _validate_booking(self, booking: Booking) -> None:
        if self._booking is not None:
            return  # booked already: the same context booked again answers the same
        if self._expired():
            raise self._expired_refusal()
        if self._awaiting == "prebook" and not self._prebooked:
            # Not pre-booked yet, but the partner may pre-book: refused for now, and a retry asks again.
            raise refusal(Refusal.NOT_PREBOOKED, f"checkout {self._info.code} must be pre-booked first", not_yet=True)
        if not self._booking_taken():
            raise refusal(Refusal.NOT_AWAITING_BOOKING, f"change {self._info.code} is not awaiting a booking")
        paid_with_credit = booking.payment_method == CREDIT_PAYMENT_METHOD and booking.credit_id is not None
        if self._manual and booking.payment_method not in self._info.payment_methods and not paid_with_credit:
            raise refusal(
                Refusal.INVALID_CHECKOUT,
                "unknown payment method",
                [{"field": "payment_method", "message": f"must be one of {', '.join(self._info.payment_methods)}, "
                                                         f"or {CREDIT_PAYMENT_METHOD} with a credit_id"}],
            )
