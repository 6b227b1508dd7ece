"""The disruption fan-out (workflows.disruption) on the time-skipping server, over an in-memory port: it
goes through every product of the flight once, in product order, a batch at a time, and continues as new
with its position once its history would grow long."""

from __future__ import annotations

import asyncio

from domain.disruptions import BATCHES_PER_RUN, FAN_OUT_BATCH, FanOutInput
from tests.workflows.conftest import Harness
from workflows.disruption import DisruptionFanOutWorkflow

RESULT_S = 60


async def fan_out(h: Harness, disruption_id: str) -> int:
    handle = await h.client.start_workflow(DisruptionFanOutWorkflow.run, FanOutInput(disruption_id=disruption_id),
                                           id=disruption_id, task_queue=h.task_queue)
    return await asyncio.wait_for(handle.result(), RESULT_S)


async def test_every_product_of_the_flight_once_in_batches(harness: Harness) -> None:
    harness.store.flight_products = 2 * FAN_OUT_BATCH + 7
    assert await fan_out(harness, "dsr_aaaaaaaaaaaaaaaaaaaa") == 2 * FAN_OUT_BATCH + 7
    assert harness.store.fanned_out == [f"PRD-{i:010d}" for i in range(2 * FAN_OUT_BATCH + 7)]


async def test_a_flight_without_products_starts_nothing(harness: Harness) -> None:
    assert await fan_out(harness, "dsr_bbbbbbbbbbbbbbbbbbbb") == 0
    assert harness.store.fanned_out == []


async def test_a_large_flight_continues_as_new_where_it_was(harness: Harness) -> None:
    harness.store.flight_products = BATCHES_PER_RUN * FAN_OUT_BATCH + 1
    assert await fan_out(harness, "dsr_cccccccccccccccccccc") == BATCHES_PER_RUN * FAN_OUT_BATCH + 1
    assert len(harness.store.fanned_out) == len(set(harness.store.fanned_out)) == BATCHES_PER_RUN * FAN_OUT_BATCH + 1
    # The run that finished was continued from the one that went through the first batches.
    last = [e async for e in harness.client.get_workflow_handle("dsr_cccccccccccccccccccc").fetch_history_events()]
    assert last[0].workflow_execution_started_event_attributes.continued_execution_run_id
