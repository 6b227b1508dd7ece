"""A flow's calls to the supplier: cancel, reschedule, apply a change, and ask a special request's
airline until it answers. Their activity options are written here once.

The supplier's cancel and change are idempotent by flow code, so retrying an outage is safe and
giving up is not (a timed-out call may have cancelled): only the supplier's refusal ends a call,
and it is an answer, returned as its reason, not an error (docs/flows.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from domain.products import ProductSpec, Segment
from domain.special_request_flow import SpecialRequestAsk, SupplierAnswer
from workflows.patches import SUPPLIER_SAYS_WHEN

# Referenced, never called here: the sandbox takes the activity module (and what it imports) from outside.
with workflow.unsafe.imports_passed_through():
    from activities.supplier_calls import SUPPLIER_REFUSED, SupplierActivities

# The activity heartbeats while it waits for the supplier, so a worker that dies mid-call is
# noticed within SUPPLIER_HEARTBEAT_TIMEOUT and the call retried elsewhere, not after SUPPLIER_TIMEOUT.
SUPPLIER_TIMEOUT = timedelta(minutes=2)
SUPPLIER_HEARTBEAT_TIMEOUT = timedelta(seconds=10)
SUPPLIER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    maximum_interval=timedelta(minutes=5),
    non_retryable_error_types=[SUPPLIER_REFUSED],
)
SUPPLIER_CALL = workflow.ActivityConfig(
    start_to_close_timeout=SUPPLIER_TIMEOUT, heartbeat_timeout=SUPPLIER_HEARTBEAT_TIMEOUT, retry_policy=SUPPLIER_RETRY
)
# When an airline answers "pending" without saying when to ask again.
PENDING_ASK_AGAIN = timedelta(minutes=15)


async def cancel_at_supplier(product_id: str, flow_code: str, traveller_ids: list[str] | None = None) -> str | None:
    """Cancel the product (``traveller_ids``: those travellers of it) at the supplier; the supplier's
    reason when it refuses, else None. A flow started before travellers were named calls with the
    arguments it always did."""
    if traveller_ids is None:
        return await _at_supplier(SupplierActivities.cancel_at_supplier, product_id, flow_code)
    return await _at_supplier(SupplierActivities.cancel_at_supplier, product_id, flow_code, traveller_ids)


async def reschedule_at_supplier(product_id: str, segments: list[Segment], flow_code: str) -> str | None:
    """Move the flight to ``segments`` at the supplier; the supplier's reason when it refuses, else None."""
    return await _at_supplier(SupplierActivities.reschedule_at_supplier, product_id, segments, flow_code)


async def apply_change_at_supplier(product_id: str, itinerary: ProductSpec | None, flow_code: str) -> str | None:
    """Give the product its changed itinerary at the supplier (None: nothing to move, the change is
    recorded only); the supplier's reason when it refuses, else None."""
    return await _at_supplier(SupplierActivities.apply_change, product_id, itinerary, flow_code)


async def _at_supplier(activity: Callable[..., Awaitable[None]], *args: object) -> str | None:
    try:
        await workflow.execute_activity_method(activity, args=list(args), **SUPPLIER_CALL)
    except ActivityError as exc:
        if isinstance(exc.cause, ApplicationError) and exc.cause.type == SUPPLIER_REFUSED:
            return exc.cause.message
        raise
    return None


async def ask_special_request(ask: SpecialRequestAsk) -> SupplierAnswer:
    """Hand a special request to the airline and wait (on durable timers) for its answer.

    The supplier says when to ask for the answer and may answer ``pending`` with a time to ask again.
    """
    workflow.deprecate_patch(SUPPLIER_SAYS_WHEN)  # kept until no run that recorded the patch is open (workflows.patches)
    wait = await workflow.execute_activity_method(SupplierActivities.submit_special_request, ask, **SUPPLIER_CALL)
    while True:
        if wait > timedelta(0):
            await workflow.sleep(wait, summary="airline answers special requests")
        answer = await workflow.execute_activity_method(SupplierActivities.ask_special_request, ask, **SUPPLIER_CALL)
        if answer.status != "pending":
            return answer
        wait = answer.retry_after or PENDING_ASK_AGAIN
