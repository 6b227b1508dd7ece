"""A schedule change arriving at each stage of a manual cancellation (docs/flows.md#involuntary-cancellations),
on the time-skipping server over in-memory ports: the traveller never pays a penalty for the airline's decision."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from domain.money import Money
from tests.workflows import involuntary_paths, scenarios
from tests.workflows.involuntary_paths import CHANGE
from tests.workflows.rescheduling_fakes import ReschedulingHarness, rescheduling_harness
from tests.workflows.scenarios import PAID
from workflows.cancellation import CancellationWorkflow

CODE = "CAN-INVOL001"
ZERO = Money.zero("EUR")


@pytest.fixture
async def h(env: WorkflowEnvironment) -> AsyncIterator[ReschedulingHarness]:
    async with rescheduling_harness(env.client) as harness:
        yield harness


def infos(h: ReschedulingHarness) -> list[dict[str, object]]:
    return [r.info for r in h.store.records if r.code == CODE]


async def test_change_awaiting_quote_allows_only_penalty_zero(h: ReschedulingHarness) -> None:
    handle = await involuntary_paths.changed_awaiting_quote(h, CODE)

    final = await scenarios.finish(handle)
    assert final.status == "cancelled"
    assert (final.penalty, final.refund, final.involuntary) == (ZERO, PAID, True)
    assert final.waiver is not None and final.waiver.code == "SCHEDULE_CHANGE"
    assert h.store.statuses(CODE) == ["awaiting_agent_quote", "awaiting_agent_quote", "awaiting_partner_decision",
                                      "cancelled"]
    assert h.store.event_types(CODE) == [None, None, "cancellation.quoted", "cancellation.completed"]
    # The quote deadline the agents' queue shows did not move.
    assert infos(h)[0]["quote_deadline"] == infos(h)[1]["quote_deadline"]


async def test_change_awaiting_decision_requotes_at_zero_with_the_same_deadline(h: ReschedulingHarness) -> None:
    handle = await involuntary_paths.changed_awaiting_decision(h, CODE)

    final = await scenarios.finish(handle)
    assert final.status == "cancelled"
    assert (final.penalty, final.refund, final.involuntary) == (ZERO, PAID, True)
    assert final.waiver is not None and final.waiver.penalty_waived == Money.of("40", "EUR")
    assert h.store.event_types(CODE) == [None, "cancellation.quoted", "cancellation.quoted", "cancellation.completed"]
    first, second = (i for i in infos(h) if i["status"] == "awaiting_partner_decision")
    assert first["penalty"] == {"amount": "40.00", "currency": "EUR"} and first["involuntary"] is False
    assert second["penalty"] == {"amount": "0.00", "currency": "EUR"} and second["involuntary"] is True
    assert first["decision_deadline"] == second["decision_deadline"]


async def test_change_after_accept_charges_nothing(h: ReschedulingHarness) -> None:
    handle = await involuntary_paths.changed_after_accept(h, CODE)

    final = await scenarios.finish(handle)
    assert final.status == "cancelled"
    assert (final.penalty, final.refund, final.involuntary) == (ZERO, PAID, True)
    assert h.supplier.cancels == {CODE: 1}
    assert h.store.event_types(CODE) == [None, "cancellation.quoted", "cancellation.completed"]


async def test_change_without_decision_still_ends_no_response_at_the_deadline(h: ReschedulingHarness) -> None:
    handle = await scenarios.start_cancellation(h.client, h.task_queue, CODE, "manual")
    await handle.execute_update(CancellationWorkflow.submit_quote, scenarios.AGENT_QUOTE)
    await handle.signal(CancellationWorkflow.schedule_changed, CHANGE)
    await involuntary_paths.involuntary_recorded(h, CODE, "awaiting_partner_decision")

    final = await scenarios.finish(handle)
    assert final.status == "no_response"
    quoted_at = next(e.at for e in final.history if e.event == "awaiting_partner_decision")
    assert final.history[-1].at - quoted_at >= timedelta(hours=72)
    assert h.supplier.cancels == {}


async def test_change_while_an_automatic_cancellation_is_processing_charges_nothing(h: ReschedulingHarness) -> None:
    gate = h.supplier.gate = asyncio.Event()
    handle = await scenarios.start_cancellation(h.client, h.task_queue, CODE, "automatic")
    await handle.signal(CancellationWorkflow.schedule_changed, CHANGE)
    await involuntary_paths.signal_handled(handle)
    gate.set()

    final = await scenarios.finish(handle)
    assert (final.status, final.penalty, final.refund, final.involuntary) == ("cancelled", ZERO, PAID, True)
    assert final.waiver is not None and final.waiver.penalty_waived == Money.of("120", "EUR")
