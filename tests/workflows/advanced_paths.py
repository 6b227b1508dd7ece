"""Drivers of each path a deadline advance leads to (docs/flows.md#advancing-a-deadline), on flows
started with the capability: shared by the tests and the history recorder. Each advances through the
workflow's own ``advance_deadline`` update, as the sandbox's endpoint does."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from temporalio.client import WorkflowHandle

from domain.cancellation_flow import CancellationInput
from domain.change_flow import Prebooking
from domain.deadline_advance import AdvancedDeadline, AdvanceRequest
from tests.workflows import change_fakes, rescheduling_fakes, scenarios
from tests.workflows.change_fakes import ChangeHarness
from tests.workflows.rescheduling_fakes import ReschedulingHarness
from workflows.cancellation import CancellationWorkflow
from workflows.change import ChangeWorkflow
from workflows.deadlines import DeadlineWaits
from workflows.rescheduling import ReschedulingWorkflow

ADVANCE = AdvanceRequest(requested_by="partner:ptn_1")
Handle = WorkflowHandle[Any, Any]


async def advance(handle: Handle) -> AdvancedDeadline:
    return await handle.execute_update(DeadlineWaits.advance_deadline, ADVANCE)


def manual_cancellation(code: str, advanceable: bool = True) -> CancellationInput:
    return scenarios.cancellation_input(code, "manual").model_copy(update={"deadlines_advanceable": advanceable})


async def start_manual_cancellation(h: ChangeHarness, code: str, advanceable: bool = True) -> Handle:
    return await h.client.start_workflow(CancellationWorkflow.run, manual_cancellation(code, advanceable), id=code,
                                         task_queue=h.task_queue)


async def agent_window_advanced(h: ChangeHarness, code: str) -> Handle:
    """No agent has quoted; the partner makes the agent's window pass: the flow expires."""
    handle = await start_manual_cancellation(h, code)
    await advance(handle)
    await change_fakes.finish(handle)
    return handle


async def decision_window_advanced(h: ChangeHarness, code: str) -> Handle:
    """The agent quoted; the partner makes its own decision window pass: no response."""
    handle = await start_manual_cancellation(h, code)
    await handle.execute_update(CancellationWorkflow.submit_quote, scenarios.AGENT_QUOTE)
    await advance(handle)
    await change_fakes.finish(handle)
    return handle


async def start_change(h: ChangeHarness, code: str, manual: bool) -> Handle:
    flow_input = change_fakes.change_input(code, "manual" if manual else "automatic", datetime.now(timezone.utc))
    return await h.client.start_workflow(ChangeWorkflow.run, flow_input.model_copy(update={"deadlines_advanceable": True}),
                                         id=code, task_queue=h.task_queue)


async def context_advanced(h: ChangeHarness, code: str) -> Handle:
    """A change context nobody books: its validity passes now, and the change expires."""
    handle = await start_change(h, code, manual=False)
    await advance(handle)
    await change_fakes.finish(handle)
    return handle


async def checkout_advanced(h: ChangeHarness, code: str, prebooked: bool = False) -> Handle:
    """An agent's checkout, pre-booked or not: its validity passes now, and the change expires."""
    handle = await start_change(h, code, manual=True)
    if prebooked:
        await handle.execute_update(ChangeWorkflow.prebook, Prebooking(transaction_id=change_fakes.RESERVATION_ID))
    await advance(handle)
    await change_fakes.finish(handle)
    return handle


async def start_rescheduling(h: ReschedulingHarness, code: str) -> Handle:
    flow_input = rescheduling_fakes.rescheduling_input(code, "time_change")
    return await h.client.start_workflow(ReschedulingWorkflow.run,
                                         flow_input.model_copy(update={"deadlines_advanceable": True}),
                                         id=code, task_queue=h.task_queue)


async def rescheduling_window_advanced(h: ReschedulingHarness, code: str) -> Handle:
    """The partner lets its rescheduling window pass now: the default alternative is applied."""
    handle = await start_rescheduling(h, code)
    await h.store.wait_for_status(code, "awaiting_partner_action")
    await advance(handle)
    await rescheduling_fakes.finish(handle)
    return handle
