"""The outbox dispatcher (docs/triggers.md#delivery): starts the delivery of every stored event that
has none yet, once its partner has a webhook.

A flow starts the delivery of its own events when the partner has a webhook at that moment. The
dispatcher covers the rest: events stored while the partner had no webhook (delivered once it sets
one), events whose delivery found no webhook, and events that other code writes into the outbox.
The worker process sweeps it in the one shape every background sweep has (``services.sweeps``):
a full batch sweeps again at once, a quiet or failed round waits ``SWEEP_EVERY``. Tests call
:meth:`OutboxDispatcher.sweep`.
"""

from __future__ import annotations

from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from config.settings import Settings
from config.telemetry import continued
from store.outbox import Outbox
from workflows.trigger_delivery import TriggerDeliveryInput, TriggerDeliveryWorkflow, trigger_workflow_id

log = structlog.get_logger("worker.outbox_dispatcher")

SWEEP_EVERY = timedelta(seconds=5)
BATCH = 100


class OutboxDispatcher:
    def __init__(self, outbox: Outbox, client: Client, settings: Settings) -> None:
        self._outbox = outbox
        self._client = client
        self._settings = settings

    async def sweep(self) -> int:
        """Start one delivery per undispatched event (a batch, oldest first); how many were started."""
        pending = await self._outbox.undispatched(BATCH)
        for event in pending:
            event_id = event.event_id
            try:
                # In the trace the event was written in: its delivery joins its flow's trace.
                with continued(event.traceparent):
                    await self._client.start_workflow(
                        TriggerDeliveryWorkflow.run,
                        TriggerDeliveryInput(event_id=event_id, retry_for=self._settings.webhook_retry_for),
                        # The id its flow would have given it: a delivery already running is this one.
                        # A finished one (it found no webhook then) may run again: the event is still pending.
                        id=trigger_workflow_id(event_id),
                        task_queue=self._settings.task_queue,
                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                    )
            except WorkflowAlreadyStartedError:
                pass
            await self._outbox.mark_dispatched(event_id)
        if pending:
            log.info("outbox_dispatched", events=len(pending))
        return len(pending)
