"""Events (docs/api.md#events, docs/triggers.md): the partner's pull feed of triggers, with each one's delivery state."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.context import STORE
from api.endpoints import Reply, Resource
from store.accounts import Principal

resource = Resource("events")


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: str | None = Field(default=None, max_length=60)
    cursor: str | None = Field(default=None, max_length=60)
    limit: int = Field(default=50, ge=1, le=200)


class EventPage(BaseModel):
    items: list[dict[str, Any]]
    next: str | None


@resource.route("GET", "/v1/events", summary="The caller's events, in order (pull fallback of triggers)",
                roles=("partner",), query=EventsQuery, answers={200: EventPage})
async def list_events(request: web.Request, who: Principal, query: EventsQuery) -> Reply:
    after = query.cursor or query.after
    items = await request.app[STORE].events.feed(who.principal_id, after, query.limit + 1)
    page = items[: query.limit]
    return Reply(200, EventPage(items=page, next=page[-1]["id"] if len(items) > query.limit else None))
