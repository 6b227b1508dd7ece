"""Drivers of a schedule change arriving at each stage of a manual cancellation
(docs/flows.md#involuntary-cancellations), shared by the tests and the history recorder. The gateway
sends the ``schedule_changed`` signal when a rescheduling of the product starts; here the driver does."""

from __future__ import annotations

import asyncio

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateStage
from temporalio.exceptions import ApplicationError

from domain.cancellation_flow import AgentQuote, PartnerDecision, ScheduleChanged
from domain.money import Money
from tests.waits import eventually
from tests.workflows import scenarios
from tests.workflows.rescheduling_fakes import RESULT_WAIT, ReschedulingHarness
from tests.workflows.scenarios import AGENT_QUOTE, PAID, CancellationHandle
from workflows.cancellation import CancellationWorkflow

CHANGE = ScheduleChanged(rescheduling_code="RS-TEST0001")
ZERO_QUOTE = AgentQuote(penalty=Money.zero("EUR"), refund=PAID, note="airline changed the flight", agent_id="agt_1")


async def involuntary_recorded(h: ReschedulingHarness, code: str, status: str) -> None:
    """Wait until the store holds a transition of ``code`` to ``status`` that shows the flow involuntary."""
    await h.store.wait_for(lambda: any(
        r.code == code and r.status == status and r.info.get("involuntary") for r in h.store.records
    ))


async def signal_handled(handle: CancellationHandle) -> None:
    """Wait until a workflow task completed after the last signal: the flow has heard it. The history is
    read again rather than long-polled: the time-skipping server's long poll does not answer new events."""
    async def heard() -> bool | None:
        events = [e async for e in handle.fetch_history_events()]
        # A signal sent while a workflow task runs is written to the history once that task ends.
        signalled = max((e.event_id for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED),
                        default=None)
        return True if signalled is not None and any(
            e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and e.event_id > signalled for e in events) else None
    await eventually(heard, RESULT_WAIT, f"{handle.id} heard its signal")


async def penalty_refused(handle: CancellationHandle) -> ApplicationError:
    """The agent's quote with a penalty is refused; the refusal."""
    return await scenarios.refused(handle.execute_update(CancellationWorkflow.submit_quote, AGENT_QUOTE))


async def changed_awaiting_quote(h: ReschedulingHarness, code: str) -> CancellationHandle:
    """The change arrives before any agent quoted: the flow shows it is involuntary, a penalty is
    refused, the agent quotes 0 and the partner accepts."""
    handle = await scenarios.start_cancellation(h.client, h.task_queue, code, "manual")
    await h.store.wait_for(lambda: "awaiting_agent_quote" in h.store.statuses(code))
    await handle.signal(CancellationWorkflow.schedule_changed, CHANGE)
    await involuntary_recorded(h, code, "awaiting_agent_quote")
    assert (await penalty_refused(handle)).type == "involuntary_no_penalty"
    await handle.execute_update(CancellationWorkflow.submit_quote, ZERO_QUOTE)
    await handle.execute_update(CancellationWorkflow.decide, PartnerDecision(decision="accept"))
    await scenarios.finish(handle)
    return handle


async def changed_awaiting_decision(h: ReschedulingHarness, code: str) -> CancellationHandle:
    """The change arrives after the agent quoted a penalty: re-quoted at 0 (same deadline), then accepted."""
    handle = await scenarios.start_cancellation(h.client, h.task_queue, code, "manual")
    await handle.execute_update(CancellationWorkflow.submit_quote, AGENT_QUOTE)
    await handle.signal(CancellationWorkflow.schedule_changed, CHANGE)
    await involuntary_recorded(h, code, "awaiting_partner_decision")
    await handle.execute_update(CancellationWorkflow.decide, PartnerDecision(decision="accept"))
    await scenarios.finish(handle)
    return handle


async def changed_after_accept(h: ReschedulingHarness, code: str) -> CancellationHandle:
    """The change arrives after the partner accepted a penalty, while the supplier cancels: nothing is charged."""
    gate = h.supplier.gate = asyncio.Event()
    handle = await scenarios.start_cancellation(h.client, h.task_queue, code, "manual")
    await handle.execute_update(CancellationWorkflow.submit_quote, AGENT_QUOTE)
    accepted = await handle.start_update(CancellationWorkflow.decide, PartnerDecision(decision="accept"),
                                         wait_for_stage=WorkflowUpdateStage.ACCEPTED)
    await handle.signal(CancellationWorkflow.schedule_changed, CHANGE)
    await signal_handled(handle)
    gate.set()
    await asyncio.wait_for(accepted.result(), RESULT_WAIT)
    await scenarios.finish(handle)
    return handle
