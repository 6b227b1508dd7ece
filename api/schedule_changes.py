"""The one entry point for airline schedule changes (API.md §8): whoever receives a supplier's push
(a supplier adapter in production, the sandbox airline's mock) hands it to
:func:`receive_schedule_change`, which starts the product's rescheduling flow.

A push is delivered at least once. Its flow code is derived from the supplier's change id, so a
re-delivery finds the flow it started (running or finished) and starts nothing; the first delivery
wins if a re-delivery carries different content.
"""

from __future__ import annotations

from datetime import datetime, timezone

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from config.settings import Settings
from domain.codes import FlowKind
from domain.flows import FlowRecord
from domain.products import FlightProduct
from domain.rescheduling import ReschedulingInput, ScheduleChange, new_rescheduling
from store.facade import Store
from workflows.rescheduling import ReschedulingWorkflow


class NotAFlightProduct(LookupError):
    """The change names no product we sold, or one that is not a flight: there is nothing to reschedule."""


async def receive_schedule_change(client: Client, settings: Settings, store: Store, change: ScheduleChange) -> str:
    """Index the change's flow and start it; the flow code. Never refused for a busy product: the
    flow waits for the product's other flow to end (``waiting_for_product``)."""
    product = await store.reservations.product(change.product_id)
    flight = product.spec if product is not None else None
    if product is None or not isinstance(flight, FlightProduct):
        raise NotAFlightProduct(change.product_id)
    info = new_rescheduling(change, flight, product.reservation_id, product.partner_id)
    # Indexed before the workflow starts, so the reservation lists the flow as soon as we answer.
    indexed = await store.flows.index(
        FlowRecord(
            code=info.code, kind=FlowKind.RESCHEDULING, product_id=info.product_id,
            reservation_id=info.reservation_id, partner_id=info.partner_id, status=info.status,
            terminal=False, info=info.model_dump(mode="json"), at=datetime.now(timezone.utc),
        )
    )
    try:
        await client.start_workflow(
            ReschedulingWorkflow.run,
            ReschedulingInput(info=info, window=settings.rescheduling_window,
                              webhook_retry_for=settings.webhook_retry_for),
            id=info.code,
            task_queue=settings.task_queue,
            # Running: it is this change's flow already. Finished: the change was handled once.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        pass
    except BaseException:
        # Nothing runs this flow: drop its index row so the push, retried, starts afresh.
        if indexed:
            await store.flows.abandon(info.code)
        raise
    return info.code
