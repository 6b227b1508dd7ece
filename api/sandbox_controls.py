"""The sandbox's own endpoints (docs/api.md#sandbox), registered only when ``AFTERSALES_ENV=sandbox``:
reservations created in the embedded supplier, and the sandbox airline's schedule-change mock."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.access import visible_product, visible_reservation
from api.app_keys import STORE
from api.endpoints import Reply, Resource
from api.flow_start import starter
from api.problems import not_found
from api.request_ids import request_ids, token
from api.reservations import Reservation
from api.supplier_intake import receive_schedule_change
from domain.codes import SANDBOX_CHANGE_ID
from domain.products import FlightProduct, ReservationSpec
from domain.rescheduling_flow import ChangeKind, ScheduleChange, shifted
from store.accounts import Principal

resource = Resource("sandbox")


class MockScheduleChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_id: str = Field(min_length=1, max_length=40)
    kind: ChangeKind
    delay_minutes: int = Field(
        default=90, ge=-1440, le=2880, strict=True,
        description="how much later the flight now leaves (time_change only; negative: earlier)",
    )

    @model_validator(mode="after")
    def _a_time_change_moves_the_flight(self) -> MockScheduleChange:
        if self.kind == "time_change" and self.delay_minutes == 0:
            raise ValueError("delay_minutes must not be 0 for a time_change")
        return self


class Received(BaseModel):
    status: Literal["received"]


@resource.route("POST", "/v1/sandbox/reservations", summary="Create a reservation in the sandbox supplier",
                roles=("partner",), body=ReservationSpec, answers={201: Reservation})
async def create_reservation(request: web.Request, who: Principal, body: ReservationSpec) -> Reply:
    reservation_id = await request.app[STORE].reservations.create(who.principal_id, body, request_ids(request))
    return Reply(201, await visible_reservation(request, who, reservation_id))


@resource.route("POST", "/v1/sandbox/rescheduling/mock", summary="The sandbox airline pushes a schedule change",
                roles=("partner",), body=MockScheduleChange, answers={202: Received})
async def mock_schedule_change(request: web.Request, who: Principal, body: MockScheduleChange) -> Reply:
    product = await visible_product(request, who, body.product_id)
    flight = product.spec
    if not isinstance(flight, FlightProduct):
        raise not_found("flight product")
    proposed = shifted(flight.segments, timedelta(minutes=body.delay_minutes)) if body.kind == "time_change" else []
    change = ScheduleChange(
        # Each mock is a new change, as a real airline's next push would be.
        change_id=token(request, SANDBOX_CHANGE_ID),
        product_id=product.product_id,
        kind=body.kind,
        proposed_segments=proposed,
    )
    # The same entry point a supplier's push takes in production.
    await receive_schedule_change(starter(request), request.app[STORE], change)
    return Reply(202, Received(status="received"))
