"""The disruption fan-out's one activity (docs/rescheduling.md#disruptions): start one batch of a
flight's products' rescheduling flows. ``DisruptionFanOutWorkflow`` calls it by reference; the name it
is registered under is what histories carry, so it never changes."""

from __future__ import annotations

import structlog
from temporalio import activity

from domain.disruptions import FanOutBatch, FanOutPage
from ports.disruptions import DisruptionFanOut

log = structlog.get_logger("disruptions")


class DisruptionActivities:
    def __init__(self, fan_out: DisruptionFanOut) -> None:
        self._fan_out = fan_out

    @activity.defn(name="start_disruption_batch")
    async def start_disruption_batch(self, page: FanOutPage) -> FanOutBatch:
        """Idempotent: a retried batch finds the flows its first attempt started."""
        batch = await self._fan_out.start_batch(activity.client(), page)
        log.info("disruption_batch_started", disruption_id=page.disruption_id, after=page.after_product_id,
                 found=batch.found)
        return batch
