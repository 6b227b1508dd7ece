"""A partner's events (docs/triggers.md): its pull feed, and one event delivered once more."""

from __future__ import annotations

from typing import Any

from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from domain.codes import REDELIVERY_SUFFIX
from domain.refusals import Refusal, Refused
from services.bootstrap import Deps
from services.requester import Requester
from services.visibility import own_event
from workflows.trigger_delivery import TriggerDeliveryInput, TriggerDeliveryWorkflow, trigger_workflow_id


async def feed(deps: Deps, requester: Requester, after: str | None, limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` of the caller's events after the event ``after``, in order."""
    return await deps.store.events.feed(requester.principal.principal_id, after, limit)


async def redeliver(deps: Deps, requester: Requester, event_id: str) -> None:
    """Deliver one of the caller's events once more, to the webhook it has now."""
    await own_event(deps, requester.principal, event_id)
    partner = await deps.store.accounts.partner(requester.principal.principal_id)
    if partner is None or not partner.webhook_url:
        raise Refused(Refusal.NO_WEBHOOK, "set a webhook URL first (PUT /v1/partner/webhook); the event is on the pull feed")
    settings = deps.settings
    try:
        await deps.temporal.start_workflow(
            TriggerDeliveryWorkflow.run,
            TriggerDeliveryInput(event_id=event_id, retry_for=settings.webhook_retry_for),
            # One workflow per redelivery, drawn from the request's ids: with an Idempotency-Key the
            # same one for a retry of the same call, so a retry whose answer was lost does not deliver a third time.
            id=f"{trigger_workflow_id(event_id)}-redelivery-{requester.new_id(REDELIVERY_SUFFIX)}",
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        pass  # this very redelivery ran already: a retry of the same call
    await deps.store.events.redelivering(event_id)
