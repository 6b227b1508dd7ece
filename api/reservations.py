"""Reservations (docs/api.md#reservations): reading one, with its products and every post-sale flow."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from api.app_keys import DEPS
from api.endpoints import Reply, Resource
from services.requester import Requester
from services.visibility import visible_reservation

resource = Resource("reservations")


class Reservation(BaseModel):
    """A reservation with its products and every post-sale flow, newest first."""

    model_config = ConfigDict(extra="allow")
    reservation_id: str
    status: str
    created_at: str
    travellers: list[dict[str, Any]]
    products: list[dict[str, Any]]
    flows: list[dict[str, Any]]


@resource.route("GET", "/v1/reservations/{reservation_id}", summary="Read a reservation",
                roles=("partner", "agent", "admin"), answers={200: Reservation})
async def get_reservation(request: web.Request, requester: Requester) -> Reply:
    return Reply(200, await visible_reservation(request.app[DEPS], requester.principal, request.match_info["reservation_id"]))
