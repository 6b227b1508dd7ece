"""Mechanics every flow kind shares: waiting with a deadline, recording a transition, emitting its trigger,
refusing an update, and calling the supplier. Activity options are written out here once, so flows
never repeat them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from domain.codes import FlowKind, new_id
from domain.flow_info import FlowInfo, FlowRecord, HistoryEntry
from domain.products import ProductSpec, Segment
from domain.refusals import Refusal
from domain.special_request_flow import SpecialRequestAsk, SupplierAnswer
from workflows.trigger_delivery import TriggerDeliveryInput, TriggerDeliveryWorkflow, trigger_workflow_id

# Activities are called by reference to their methods, never by name. The sandbox takes the
# activity modules (and the I/O libraries they import) from outside, and only their definitions are read.
with workflow.unsafe.imports_passed_through():
    from activities.supplier_calls import SUPPLIER_REFUSED, SupplierActivities
    from activities.transitions import FlowActivities

InfoT = TypeVar("InfoT", bound=FlowInfo)

# A transition must reach the store however long the database is away: retry without limit.
RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# As a normal activity one attempt is given 10 s: a worker that dies mid-attempt delays the flow by
# that much, and an attempt that commits late is harmless (the store keeps the newest version).
RECORD_ATTEMPT_TIMEOUT = timedelta(seconds=10)

# The supplier's cancel is idempotent by flow code, so retrying an outage is safe and giving up
# is not (a timed-out call may have cancelled). Only a refusal ends it. The activity heartbeats
# while it waits for the supplier, so a worker that dies mid-call is noticed within
# SUPPLIER_HEARTBEAT_TIMEOUT and the call retried elsewhere, not after SUPPLIER_TIMEOUT.
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

# A schedule change is never refused, it waits its turn (docs/flows.md#one-active-flow-per-product): taking a busy product's lock
# is retried without limit, backing off to once a minute while the holder's flow runs.
ACQUIRE_TIMEOUT = timedelta(seconds=30)
ACQUIRE_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))

# Transitions caused by an update are recorded once the update's acceptance is durable (record_transition).
INPUT_DURABLE_FIRST = "record-after-the-update-is-durable"

# A special request's airline answers when it says it will (see ``ask_special_request``).
SUPPLIER_SAYS_WHEN = "supplier-says-when-it-answers"
# Flows started before it waited the agent-quote window from the moment its first move was
# recorded, a little after the deadline they show; they keep doing so on replay.
EXPIRE_AT_THE_DEADLINE = "expire-at-the-deadline-shown"
PENDING_ASK_AGAIN = timedelta(minutes=15)


async def wait_until(condition: Callable[[], bool], limit: timedelta | datetime, summary: str) -> bool:
    """Wait for ``condition`` until ``limit`` (a timeout, or a deadline); False when the time ran out."""
    timeout = limit - workflow.now() if isinstance(limit, datetime) else limit
    if timeout <= timedelta(0):
        return condition()
    try:
        await workflow.wait_condition(condition, timeout=timeout, timeout_summary=summary)
    except TimeoutError:
        return False
    return True


async def record_transition(
    info: InfoT,
    kind: FlowKind,
    status: str,
    *,
    webhook_retry_for: timedelta,
    event_type: str | None = None,
    after_update: bool = False,
    **changes: Any,
) -> InfoT:
    """Move ``info`` to ``status`` (plus ``changes``), persist it with its event, and emit the trigger.

    Returns the new info and leaves ``info`` untouched: the caller swaps it in only once the
    store has it, so a query or an update answer never shows a state the store does not have.

    ``after_update``: the transition follows a partner's or agent's update accepted in this same
    workflow task. It is then recorded by a (normal) activity, which runs only once that task,
    and with it the update's acceptance, is durable in the workflow's history: a local activity
    would write the store first, and a crash before the task completed would leave the store
    (and the partner, told by the trigger) ahead of a workflow that never accepted the update.
    """
    now = workflow.now()
    moved = type(info).model_validate(
        {
            **info.model_dump(),
            **changes,
            "status": status,
            "history": [*info.history, HistoryEntry(at=now, event=status)],
        }
    )
    # Drawn from the workflow's seeded random, so a replay computes the same id.
    event_id = new_id("evt_", workflow.random()) if event_type else None
    record = FlowRecord.of(moved, kind, now, event_id, event_type)
    push: bool
    if after_update and workflow.patched(INPUT_DURABLE_FIRST):
        push = await workflow.execute_activity_method(
            FlowActivities.record_flow, record, start_to_close_timeout=RECORD_ATTEMPT_TIMEOUT, retry_policy=RECORD_RETRY
        )
    else:
        # A local activity: one short database transaction needs no round trip through the server's
        # task queues. It is idempotent, so the re-run a worker crash can cause is harmless.
        push = await workflow.execute_local_activity_method(
            FlowActivities.record_flow, record, start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY
        )
    # A partner without a webhook reads its events from the pull feed: no delivery to run.
    if event_id is not None and push:
        await emit_trigger(event_id, webhook_retry_for)
    return moved


async def emit_trigger(event_id: str, retry_for: timedelta) -> None:
    """Start the delivery of a stored event and return as soon as it has started.

    The child is abandoned: a partner's webhook failing for days must neither hold the flow
    open nor be cut short when the flow finishes.
    """
    try:
        await workflow.start_child_workflow(
            TriggerDeliveryWorkflow.run,
            TriggerDeliveryInput(event_id=event_id, retry_for=retry_for),
            id=trigger_workflow_id(event_id),
            parent_close_policy=ParentClosePolicy.ABANDON,
        )
    except WorkflowAlreadyStartedError:
        # The outbox dispatcher started this event's delivery already (the partner set its webhook
        # while this transition's record was being retried): it is delivered, and the flow goes on.
        pass


async def acquire_product(product_id: str, flow_code: str) -> bool:
    """Wait until this flow holds the product's one-active-flow lock, however long another flow
    holds it; False when the product was cancelled meanwhile (there is nothing left to act on)."""
    return await workflow.execute_activity_method(
        FlowActivities.acquire_product,
        args=[product_id, flow_code],
        start_to_close_timeout=ACQUIRE_TIMEOUT,
        retry_policy=ACQUIRE_RETRY,
        summary="wait for the product's lock",
    )


async def cancel_at_supplier(product_id: str, flow_code: str) -> str | None:
    """Cancel the product at the supplier; the supplier's reason when it refuses, else None."""
    return await _at_supplier(SupplierActivities.cancel_at_supplier, product_id, flow_code)


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


