"""How a flow moves: recording its transition and emitting its trigger (docs/flows.md#how-a-flow-starts),
the only way a flow's state reaches the store and its partner hears of it. Every flow workflow
inherits ``FlowWorkflow`` and moves with ``_move``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar, Generic, Literal, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from domain.codes import EVENT_ID, FlowKind
from domain.flow_info import FlowInfo, FlowRecord, HistoryEntry
from domain.record_retry import RecordRetried, RecordRetryRequest, RefusedRecord
from domain.refusals import Refusal
from workflows.deadlines import DeadlineWaits
from workflows.patches import INPUT_DURABLE_FIRST, PARK_A_REFUSED_RECORD
from workflows.trigger_delivery import TriggerDeliveryInput, TriggerDeliveryWorkflow, trigger_workflow_id
from workflows.update_refusals import refusal

# Referenced, never called here: the sandbox takes the activity module (and what it imports) from outside.
with workflow.unsafe.imports_passed_through():
    from activities.transitions import RECORD_REFUSED, FlowActivities

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

    A move the store refuses for good parks the flow where it is (``refused_record`` shows why) until
    an operator's ``retry_record`` update records the same transition again
    (docs/operations.md#a-refused-record).
    """

    kind: ClassVar[FlowKind]

    def __init__(self, info: InfoT, webhook_retry_for: timedelta, deadlines_advanceable: bool) -> None:
        super().__init__(deadlines_advanceable)
        self._info = info
        self._webhook_retry_for = webhook_retry_for
        # Set while the flow is parked on a refused record; retries asked by operators, and answered.
        self._refused: RefusedRecord | None = None
        self._retries_asked = 0
        self._retries_answered = 0
        self._retried: RecordRetried | None = None

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
        moved, record = self._moved(self._info, status, event_type, **changes)
        push = await self._record(record, after_update)
        # A partner without a webhook reads its events from the pull feed: no delivery to run.
        if record.event_id is not None and push:
            await _emit_trigger(record.event_id, self._webhook_retry_for)
        self._info = moved

    def _moved(self, base: InfoT, status: StatusT, event_type: str | None = None, **changes: Any) -> tuple[InfoT, FlowRecord]:
        """``base`` moved to ``status`` (plus ``changes``) now, and its record with event ``event_type``."""
        now = workflow.now()
        moved = type(base).model_validate(
            {
                **base.model_dump(),
                **self._carried(),
                **changes,
                "status": status,
                "history": [*base.history, HistoryEntry(at=now, event=status)],
            }
        )
        # Drawn from the workflow's seeded random, so a replay computes the same id.
        event_id = EVENT_ID.new(workflow.random()) if event_type else None
        return moved, FlowRecord.of(moved, self.kind, now, event_id, event_type)

    async def _open_waiting(
        self, waiting: StatusT, offered: StatusT, event_type: str, **changes: Any
    ) -> Literal["acquired", "busy", "product_cancelled"] | None:
        """A flow that waits its turn for the product opens with one record: ``waiting`` recorded and, when
        the product's lock is free, the lock taken and ``offered`` (plus ``changes``) recorded with its
        event, in one local activity and one transaction (``open_waiting``), instead of a move, an
        ``acquire_product`` activity and a move. The lock's outcome: the flow has moved to ``offered`` when
        ``acquired``, to ``waiting`` otherwise. None when the store refused a record for good: nothing was
        written, and the caller moves one step at a time (``_move`` parks on the refusal)."""
        waiting_info, waiting_record = self._moved(self._info, waiting)
        offered_info, offered_record = self._moved(waiting_info, offered, event_type, **changes)
        try:
            opened = await workflow.execute_local_activity_method(
                FlowActivities.open_waiting, args=[waiting_record, offered_record],
                start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY,
            )
        except (ActivityError, ApplicationError) as failed:
            if _refusal_of(failed) is None:
                raise
            return None
        self._info = waiting_info
        if opened.lock == "acquired":
            if offered_record.event_id is not None and opened.push:
                await _emit_trigger(offered_record.event_id, self._webhook_retry_for)
            self._info = offered_info
        return opened.lock

    async def _record(self, record: FlowRecord, after_update: bool) -> bool:
        """Record ``record``; while the store refuses it for good, park until an operator asks again.

        The same record every time (its event id included): the store writes it, and its event, once."""
        while True:
            try:
                push = await _record_once(record, after_update)
            except (ActivityError, ApplicationError) as failed:
                reason = _refusal_of(failed)
                # The marker is asked for only on a refusal: a run that never met one replays as before.
                if reason is None or not workflow.patched(PARK_A_REFUSED_RECORD):
                    raise
                self._answer_retry(record, reason)
                self._refused = RefusedRecord(status=record.status, event_type=record.event_type, reason=reason,
                                              refused_at=workflow.now(), retries=self._retries_asked)
                await workflow.wait_condition(self._retry_asked)
                continue
            self._answer_retry(record, None)
            self._refused = None
            return push

    def _retry_asked(self) -> bool:
        """An operator asked to record the refused transition again since the flow parked on it."""
        return self._refused is not None and self._retries_asked > self._refused.retries

    def _answer_retry(self, record: FlowRecord, refused_because: str | None) -> None:
        """What an operator's pending ``retry_record`` answers: this attempt's outcome."""
        if self._retries_answered < self._retries_asked:
            self._retried = RecordRetried(code=record.code, status=record.status,
                                          outcome="refused" if refused_because else "recorded", reason=refused_because)
            self._retries_answered = self._retries_asked

    @workflow.query  # registered as "refused_record"
    def refused_record(self) -> RefusedRecord | None:
        """The transition the flow is parked on, and why; None when it is not parked."""
        return self._refused

    @workflow.update  # registered as "retry_record": the method's name is the update's, never to change
    async def retry_record(self, request: RecordRetryRequest) -> RecordRetried:
        """Record the refused transition again (after an operator's fix); answers once that attempt's
        outcome is known: recorded (the flow goes on) or refused again (it stays parked)."""
        self._retries_asked += 1
        asked = self._retries_asked
        await workflow.wait_condition(lambda: self._retries_answered >= asked)
        assert self._retried is not None
        return self._retried

    @retry_record.validator
    def _validate_retry_record(self, request: RecordRetryRequest) -> None:
        if self._refused is None:
            raise refusal(Refusal.NO_REFUSED_RECORD, f"flow {self._info.code} has no refused record to retry")
        if self._retry_asked():
            raise refusal(Refusal.NO_REFUSED_RECORD, f"flow {self._info.code} is recording its refused move again already")


