"""Delivery of one trigger (docs/triggers.md), retried with exponential backoff for the retry window.

One workflow per event, started by the flow that emitted it and abandoned by it, so a
partner's broken webhook never holds a flow back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.webhooks import TriggerActivities

MAX_RETRY_INTERVAL = timedelta(hours=1)
ATTEMPT_TIMEOUT = timedelta(seconds=30)  # the POST itself times out at 10 s; this leaves room for the outbox

DeliveryResult = Literal["delivered", "no_webhook", "failed"]


class TriggerDeliveryInput(BaseModel):
    event_id: str
    retry_for: timedelta
    initial_interval: timedelta = timedelta(seconds=1)


def trigger_workflow_id(event_id: str) -> str:
    return f"trigger-{event_id}"


def redelivery_workflow_id(event_id: str) -> str:
    """The one redelivery of an event a partner may have running at a time (services.events.redeliver)."""
    return f"{trigger_workflow_id(event_id)}-redelivery"


@workflow.defn(name="TriggerDeliveryWorkflow")
class TriggerDeliveryWorkflow:
    @workflow.run
    async def run(self, input: TriggerDeliveryInput) -> DeliveryResult:
        retry_policy = RetryPolicy(
            initial_interval=input.initial_interval,
            backoff_coefficient=2.0,
            maximum_interval=max(input.initial_interval, min(MAX_RETRY_INTERVAL, input.retry_for)),
        )
        try:
            outcome = await workflow.execute_activity_method(
                TriggerActivities.deliver_event,
                input.event_id,
                start_to_close_timeout=ATTEMPT_TIMEOUT,
                schedule_to_close_timeout=input.retry_for,
                retry_policy=retry_policy,
            )
        except ActivityError:
            # The retry window is over: the event stays available on the pull feed, marked failed.
            await workflow.execute_activity_method(
                TriggerActivities.mark_failed,
                input.event_id,
                start_to_close_timeout=ATTEMPT_TIMEOUT,
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1)),
            )
            return "failed"
        return outcome
