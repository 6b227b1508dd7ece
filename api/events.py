"""Events (docs/api.md#events, docs/triggers.md): the partner's pull feed of triggers, with each one's
delivery state, and a redelivery on demand (``services.events``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Union

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.app_keys import DEPS
from api.endpoints import Reply, Resource
from domain.event_catalogue import CATALOGUE, Event, event_model
from services import events
from services.requester import Requester

resource = Resource("events")


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: str | None = Field(default=None, max_length=60)
    cursor: str | None = Field(default=None, max_length=60)
    limit: int = Field(default=50, ge=1, le=200)


class Delivery(BaseModel):
    status: Literal["pending", "delivered", "failed"]
    attempts: int = Field(ge=0, description="delivery attempts, those refused before a request was made included")


class FeedEvent(Event):
    """An event as the pull feed answers it: the event, and how its delivery stands."""

    delivery: Delivery


# One model per event type (domain.event_catalogue), told apart by ``type``; made at import, so to the
# type checker just a feed event.
if TYPE_CHECKING:
    FeedItem = FeedEvent
else:
    FeedItem = Annotated[Union[tuple(event_model(entry, FeedEvent, "FeedItem") for entry in CATALOGUE)],  # noqa: UP007
                         Field(discriminator="type")]


class EventPage(BaseModel):
    items: list[FeedItem]
    next: str | None


class Redelivery(BaseModel):
    id: str = Field(description="The event's id")
    redelivery: Literal["scheduled", "in_progress"] = Field(
        description="scheduled: a redelivery was started; in_progress: one was queued or in flight already, and "
                    "this call added no attempt")
    delivery: Delivery = Field(description="how the event's delivery stands now")


@resource.route("GET", "/v1/events", summary="The caller's events, in order (pull fallback of triggers)",
                roles=("partner",), query=EventsQuery, answers={200: EventPage})
async def list_events(request: web.Request, requester: Requester, query: EventsQuery) -> Reply:
    items = await events.feed(request.app[DEPS], requester, query.cursor or query.after, query.limit + 1)
    page = items[: query.limit]
    # As stored (the outbox keeps each event's body as it was sent): EventPage documents the shape.
    return Reply(200, {"items": page, "next": page[-1]["id"] if len(items) > query.limit else None})


@resource.route("POST", "/v1/events/{event_id}/redeliver", summary="Deliver one of the caller's events once more",
                roles=("partner",), answers={202: Redelivery})
async def redeliver(request: web.Request, requester: Requester) -> Reply:
    event_id = request.match_info["event_id"]
    done = await events.redeliver(request.app[DEPS], requester, event_id)
    delivery = Delivery.model_validate({"status": done.status, "attempts": done.attempts})
    return Reply(202, Redelivery(id=event_id, redelivery=done.outcome, delivery=delivery))
