"""Recording a flow's transition and emitting its trigger (docs/flows.md#how-a-flow-starts): the
only way a flow's state reaches the store, and its partner hears of it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from domain.codes import FlowKind, new_id
from domain.flow_info import FlowInfo, FlowRecord, HistoryEntry
from workflows.patches import INPUT_DURABLE_FIRST
from workflows.trigger_delivery import TriggerDeliveryInput, TriggerDeliveryWorkflow, trigger_workflow_id

# Referenced, never called here: the sandbox takes the activity module (and what it imports) from outside.
with workflow.unsafe.imports_passed_through():
    from activities.transitions import FlowActivities

InfoT = TypeVar("InfoT", bound=FlowInfo)

# A transition must reach the store however long the database is away: retry without limit.
RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# As a normal activity one attempt is given 10 s: a worker that dies mid-attempt delays the flow by
# that much, and an attempt that commits late is harmless (the store keeps the newest version).
RECORD_ATTEMPT_TIMEOUT = timedelta(seconds=10)


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
