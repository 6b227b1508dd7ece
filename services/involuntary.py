"""Involuntary cancellations (docs/flows.md#involuntary-cancellations) as the services see them: is a
product's cancellation involuntary now, and telling an open cancellation that a schedule change
arrived. The rule itself is ``domain.involuntary``'s.

Either side may come first, so both look: a schedule change, once indexed, signals the product's
open cancellation; a cancellation, once opened, signals itself if a rescheduling of its product was
indexed meanwhile. Whichever is indexed second sees the first.
"""

from __future__ import annotations

from datetime import datetime

import structlog
from temporalio.service import RPCError, RPCStatusCode

from domain.cancellation_flow import ScheduleChanged
from domain.codes import FlowKind, parse_flow_code
from domain.involuntary import change_unfinished, involuntary_cancellation_terms, is_involuntary
from domain.money import Money
from domain.refund_terms import CancellationTerms, cancellation_terms
from services.bootstrap import Deps
from services.visibility import product_state
from store.reservation_records import ProductRecord
from workflows.cancellation import CancellationWorkflow

log = structlog.get_logger("services.involuntary")


async def involuntary(deps: Deps, product_id: str) -> bool:
    """The supplier changed the product: cancelling it costs no penalty."""
    return is_involuntary((await deps.store.flows.product_flows(product_id, FlowKind.RESCHEDULING.value)).values())


async def changing_rescheduling(deps: Deps, product_id: str) -> str | None:
    """The code of a rescheduling that makes the product's cancellation involuntary, if any."""
    found = await deps.store.flows.product_flows(product_id, FlowKind.RESCHEDULING.value)
    return next((code for code, status in found.items() if is_involuntary([status])), None)


async def terms_now(
    deps: Deps, product: ProductRecord, now: datetime, paid: Money | None = None
) -> tuple[CancellationTerms, bool]:
    """What cancelling the product (``paid``: the share of the travellers cancelled, docs/api.md#partial-cancellation)
    costs now, and whether that is involuntary: the quote and the refund procedure both ask here
    (docs/settlement.md#the-refund-procedure answers what a quote would)."""
    terms = cancellation_terms(await product_state(deps, product), product.spec, now, paid)
    if await changing_rescheduling(deps, product.product_id) is None:
        return terms, False
    return involuntary_cancellation_terms(terms), True


async def rescheduling_open(deps: Deps, product_id: str) -> bool:
    """A rescheduling of the product is not finished: a change booked now carries no fee."""
    return change_unfinished((await deps.store.flows.product_flows(product_id, FlowKind.RESCHEDULING.value)).values())


async def tell_cancellations(deps: Deps, started: dict[str, str]) -> None:
    """Signal ``schedule_changed`` to each product's open cancellation: ``started`` maps each product
    to the rescheduling just started on it (one push, or a batch of a disruption's fan-out)."""
    holders = await deps.store.flows.lock_holders(list(started))
    for product_id, holder in holders.items():
        await tell_cancellation(deps, product_id, started[product_id], holder)


async def tell_cancellation(deps: Deps, product_id: str, rescheduling_code: str, cancellation_code: str | None = None) -> None:
    """Signal ``schedule_changed`` to the product's open cancellation (``cancellation_code``, or the
    holder of the product's lock when it is a cancellation). A cancellation that has finished, or
    whose start a crash interrupted (the reconciler starts it, and its start looks again), is left."""
    code = cancellation_code or await deps.store.flows.lock_holder(product_id)
    if code is None or parse_flow_code(code) != FlowKind.CANCELLATION:
        return
    handle = deps.temporal.get_workflow_handle_for(CancellationWorkflow.run, code)
    try:
        await handle.signal(CancellationWorkflow.schedule_changed, ScheduleChanged(rescheduling_code=rescheduling_code))
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        log.info("schedule_change_after_cancellation", product_id=product_id, flow_code=code,
                 rescheduling_code=rescheduling_code)
        return
    log.info("cancellation_made_involuntary", product_id=product_id, flow_code=code, rescheduling_code=rescheduling_code)
