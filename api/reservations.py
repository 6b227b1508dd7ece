"""API.md §4 (sandbox reservations) and §5 (reading a reservation)."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from api.context import STORE
from api.endpoints import Reply, Resource
from api.problems import not_found
from domain.products import ReservationSpec
from store.accounts import Principal

resource = Resource("reservations")
sandbox = Resource("sandbox")


class Reservation(BaseModel):
    """A reservation with its products and every post-sale flow, newest first."""

    model_config = ConfigDict(extra="allow")
    reservation_id: str
    status: str
    created_at: str
    travellers: list[dict[str, Any]]
    products: list[dict[str, Any]]
    flows: list[dict[str, Any]]


async def visible_reservation(request: web.Request, who: Principal, reservation_id: str) -> dict[str, Any]:
    """A partner sees only its own reservations; anything else is 404 so existence does not leak."""
    view = await request.app[STORE].reservations.view(reservation_id)
    if view is None or (who.role == "partner" and view["partner_id"] != who.principal_id):
        raise not_found("reservation")
    view.pop("partner_id")
    return view


@sandbox.route("POST", "/v1/sandbox/reservations", summary="Create a reservation in the sandbox supplier",
               roles=("partner",), body=ReservationSpec, answers={201: Reservation})
async def create_reservation(request: web.Request, who: Principal, body: ReservationSpec) -> Reply:
    reservation_id = await request.app[STORE].reservations.create(who.principal_id, body)
    return Reply(201, await visible_reservation(request, who, reservation_id))


@resource.route("GET", "/v1/reservations/{reservation_id}", summary="Read a reservation (the seeds' transaction)",
                roles=("partner", "agent", "admin"), answers={200: Reservation})
async def get_reservation(request: web.Request, who: Principal) -> Reply:
    return Reply(200, await visible_reservation(request, who, request.match_info["reservation_id"]))
