"""Rescheduling (docs/rescheduling.md): a schedule change coming in — a supplier's signed push or the
sandbox airline's mock, through one entry point — and the partner's choice of an alternative. The
flow itself is ``workflows.rescheduling``; its rules are ``domain.rescheduling_flow``'s.

A push is delivered at least once. Its flow code is derived from the product and the supplier's
change id, so a re-delivery (also a concurrent one) finds the flow it started, running or
finished, and starts nothing; the first delivery wins if a re-delivery carries different content.
"""

from __future__ import annotations

import structlog

from domain.codes import FlowKind
from domain.credit_ledger import RefundTo
from domain.flow_info import is_terminal
from domain.products import FlightProduct
from domain.refusals import Refusal, Refused, not_found
from domain.rescheduling_flow import AlternativeChoice, ReschedulingInfo, ReschedulingInput, ScheduleChange, new_rescheduling
from services.bootstrap import Deps
from services.flow_start import NewFlow, StillWorking, open_and_launch, update_flow
from services.requester import Requester
from services.visibility import visible_flow
from store.supplier_accounts import SupplierAccount
from workflows.rescheduling import ReschedulingWorkflow

log = structlog.get_logger("services.reschedulings")


async def receive_schedule_change(deps: Deps, change: ScheduleChange, supplier: SupplierAccount | None = None) -> str:
    """Index the change's flow and start it; the flow code. Never refused for a busy product: the
    flow waits for the product's other flow to end (``waiting_for_product``).

    ``supplier``: who pushed it (None: the sandbox airline, which sells every carrier); a product of
    another carrier is not the sender's to change, and answers like an unknown one.
    """
    product = await deps.store.reservations.product(change.product_id)
    flight = product.spec if product is not None else None
    if product is None or not isinstance(flight, FlightProduct) or (supplier is not None and not supplier.sells(flight.carrier)):
        raise not_found("flight product of your carriers")
    # The travellers who remain are those it concerns: the refund alternative gives back their share.
    info = new_rescheduling(change, flight, product.reservation_id, product.partner_id, product.remaining_paid())
    existing = await deps.store.flows.flow(info.code)
    if existing is None or not is_terminal(existing.status):
        settings = deps.settings
        flow_input = ReschedulingInput(info=info, window=settings.rescheduling_window,
                                       webhook_retry_for=settings.webhook_retry_for,
                                       action_time_limit=change.action_time_limit,
                                       deadlines_advanceable=settings.deadlines_advanceable,
                                       credit_validity=settings.credit_validity)
        # Indexed before the workflow starts, so the reservation lists the flow as soon as we answer.
        await open_and_launch(deps, NewFlow(FlowKind.RESCHEDULING, flow_input, exclusive=False))
    # Else re-delivered after its flow ended: the same answer, and nothing starts again (even once
    # Temporal no longer remembers the finished workflow).
    log.info("schedule_change_received", supplier_id=supplier.supplier_id if supplier else None,
             change_id=change.change_id, product_id=change.product_id, flow_code=info.code)
    return info.code


async def accept(
    deps: Deps, requester: Requester, code: str, alternative_id: str, refund_to: RefundTo = "original_payment"
) -> ReschedulingInfo | StillWorking:
    """The partner chooses an alternative (the ``refund`` one with where its refund goes); the flow's
    validator decides whether it may."""
    recorded = await visible_flow(deps, requester.principal, code, FlowKind.RESCHEDULING, "rescheduling")
    code = recorded["code"]

    def on_closed(final: ReschedulingInfo) -> ReschedulingInfo:
        if final.repeats(alternative_id, refund_to):
            return final
        raise Refused(Refusal.NOT_AWAITING_CHOICE, f"rescheduling {code} is not awaiting a choice (status {final.status})")

    done = await update_flow(
        deps, requester, code, ReschedulingWorkflow.accept, AlternativeChoice(alternative_id=alternative_id, refund_to=refund_to), on_closed,
    )
    return StillWorking(recorded) if done is None else done
