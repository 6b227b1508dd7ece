"""What every flow endpoint shares: the caller's product, starting a flow under the product's lock,
and turning a workflow update's refusal into a problem. Change and rescheduling reuse it."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import structlog
from aiohttp import web
from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from api.context import SETTINGS, STORE, TEMPORAL
from api.problems import Problem, not_found
from domain.allowance import ProductState
from domain.codes import FlowKind
from domain.flows import FlowInfo, FlowRecord
from store.accounts import Principal
from store.flows import FlowInProgress
from store.reservations import ProductRecord

log = structlog.get_logger("api.flows")

# A lock whose workflow never started (the gateway died between the two) is taken back after this.
ORPHAN_AFTER = timedelta(seconds=30)

# ApplicationError types raised by workflow update validators → (HTTP status, problem code).
UPDATE_REFUSALS = {
    "not_awaiting_quote": (409, "not_awaiting_quote"),
    "not_awaiting_decision": (409, "not_awaiting_decision"),
    "invalid_quote": (422, "invalid_quote"),
    "not_awaiting_choice": (409, "not_awaiting_choice"),
    "unknown_alternative": (422, "unknown_alternative"),
    # change (domain.change_flows)
    "context_expired": (410, "context_expired"),
    "checkout_expired": (410, "checkout_expired"),
    "not_awaiting_booking": (409, "not_awaiting_booking"),
    "not_awaiting_prebook": (409, "not_awaiting_prebook"),
    "not_prebooked": (409, "not_prebooked"),
    "invalid_checkout": (422, "validation_failed"),
}


async def visible_product(request: web.Request, who: Principal, product_id: str) -> ProductRecord:
    product = await request.app[STORE].reservations.product(product_id)
    if product is None or (who.role == "partner" and product.partner_id != who.principal_id):
        raise not_found("product")
    return product


async def product_state(request: web.Request, product: ProductRecord) -> ProductState:
    holder = await request.app[STORE].flows.lock_holder(product.product_id)
    return ProductState(
        kind=product.kind,
        status=product.status,
        reservation_status=product.reservation_status,
        start=product.start,
        end=product.end,
        flow_in_progress=holder is not None,
    )


async def visible_flow(request: web.Request, who: Principal, code: str) -> dict[str, Any]:
    found = await request.app[STORE].flows.flow(code)
    if found is None or (who.role == "partner" and found.partner_id != who.principal_id):
        raise not_found("flow")
    return found.info


def opening_record(info: FlowInfo, kind: FlowKind) -> FlowRecord:
    """The flows-index row of a flow about to start, from its initial info."""
    return FlowRecord(
        code=info.code, kind=kind, product_id=info.product_id, reservation_id=info.reservation_id,
        partner_id=info.partner_id, status=info.status, terminal=False, info=info.model_dump(mode="json"),
        at=datetime.now(timezone.utc),
    )


def flow_in_progress(holder: str) -> Problem:
    return Problem(409, "flow_in_progress", f"the product has an active flow ({holder}); try again when it ends")


async def start_flow(
    request: web.Request, record: FlowRecord, run: Any, argument: Any, *, exclusive: bool = True
) -> WorkflowHandle:
    """Take the product's one-active-flow lock, index the flow, and start its workflow (id = code).

    The database's primary key on the lock decides races: of many simultaneous starts, one wins
    and the others get 409 ``flow_in_progress``. A flow that does not mutate the product (a special
    request) is started with ``exclusive=False``: indexed, without the lock.
    """
    flows = request.app[STORE].flows
    try:
        await (flows.open(record) if exclusive else flows.index(record))
    except FlowInProgress as busy:
        if not await _reclaim_orphan(request, busy.holder):
            raise flow_in_progress(busy.holder) from None
        try:
            await flows.open(record)
        except FlowInProgress as again:
            raise flow_in_progress(again.holder) from None
    settings = request.app[SETTINGS]
    try:
        return await request.app[TEMPORAL].start_workflow(
            run, argument, id=record.code, task_queue=settings.task_queue
        )
    except BaseException:
        await flows.abandon(record.code)
        raise


async def _reclaim_orphan(request: web.Request, holder: str) -> bool:
    """True when the lock's holder has no workflow and is old enough that it never will."""
    found = await request.app[STORE].flows.flow(holder)
    try:
        await request.app[TEMPORAL].get_workflow_handle(holder).describe()
        return False
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            return False
    # The lock and its flow row are written together: a lock without a row is not an orphan to take.
    if found is None or datetime.now(timezone.utc) - found.created_at < ORPHAN_AFTER:
        return False
    log.warning("orphan_lock_reclaimed", flow_code=holder)
    await request.app[STORE].flows.abandon(holder)
    return True


async def run_update(handle: WorkflowHandle, update: Any, argument: Any) -> Any:
    """Execute a workflow update; a validator's refusal becomes the matching problem."""
    try:
        return await handle.execute_update(update, argument)
    except WorkflowUpdateFailedError as failed:
        cause = failed.cause
        if isinstance(cause, ApplicationError) and cause.type in UPDATE_REFUSALS:
            status, code = UPDATE_REFUSALS[cause.type]
            errors = list(cause.details[0]) if cause.details else None
            raise Problem(status, code, cause.message, errors=errors) from None
        raise
