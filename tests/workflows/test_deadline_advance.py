"""Advancing a deadline (docs/flows.md#advancing-a-deadline) on the time-skipping server: every
deadline a flow waits on passes at once when advanced, and the flow ends where that deadline leads;
an advance is refused when no deadline is pending, when it passed already, and on a flow started
without the capability."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.workflows import advanced_paths, scenarios
from tests.workflows.change_fakes import RESULT_WAIT, ChangeHarness, change_harness, finish
from tests.workflows.rescheduling_fakes import rescheduling_harness
from workflows.cancellation import CancellationWorkflow

CODE = "CAN-ADV00001"


@pytest.fixture
async def h(env: WorkflowEnvironment) -> AsyncIterator[ChangeHarness]:
    async with change_harness(env.client) as harness:
        yield harness


Path = Callable[[ChangeHarness, str], Awaitable[Any]]


@pytest.mark.parametrize(("path", "code", "status", "event", "deadline"), [
    (advanced_paths.agent_window_advanced, "CAN-ADV00002", "expired", "cancellation.expired", "agent_quote_window"),
    (advanced_paths.decision_window_advanced, "CAN-ADV00003", "no_response", "cancellation.no_response", "decision_window"),
    (advanced_paths.context_advanced, "CF-ADV00001", "expired", "change.expired", "change_context_ttl"),
    (advanced_paths.checkout_advanced, "CF-ADV00002", "expired", "change.expired", "checkout_ttl"),
], ids=["agent_quote_window", "decision_window", "change_context_ttl", "checkout_ttl"])
async def test_an_advanced_deadline_ends_the_flow_where_its_time_would(
    h: ChangeHarness, path: Path, code: str, status: str, event: str, deadline: str
) -> None:
    handle = await path(h, code)
    info = await finish(handle)

    assert info.status == status
    assert h.store.event_types(code)[-1] == event
    # Before its time: the deadline the flow showed is still ahead of the moment it ended.
    shown = getattr(info, {"agent_quote_window": "quote_deadline", "decision_window": "decision_deadline"}.get(deadline, "expires_at"))
    assert info.history[-1].at < shown


async def test_a_prebooked_checkout_expires_when_its_validity_is_advanced(h: ChangeHarness) -> None:
    info = await finish(await advanced_paths.checkout_advanced(h, "CF-ADV00003", prebooked=True))

    assert [e.event for e in info.history] == ["checkout_issued", "checkout_prebooked", "expired"]
    assert info.history[-1].at < info.expires_at


async def test_an_advanced_rescheduling_window_applies_the_default(env: WorkflowEnvironment) -> None:
    async with rescheduling_harness(env.client) as r:
        info = await advanced_paths.rescheduling_window_advanced(r, "RS-ADV00001")
        final = await finish(info)

    assert final.status == "auto_accepted"
    assert final.alternative_id == final.default_alternative.alternative_id
    assert r.store.event_types("RS-ADV00001")[-1] == "rescheduling.auto_accepted"
    assert final.decision_deadline is not None and final.history[-1].at < final.decision_deadline


async def test_the_advance_answers_which_deadline_passed(h: ChangeHarness) -> None:
    handle = await advanced_paths.start_manual_cancellation(h, CODE)

    advanced = await advanced_paths.advance(handle)

    info = await finish(handle)
    assert advanced.deadline == "agent_quote_window" and advanced.due_at == info.quote_deadline


async def test_advancing_twice_finds_no_pending_deadline(h: ChangeHarness) -> None:
    h.store.hold_status = "expired"  # the flow stays open, recording where the deadline led
    handle = await advanced_paths.start_manual_cancellation(h, CODE)
    await advanced_paths.advance(handle)
    await asyncio.wait_for(h.store.reached.wait(), RESULT_WAIT)

    assert (await scenarios.refused(advanced_paths.advance(handle))).type == "no_pending_deadline"
    h.store.release.set()
    assert (await finish(handle)).status == "expired"


async def test_a_deadline_is_heard_before_the_move_that_shows_it(h: ChangeHarness) -> None:
    """The decision deadline is known before ``awaiting_partner_decision`` is recorded: an advance sent
    while that move is being recorded (a partner answering the trigger at once) is honoured."""
    h.store.hold_status = "awaiting_partner_decision"
    handle = await advanced_paths.start_manual_cancellation(h, CODE)
    quoting = asyncio.create_task(handle.execute_update(CancellationWorkflow.submit_quote, scenarios.AGENT_QUOTE))
    await asyncio.wait_for(h.store.reached.wait(), RESULT_WAIT)

    advanced = await advanced_paths.advance(handle)

    h.store.release.set()
    await asyncio.wait_for(quoting, RESULT_WAIT)
    assert advanced.deadline == "decision_window"
    assert (await finish(handle)).status == "no_response"


async def test_a_flow_waiting_on_no_deadline_refuses_an_advance(h: ChangeHarness) -> None:
    h.supplier.gate = asyncio.Event()  # an automatic cancellation held at the supplier: it waits on no deadline
    handle = await h.client.start_workflow(
        CancellationWorkflow.run,
        scenarios.cancellation_input(CODE, "automatic").model_copy(update={"deadlines_advanceable": True}),
        id=CODE, task_queue=h.task_queue,
    )

    assert (await scenarios.refused(advanced_paths.advance(handle))).type == "no_pending_deadline"
    h.supplier.gate.set()
    assert (await finish(handle)).status == "cancelled"


async def test_a_flow_started_without_the_capability_refuses_every_advance(h: ChangeHarness) -> None:
    handle = await advanced_paths.start_manual_cancellation(h, CODE, advanceable=False)

    assert (await scenarios.refused(advanced_paths.advance(handle))).type == "deadline_not_advanceable"
    # Its deadline passes only with time (skipped here by the server while the result is awaited).
    info = await finish(handle)
    assert info.status == "expired" and info.quote_deadline is not None and info.history[-1].at >= info.quote_deadline
