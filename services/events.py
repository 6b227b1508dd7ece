"""A partner's events (docs/triggers.md): its pull feed, and one event delivered once more."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.refusals import Refusal, Refused
from services.bootstrap import Deps
from services.requester import Requester
from services.visibility import own_event
from workflows.trigger_delivery import TriggerDeliveryInput, TriggerDeliveryWorkflow, redelivery_workflow_id


async def feed(deps: Deps, requester: Requester, after: str | None, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` of the caller's events after the event ``after``, in order."""
    return await deps.store.events.feed(requester.principal.principal_id, after, limit)


@dataclass(frozen=True)
class Redelivery:
    """What a redeliver call did: started one (``scheduled``), or found one queued or in flight and
    added nothing (``in_progress``); and how the event's delivery stands now."""

    outcome: Literal["scheduled", "in_progress"]
    status: str
    attempts: int


async def redeliver(deps: Deps, requester: Requester, event_id: str) -> Redelivery:
    """Deliver one of the caller's events once more, to the webhook it has now; while a redelivery of
    it is queued or in flight, join that one (docs/triggers.md#delivery): a flood of calls is one delivery."""
    await own_event(deps, requester.principal, event_id)
    partner = await deps.store.accounts.partner(requester.principal.principal_id)
    if partner is None or not partner.webhook_url:
        raise Refused(Refusal.NO_WEBHOOK, "set a webhook URL first (PUT /v1/partner/webhook); the event is on the pull feed")
    settings = deps.settings
    outcome: Literal["scheduled", "in_progress"] = "scheduled"
    try:
        await deps.temporal.start_workflow(
            TriggerDeliveryWorkflow.run,
            TriggerDeliveryInput(event_id=event_id, retry_for=settings.webhook_retry_for),
            # One redelivery of an event at a time: the id refuses a second while the first runs (FAIL),
            # and takes a new run once it has ended (ALLOW_DUPLICATE). A retried call with the same
            # Idempotency-Key gets its first answer from the gateway and never reaches here.
            id=redelivery_workflow_id(event_id),
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.FAIL,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        outcome = "in_progress"
    else:
        await deps.store.events.redelivering(event_id)
    status, attempts = await deps.store.events.delivery_state(event_id)
    return Redelivery(outcome, status, attempts)