async def _record_once(record: FlowRecord, after_update: bool) -> bool:
    """One ``record_flow`` activity, retried by Temporal while its failure may pass (the database away)."""
    if after_update:
        workflow.deprecate_patch(INPUT_DURABLE_FIRST)  # kept until no run that recorded the patch is open (workflows.patches)
        return await workflow.execute_activity_method(
            FlowActivities.record_flow, record, start_to_close_timeout=RECORD_ATTEMPT_TIMEOUT, retry_policy=RECORD_RETRY
        )
    # A local activity: one short database transaction needs no round trip through the server's
    # task queues. It is idempotent, so the re-run a worker crash can cause is harmless.
    return await workflow.execute_local_activity_method(
        FlowActivities.record_flow, record, start_to_close_timeout=RECORD_TIMEOUT, retry_policy=RECORD_RETRY
    )


def _refusal_of(failed: ActivityError | ApplicationError) -> str | None:
    """The store's reason when ``failed`` is its refusal of a record for good (``RECORD_REFUSED``): the
    cause of an activity's failure, or (a local activity's, as the SDK raises it) the failure itself."""
    cause = failed.cause if isinstance(failed, ActivityError) else failed
    if isinstance(cause, ApplicationError) and cause.type == RECORD_REFUSED:
        return cause.message
    return None


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
