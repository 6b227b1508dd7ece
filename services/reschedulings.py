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
from services.flow_start import NewFlow, StillWorking, open_and_launch, open_and_launch_many, update_flow
from services.involuntary import tell_cancellations
from services.requester import Requester
from services.visibility import visible_flow
from store.reservation_records import ProductRecord
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
    code = await start_rescheduling(deps, product, flight, change)
    log.info("schedule_change_received", supplier_id=supplier.supplier_id if supplier else None,
             change_id=change.change_id, product_id=change.product_id, flow_code=code)
    return code


async def start_rescheduling(deps: Deps, product: ProductRecord, flight: FlightProduct, change: ScheduleChange) -> str:
    """Start the flow of ``change`` on ``product`` (a flight the sender may change), unless it was
    started already; its code."""
    [code] = await start_reschedulings(deps, [(product, flight, change)])
    return code


async def start_reschedulings(deps: Deps, changes: list[tuple[ProductRecord, FlightProduct, ScheduleChange]],
                              disruption_id: str | None = None) -> list[str]:
    """Start the flow of each change on its product unless it was started already; their codes. The
    one way a schedule change starts: one product's push, or a batch of a disruption's fan-out
    (which names itself: ``disruption_id``), indexed in one transaction."""
    settings = deps.settings
    # The travellers who remain are those a change concerns: the refund alternative gives back their
    # share (docs/api.md#partial-cancellation).
    infos = [(new_rescheduling(change, flight, product.reservation_id, product.partner_id, product.remaining_paid()),
              change)
             for product, flight, change in changes]
    known = await deps.store.flows.statuses([info.code for info, _change in infos])
    news = [
        NewFlow(FlowKind.RESCHEDULING, ReschedulingInput(
            info=info, window=settings.rescheduling_window, webhook_retry_for=settings.webhook_retry_for,
            action_time_limit=change.action_time_limit, deadlines_advanceable=settings.deadlines_advanceable,
            credit_validity=settings.credit_validity,
        ), exclusive=False)
        for info, change in infos
        # Re-delivered after its flow ended: the same answer, and nothing starts again (even once
        # Temporal no longer remembers the finished workflow).
        if not (info.code in known and is_terminal(known[info.code]))
    ]
    # Indexed before the workflows start, so the reservation lists the flow as soon as we answer.
    if len(news) == 1 and disruption_id is None:
        await open_and_launch(deps, news[0])
    elif news:
        await open_and_launch_many(deps, news, disruption_id)
    # A cancellation open on one of these products becomes involuntary (docs/flows.md#involuntary-cancellations):
    # told on every delivery (or retried batch) while the rescheduling is unfinished, so a crash before this
    # line is made good by the supplier's re-delivery or the fan-out's retry.
    await tell_cancellations(deps, {info.product_id: info.code for info, _change in infos
                                    if not (info.code in known and is_terminal(known[info.code]))})
    return [info.code for info, _change in infos]


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
