"""The outbox dispatcher (docs/triggers.md#delivery): starts the delivery of every stored event that
has none yet, once its partner has a webhook.

A flow starts the delivery of its own events when the partner has a webhook at that moment. The
dispatcher covers the rest: events stored while the partner had no webhook (delivered once it sets
one), events whose delivery found no webhook, and events that other code writes into the outbox.
It runs as a background task of the worker process; tests call :meth:`OutboxDispatcher.sweep`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from config.settings import Settings
from store.outbox import Outbox
from workflows.trigger_delivery import TriggerDeliveryInput, TriggerDeliveryWorkflow, trigger_workflow_id

log = structlog.get_logger("worker.outbox_dispatcher")

SWEEP_EVERY = timedelta(seconds=5)
BATCH = 100


class OutboxDispatcher:
    def __init__(self, outbox: Outbox, client: Client, settings: Settings, batch: int = BATCH) -> None:
        self._outbox = outbox
        self._client = client
        self._settings = settings
        self._batch = batch

    async def sweep(self) -> int:
        """Start one delivery per undispatched event (a batch, oldest first); how many were started."""
        event_ids = await self._outbox.undispatched(self._batch)
        for event_id in event_ids:
            try:
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
        if event_ids:
            log.info("outbox_dispatched", events=len(event_ids))
        return len(event_ids)

    async def run(self, stop: asyncio.Event, every: timedelta = SWEEP_EVERY) -> None:
        """Sweep until ``stop`` is set; a full batch sweeps again at once, a failure waits for the next turn."""
        while not stop.is_set():
            started = 0
            try:
                started = await self.sweep()
            except Exception as exc:  # the database or Temporal is away: the next sweep tries again
                log.warning("outbox_sweep_failed", error=type(exc).__name__, detail=str(exc)[:200])
            if started >= self._batch:
                continue
            try:
                await asyncio.wait_for(stop.wait(), every.total_seconds())
            except TimeoutError:
                pass
