"""How a flow moves: recording its transition and emitting its trigger (docs/flows.md#how-a-flow-starts),
the only way a flow's state reaches the store and its partner hears of it. Every flow workflow
inherits ``FlowWorkflow`` and moves with ``_move``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar, Generic, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from domain.codes import EVENT_ID, FlowKind
from domain.flow_info import FlowInfo, FlowRecord, HistoryEntry
from workflows.deadlines import DeadlineWaits
from workflows.patches import INPUT_DURABLE_FIRST
from workflows.trigger_delivery import TriggerDeliveryInput, TriggerDeliveryWorkflow, trigger_workflow_id

# Referenced, never called here: the sandbox takes the activity module (and what it imports) from outside.
with workflow.unsafe.imports_passed_through():
    from activities.transitions import FlowActivities

InfoT = TypeVar("InfoT", bound=FlowInfo)
StatusT = TypeVar("StatusT", bound=str)

# A transition must reach the store however long the database is away: retry without limit.
RECORD_TIMEOUT = timedelta(seconds=30)
RECORD_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# As a normal activity one attempt is given 10 s: a worker that dies mid-attempt delays the flow by
# that much, and an attempt that commits late is harmless (the store keeps the newest version).
RECORD_ATTEMPT_TIMEOUT = timedelta(seconds=10)


class FlowWorkflow(DeadlineWaits, Generic[InfoT, StatusT]):
    """What every flow workflow holds, and its one way to move: ``_move``.

    ``_info`` is the flow as the store has it. A move replaces it only once the store has the new
    one, so a query or an update's answer never shows a state the store does not have. Every flow
    waits on its deadlines through ``DeadlineWaits`` (workflows/deadlines.py), which also gives it
    the ``advance_deadline`` update.
    """

    kind: ClassVar[FlowKind]

    def __init__(self, info: InfoT, webhook_retry_for: timedelta, deadlines_advanceable: bool) -> None:
        super().__init__(deadlines_advanceable)
        self._info = info
        self._webhook_retry_for = webhook_retry_for

    def _carried(self) -> dict[str, Any]:
        """Fields every transition of this flow records besides its own changes (a hook: the
        cancellation carries the partner's decision)."""
        return {}

    async def _move(
        self, status: StatusT, event_type: str | None = None, *, after_update: bool = False, **changes: Any
    ) -> None:
        """Move to ``status`` (plus ``changes``), persist it with its event ``event_type``, emit the trigger.

        ``after_update``: the transition follows a partner's or agent's update accepted in this same
        workflow task. It is then recorded by a (normal) activity, which runs only once that task,
        and with it the update's acceptance, is durable in the workflow's history: a local activity
        would write the store first, and a crash before the task completed would leave the store
        (and the partner, told by the trigger) ahead of a workflow that never accepted the update.
        """
        now = workflow.now()
        moved = type(self._info).model_validate(
            {
                **self._info.model_dump(),
                **self._carried(),
                **changes,
                "status": status,
                "history": [*self._info.history, HistoryEntry(at=now, event=status)],
            }
        )
        # Drawn from the workflow's seeded random, so a replay computes the same id.
        event_id = EVENT_ID.new(workflow.random()) if event_type else None
        record = FlowRecord.of(moved, self.kind, now, event_id, event_type)
        push: bool
        if after_update:
            workflow.deprecate_patch(INPUT_DURABLE_FIRST)  # kept until no run that recorded the patch is open (workflows.patches)
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
            await _emit_trigger(event_id, self._webhook_retry_for)
        self._info = moved


async def _emit_trigger(event_id: str, retry_for: timedelta) -> None:
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
