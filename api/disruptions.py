"""Disruptions (docs/rescheduling.md#disruptions): a disruption's progress for its supplier, admins and
agents, and the agents' list of them (``services.disruptions``). A supplier pushes one through
``api.supplier_intake``; agents find its flows with ``GET /v1/agent/flows?disruption_id=``."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.app_keys import DEPS
from api.endpoints import Reply, Resource
from api.page_cursors import cursor_position, next_cursor
from domain.disruptions import Disruption
from domain.rescheduling_flow import ChangeKind
from services import disruptions
from services.requester import Requester

resource = Resource("disruptions")

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class FlightView(BaseModel):
    carrier: str
    flight_number: str = Field(description="as the segments carry it, e.g. \"ZZ101\"")
    departure_date: date


class ByStatus(BaseModel):
    """How many of its flows are in each status."""

    waiting_for_product: int = 0
    awaiting_partner_action: int = 0
    accepted: int = 0
    auto_accepted: int = 0
    obsolete: int = 0
    failed: int = 0


class DisruptionView(BaseModel):
    disruption_id: str
    change_id: str
    flight: FlightView
    kind: ChangeKind
    affected: int = Field(description="the products on the flight (not cancelled) when the push was received")
    started: int = Field(description="the rescheduling flows its fan-out has started so far")
    by_status: ByStatus
    created_at: datetime


class ListedDisruption(BaseModel):
    disruption_id: str
    change_id: str
    supplier_id: str
    flight: FlightView
    kind: ChangeKind
    affected: int
    created_at: datetime


class DisruptionPage(BaseModel):
    items: list[ListedDisruption]
    next: str | None


class DisruptionsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200, description="the `next` of the previous page")


def _flight(disruption: Disruption) -> FlightView:
    flight = disruption.change.flight
    return FlightView(carrier=flight.carrier, flight_number=flight.designator, departure_date=flight.departure_date)


@resource.route("GET", "/v1/supplier/disruptions/{disruption_id}", summary="A disruption's progress: its flows by status",
                roles=("supplier", "admin", "agent"), answers={200: DisruptionView})
async def get_disruption(request: web.Request, requester: Requester) -> Reply:
    found = await disruptions.progress(request.app[DEPS], requester, request.match_info["disruption_id"])
    d = found.disruption
    return Reply(200, DisruptionView(
        disruption_id=d.disruption_id, change_id=d.change.change_id, flight=_flight(d), kind=d.kind, affected=d.affected,
        started=found.started, by_status=ByStatus.model_validate(found.by_status), created_at=d.created_at))


def _position(after: Any) -> tuple[datetime, str]:
    if not (isinstance(after, list) and len(after) == 2 and isinstance(after[0], int) and not isinstance(after[0], bool)
            and isinstance(after[1], str) and 0 <= after[0] < 2**62):
        raise ValueError("not a position this list gave")
    return _EPOCH + timedelta(microseconds=after[0]), after[1]


@resource.route("GET", "/v1/agent/disruptions", summary="Every disruption, newest first",
                roles=("agent", "admin"), query=DisruptionsQuery, answers={200: DisruptionPage})
async def list_disruptions(request: web.Request, requester: Requester, query: DisruptionsQuery) -> Reply:
    who = requester.principal
    scope = {"caller": f"{who.role}:{who.principal_id}"}
    items, end = await disruptions.newest(request.app[DEPS], query.limit, cursor_position(query.cursor, scope, _position))
    listed = [ListedDisruption(disruption_id=d.disruption_id, change_id=d.change.change_id, supplier_id=d.supplier_id,
                               flight=_flight(d), kind=d.kind, affected=d.affected, created_at=d.created_at) for d in items]
    cursor = None if end is None else next_cursor([(end[0] - _EPOCH) // timedelta(microseconds=1), end[1]], scope)
    return Reply(200, DisruptionPage(items=listed, next=cursor))