async def ask_special_request(ask: SpecialRequestAsk, legacy_delay: timedelta | None) -> SupplierAnswer:
    """Hand a special request to the airline and wait (on durable timers) for its answer.

    The supplier says when to ask for the answer and may answer ``pending`` with a time to ask
    again. ``legacy_delay`` is the fixed wait of flows started before the supplier said it itself.
    """
    if workflow.patched(SUPPLIER_SAYS_WHEN):
        wait = await workflow.execute_activity_method(SupplierActivities.submit_special_request, ask, **SUPPLIER_CALL)
    else:
        wait = legacy_delay or timedelta(0)
    while True:
        if wait > timedelta(0):
            await workflow.sleep(wait, summary="airline answers special requests")
        answer = await workflow.execute_activity_method(SupplierActivities.ask_special_request, ask, **SUPPLIER_CALL)
        if answer.status != "pending":
            return answer
        wait = answer.retry_after or PENDING_ASK_AGAIN


def refusal(refused: Refusal, message: str, errors: list[dict[str, str]] | None = None) -> ApplicationError:
    """An update validator's refusal: the gateway maps its type to a problem (``api.problems``);
    ``errors`` are the field errors of a 422."""
    details = [errors] if errors is not None else []
    return ApplicationError(message, *details, type=refused.value, non_retryable=True)
