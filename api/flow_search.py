"""Finding flows (docs/api.md#finding-flows): the agents' search over every partner's flows, a partner's
list of its own flows, and the partners an agent's list can be narrowed to (``services.flow_search``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.app_keys import DEPS
from api.endpoints import Reply, Resource
from api.page_cursors import cursor_position, next_cursor
from domain.cancellation_flow import CancellationStatus
from domain.change_flow import ChangeStatus
from domain.codes import FlowKind
from domain.flow_info import is_terminal
from domain.input_bounds import Instant
from domain.rescheduling_flow import ReschedulingStatus
from domain.special_request_flow import SpecialRequestStatus
from services import flow_search
from services.requester import Requester
from store.accounts import Principal
from store.flow_search import FlowFilter, ListedFlow, ListPosition, query_words

resource = Resource("flows")

FlowStatus = Literal[CancellationStatus, ChangeStatus, ReschedulingStatus, SpecialRequestStatus]
ID = Field(default=None, min_length=1, max_length=40)


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: FlowKind | None = None
    status: FlowStatus | None = None
    reservation_id: str | None = ID
    product_id: str | None = ID
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200, description="the `next` of the previous page")

    def scope(self, who: Principal) -> dict[str, Any]:
        """What a cursor is bound to: the filters and the caller."""
        return {**self.model_dump(mode="json", exclude={"limit", "cursor"}), "caller": f"{who.role}:{who.principal_id}"}

    def position(self, who: Principal) -> ListPosition | None:
        return cursor_position(self.cursor, self.scope(who), ListPosition.from_json)


class AgentFlowsQuery(_Query):
    q: str | None = Field(default=None, max_length=200, description=(
        "words that must each begin a word of the flow's code, reservation id, product id, partner name or a "
        "traveller's name; case and accents do not matter"))
    partner_id: str | None = ID
    deadline_before: Instant | None = Field(default=None, description="only flows waiting for someone until before this")
    disruption_id: str | None = Field(default=None, pattern=r"^dsr_[a-z2-7]{20}$",
                                      description="only the flows a disruption started (docs/rescheduling.md#disruptions)")

    @field_validator("q")
    @classmethod
    def _few_words(cls, value: str | None) -> str | None:
        if value is not None:
            query_words(value)
        return value


class PartnerFlowsQuery(_Query):
    pass


class ListedFlowView(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    code: str
    kind: FlowKind
    status: str
    partner_id: str
    partner_name: str | None
    reservation_id: str
    product_id: str
    product_kind: str | None
    travellers: list[str] = Field(description="the names of the reservation's travellers")
    deadline: datetime | None = Field(description="until when the flow waits for someone (an agent's quote, a partner's decision)")
    created_at: datetime
    updated_at: datetime
    finished: bool = Field(description="the flow has reached a terminal status and will not move again")


class FlowPage(BaseModel):
    items: list[ListedFlowView]
    next: str | None


class PartnersQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=200, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200)


class PartnerName(BaseModel):
    partner_id: str
    name: str


class PartnerPage(BaseModel):
    items: list[PartnerName]
    next: str | None


def _page(items: list[ListedFlow], end: ListPosition | None, scope: dict[str, Any]) -> Reply:
    views = [ListedFlowView.model_validate({**item.__dict__, "finished": is_terminal(item.status)}) for item in items]
    return Reply(200, FlowPage(items=views, next=None if end is None else next_cursor(end.to_json(), scope)))


@resource.route("GET", "/v1/agent/flows", summary="Find flows of every partner: nearest deadline first, then newest",
                roles=("agent", "admin"), query=AgentFlowsQuery, answers={200: FlowPage})
async def find_flows(request: web.Request, requester: Requester, query: AgentFlowsQuery) -> Reply:
    where = FlowFilter(
        words=query_words(query.q or ""), kind=query.kind, status=query.status, partner_id=query.partner_id,
        reservation_id=query.reservation_id, product_id=query.product_id, deadline_before=query.deadline_before,
        disruption_id=query.disruption_id,
    )
    who = requester.principal
    items, end = await flow_search.agents_page(request.app[DEPS], requester, where, query.limit, query.position(who))
    return _page(items, end, query.scope(who))


@resource.route("GET", "/v1/flows", summary="The caller's own flows, newest first",
                roles=("partner",), query=PartnerFlowsQuery, answers={200: FlowPage})
async def list_flows(request: web.Request, requester: Requester, query: PartnerFlowsQuery) -> Reply:
    where = FlowFilter(kind=query.kind, status=query.status, reservation_id=query.reservation_id,
                       product_id=query.product_id)
    who = requester.principal
    items, end = await flow_search.partners_page(request.app[DEPS], requester, where, query.limit, query.position(who))
    return _page(items, end, query.scope(who))


def _partner_position(after: Any) -> tuple[str, str]:
    if not (isinstance(after, list) and len(after) == 2 and all(isinstance(part, str) for part in after)):
        raise ValueError("not a position this list gave")
    return after[0], after[1]


@resource.route("GET", "/v1/agent/partners", summary="Every partner's id and name, by name: what a list of flows is narrowed to",
                roles=("agent", "admin"), query=PartnersQuery, answers={200: PartnerPage})
async def list_partners(request: web.Request, requester: Requester, query: PartnersQuery) -> Reply:
    who = requester.principal
    scope = {"caller": f"{who.role}:{who.principal_id}"}
    after = cursor_position(query.cursor, scope, _partner_position)
    names, end = await flow_search.partner_names(request.app[DEPS], requester, query.limit, after)
    return Reply(200, PartnerPage(items=[PartnerName(partner_id=pid, name=name) for pid, name in names],
                                  next=None if end is None else next_cursor(list(end), scope)))
