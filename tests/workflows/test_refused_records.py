"""A record the store refuses for good (docs/operations.md#a-refused-record) parks the flow, visibly,
until an operator's ``retry_record``: nothing is acted twice at the supplier, and the event is stored
and sent once. On the time-skipping server, over in-memory ports that refuse at the recording port."""

from __future__ import annotations

import asyncio

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.cancellation_flow import CancellationInfo
from tests.workflows.conftest import Harness
from tests.workflows.scenarios import (
    AGENT_QUOTE,
    RESULT_WAIT,
    finish,
    parked,
    retry_record,
    start_cancellation,
)
from workflows.cancellation import CancellationWorkflow
from workflows.trigger_delivery import trigger_workflow_id

CODE = "CAN-PARK0001"


async def test_a_refused_record_parks_the_flow_until_an_operator_retries(harness: Harness) -> None:
    harness.store.refuse["cancelled"] = 1
    handle = await start_cancellation(harness.client, harness.task_queue, CODE, "automatic")

    refused = await parked(handle)
    assert (refused.status, refused.event_type, refused.retries) == ("cancelled", "cancellation.completed", 0)
    assert "numeric field overflow" in refused.reason
    # Parked, not failed nor finished: the supplier cancelled once, the store holds only "processing".
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
    assert harness.supplier.cancels == {CODE: 1}
    assert harness.store.statuses(CODE) == ["processing"]
    assert harness.store.events == {}
    info: CancellationInfo = await handle.query(CancellationWorkflow.info)
    assert info.status == "processing"

    retried = await retry_record(handle)

    assert (retried.code, retried.status, retried.outcome, retried.reason) == (CODE, "cancelled", "recorded", None)
    final = await finish(handle)
    assert final.status == "cancelled"
    assert harness.supplier.cancels == {CODE: 1}
    assert harness.store.statuses(CODE) == ["processing", "cancelled"]
    # The retried record is the refused one, event id and all: one event, one delivery.
    [refusal] = harness.store.refusals
    assert harness.store.records[-1] == refusal
    assert list(harness.store.events) == [refusal.event_id]
    assert refusal.event_id is not None
    trigger = harness.client.get_workflow_handle(trigger_workflow_id(refusal.event_id))
    assert await asyncio.wait_for(trigger.result(), RESULT_WAIT) == "no_webhook"
    assert await handle.query(CancellationWorkflow.refused_record) is None


async def test_a_retry_refused_again_stays_parked(harness: Harness) -> None:
    harness.store.refuse["cancelled"] = 2
    handle = await start_cancellation(harness.client, harness.task_queue, CODE, "automatic")
    await parked(handle)

    again = await retry_record(handle)

    assert (again.outcome, again.status) == ("refused", "cancelled")
    assert again.reason is not None and "numeric field overflow" in again.reason
    refused = await parked(handle)
    assert refused.retries == 1
    assert harness.store.statuses(CODE) == ["processing"]

    assert (await retry_record(handle)).outcome == "recorded"
    assert (await finish(handle)).status == "cancelled"
    assert harness.supplier.cancels == {CODE: 1}
    assert len(harness.store.events) == 1


async def test_a_move_after_an_update_parks_too(harness: Harness) -> None:
    """A transition an update causes is recorded by a normal activity: its refusal parks the flow the same way."""
    harness.store.refuse["awaiting_partner_decision"] = 1
    handle = await start_cancellation(harness.client, harness.task_queue, CODE, "manual")
    quoted = asyncio.create_task(handle.execute_update(CancellationWorkflow.submit_quote, AGENT_QUOTE))

    refused = await parked(handle)
    assert (refused.status, refused.event_type) == ("awaiting_partner_decision", "cancellation.quoted")
    assert not quoted.done()  # the agent's update answers once the move is recorded

    assert (await retry_record(handle)).outcome == "recorded"
    info = await asyncio.wait_for(quoted, RESULT_WAIT)
    assert info.status == "awaiting_partner_decision"
    assert harness.store.statuses(CODE) == ["awaiting_agent_quote", "awaiting_partner_decision"]


async def test_a_flow_not_parked_refuses_a_retry(harness: Harness) -> None:
    handle = await start_cancellation(harness.client, harness.task_queue, CODE, "manual")

    with pytest.raises(WorkflowUpdateFailedError) as error:
        await retry_record(handle)

    cause = error.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "no_refused_record"
    await handle.execute_update(CancellationWorkflow.submit_quote, AGENT_QUOTE)
    assert (await handle.query(CancellationWorkflow.info)).status == "awaiting_partner_decision"
    await handle.terminate("test over")
