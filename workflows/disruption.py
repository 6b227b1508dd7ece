"""A disruption's fan-out (docs/rescheduling.md#disruptions). One workflow per disruption, workflow id = the
disruption id (so a repeated push, or the gateway's reconciler, cannot start two), started by the intake
once the disruption is recorded. It pages through the flight's products in product id order, a batch at a
time, and the batch's activity starts each product's rescheduling flow as a one-product push would.

Exactly once: the activity's flows are named by (product, change id), so a batch retried after a worker
died in the middle starts only the flows its first attempt did not; the workflow records where it is
(the last product of each finished batch), so a restart resumes from there. After
:data:`~domain.disruptions.BATCHES_PER_RUN` batches it continues as new with that position: its history
stays small however many products the flight has.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

from domain.disruptions import BATCHES_PER_RUN, FAN_OUT_BATCH, FanOutInput, FanOutPage

# Referenced, never called here: the sandbox takes the activity module (and what it imports) from outside.
with workflow.unsafe.imports_passed_through():
    from activities.disruptions import DisruptionActivities

# A batch starts up to FAN_OUT_BATCH flows (a database write and a start each): a minute is ample, and a
# worker dying mid-batch delays the fan-out by that much. It retries for as long as it takes (Temporal
# or the database away): every product gets its flow.
BATCH_TIMEOUT = timedelta(minutes=1)
BATCH_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))


@workflow.defn(name="DisruptionFanOutWorkflow")
class DisruptionFanOutWorkflow:
    @workflow.run
    async def run(self, input: FanOutInput) -> int:
        """How many products it started flows for (over every run)."""
        after, started = input.after_product_id, input.started
        for _ in range(BATCHES_PER_RUN):
            batch = await workflow.execute_activity_method(
                DisruptionActivities.start_disruption_batch,
                FanOutPage(disruption_id=input.disruption_id, after_product_id=after, limit=FAN_OUT_BATCH),
                start_to_close_timeout=BATCH_TIMEOUT, retry_policy=BATCH_RETRY, summary="start a batch of flows",
            )
            started += batch.found
            if batch.found < FAN_OUT_BATCH or batch.last_product_id is None:
                return started
            after = batch.last_product_id
        workflow.continue_as_new(FanOutInput(disruption_id=input.disruption_id, after_product_id=after, started=started))
