"""Events (docs/api.md#events, docs/triggers.md): the partner's pull feed of triggers, with each one's
delivery state, and a redelivery on demand."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.app_keys import SETTINGS, STORE, TEMPORAL
from api.endpoints import Reply, Resource
from api.problems import not_found, refused
from domain.refusals import Refusal
from store.accounts import Principal
from workflows.trigger_delivery import TriggerDeliveryInput, TriggerDeliveryWorkflow, trigger_workflow_id

resource = Resource("events")


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: str | None = Field(default=None, max_length=60)
    cursor: str | None = Field(default=None, max_length=60)
    limit: int = Field(default=50, ge=1, le=200)


class EventPage(BaseModel):
    items: list[dict[str, Any]]
    next: str | None


class Redelivery(BaseModel):
    id: str = Field(description="The event's id")
    redelivery: Literal["scheduled"]


@resource.route("GET", "/v1/events", summary="The caller's events, in order (pull fallback of triggers)",
                roles=("partner",), query=EventsQuery, answers={200: EventPage})
async def list_events(request: web.Request, who: Principal, query: EventsQuery) -> Reply:
    after = query.cursor or query.after
    items = await request.app[STORE].events.feed(who.principal_id, after, query.limit + 1)
    page = items[: query.limit]
    return Reply(200, EventPage(items=page, next=page[-1]["id"] if len(items) > query.limit else None))


def _redelivery_id(request: web.Request, who: Principal, event_id: str) -> str:
    """One workflow per redelivery; with an Idempotency-Key the same one for a retry of the same call,
    so a retry whose answer was lost does not deliver a third time."""
    key = request.headers.get("Idempotency-Key")
    suffix = (
        hashlib.sha256(f"{who.principal_id}\n{key}".encode()).hexdigest()[:16] if key else secrets.token_hex(8)
    )
    return f"{trigger_workflow_id(event_id)}-redelivery-{suffix}"


@resource.route("POST", "/v1/events/{event_id}/redeliver", summary="Deliver one of the caller's events once more",
                roles=("partner",), answers={202: Redelivery})
async def redeliver(request: web.Request, who: Principal) -> Reply:
    event_id = request.match_info["event_id"]
    store = request.app[STORE]
    if await store.events.owner(event_id) != who.principal_id:
        raise not_found("event")
    partner = await store.accounts.partner(who.principal_id)
    if partner is None or not partner.webhook_url:
        raise refused(Refusal.NO_WEBHOOK, "set a webhook URL first (PUT /v1/partner/webhook); the event is on the pull feed")
    settings = request.app[SETTINGS]
    try:
        await request.app[TEMPORAL].start_workflow(
            TriggerDeliveryWorkflow.run,
            TriggerDeliveryInput(event_id=event_id, retry_for=settings.webhook_retry_for),
            id=_redelivery_id(request, who, event_id),
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        pass  # this very redelivery ran already: a retry of the same call
    await store.events.redelivering(event_id)
    return Reply(202, Redelivery(id=event_id, redelivery="scheduled"))
