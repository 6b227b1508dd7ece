"""A transition caused by a partner's or agent's update reaches the store only once the update's
acceptance is durable in the workflow's history (docs/flows.md#how-a-flow-starts).

A local activity would run inside the workflow task that accepts the update, before that task is
committed: a worker crash then would leave the store (and the partner, told by the trigger) ahead
of a workflow that never accepted the update. A normal activity is scheduled by the very task
completion that accepts the update, so it can only run after that acceptance is durable.
"""

from __future__ import annotations

from temporalio.api.enums.v1 import EventType

from domain.cancellation_flow import PartnerDecision
from tests.workflows import scenarios
from tests.workflows.conftest import Harness
from workflows.cancellation import CancellationWorkflow

RECORD_FLOW = "record_flow"
LOCAL_ACTIVITY_MARKER = "core_local_activity"  # how the SDK records a local activity's result


async def _recorded_after_acceptance(handle: scenarios.CancellationHandle) -> list[str]:
    """For each update accepted, how the next store write was made: "activity" or "local"."""
    history = await handle.fetch_history()
    ways: list[str] = []
    accepted = False
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            accepted = True
        elif accepted and event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_type.name == RECORD_FLOW:
                ways.append("activity")
                accepted = False
        elif accepted and event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            if event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER:
                ways.append("local")
                accepted = False
    return ways


async def _first_recorded(harness: Harness, code: str) -> None:
    """Until the flow's opening status is in the store (bounded): an update accepted while that first
    local record is still running would put its marker after the acceptance, telling nothing."""
    await harness.store.wait_for(lambda: harness.store.statuses(code), scenarios.RESULT_WAIT)


async def test_quote_and_rejection_are_recorded_after_they_are_durable(harness: Harness) -> None:
    handle = await scenarios.start_cancellation(harness.client, harness.task_queue, "CAN-DURABLE1", "manual")
    await _first_recorded(harness, "CAN-DURABLE1")
    await handle.execute_update(CancellationWorkflow.submit_quote, scenarios.AGENT_QUOTE)
    await handle.execute_update(CancellationWorkflow.decide, PartnerDecision(decision="reject"))
    await scenarios.finish(handle)
    assert await _recorded_after_acceptance(handle) == ["activity", "activity"]
    assert harness.store.statuses("CAN-DURABLE1") == ["awaiting_agent_quote", "awaiting_partner_decision", "rejected"]


async def test_an_accepted_decision_goes_to_the_supplier_first(harness: Harness) -> None:
    """Accepting schedules the supplier's cancel (a normal activity) in the accepting task already."""
    handle = await scenarios.manual(harness.client, harness.task_queue, "CAN-DURABLE2", "accept")
    history = await handle.fetch_history()
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                 if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    assert scheduled == [RECORD_FLOW, "cancel_at_supplier"]
    assert harness.supplier.cancels["CAN-DURABLE2"] == 1
