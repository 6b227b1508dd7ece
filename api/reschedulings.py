"""API.md §8: a rescheduling's flow info, its alternatives and the partner's choice, and (§4) the
sandbox airline's mock of a schedule change."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.context import SETTINGS, STORE, TEMPORAL
from api.endpoints import Reply, Resource
from api.flows import run_update, visible_flow, visible_product
from api.problems import Problem, not_found
from api.schedule_changes import receive_schedule_change
from domain.products import FlightProduct
from domain.rescheduling import (
    NOT_AWAITING_CHOICE,
    UNKNOWN_ALTERNATIVE,
    Alternative,
    AlternativeChoice,
    ChangeKind,
    ReschedulingInfo,
    ScheduleChange,
    shifted,
)
from store.accounts import Principal
from workflows.rescheduling import ReschedulingWorkflow

resource = Resource("reschedulings")
sandbox = Resource("sandbox")  # registered only when AFTERSALES_ENV=sandbox


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MockScheduleChange(_Body):
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


class AlternativeList(BaseModel):
    items: list[Alternative]
    next: str | None = None  # a rescheduling has a handful of alternatives: always one page


class AcceptBody(_Body):
    alternative_id: str = Field(min_length=1, max_length=40)


class Accepted(BaseModel):
    code: str
    status: str  # accepted; processing when applying it outlasts the sync wait
    alternative_id: str | None


@sandbox.route("POST", "/v1/sandbox/rescheduling/mock", summary="The sandbox airline pushes a schedule change",
               roles=("partner",), body=MockScheduleChange, answers={202: Received})
async def mock_schedule_change(request: web.Request, who: Principal, body: MockScheduleChange) -> Reply:
    product = await visible_product(request, who, body.product_id)
    flight = product.spec
    if not isinstance(flight, FlightProduct):
        raise not_found("flight product")
    proposed = shifted(flight.segments, timedelta(minutes=body.delay_minutes)) if body.kind == "time_change" else []
    change = ScheduleChange(
        # Each mock is a new change, as a real airline's next push would be.
        change_id="sbx_" + secrets.token_hex(10),
        product_id=product.product_id,
        kind=body.kind,
        proposed_segments=proposed,
    )
    # The same entry point a supplier's push takes in production: nothing here is sandbox-only.
    await receive_schedule_change(request.app[TEMPORAL], request.app[SETTINGS], request.app[STORE], change)
    return Reply(202, Received(status="received"))


async def _rescheduling(request: web.Request, who: Principal) -> dict[str, Any]:
    code = request.match_info["code"]
    if not code.startswith("RS-"):
        raise not_found("rescheduling")
    return await visible_flow(request, who, code)


@resource.route("GET", "/v1/reschedulings/{code}", summary="A rescheduling's flow info",
                roles=("partner", "agent"), answers={200: ReschedulingInfo})
async def get_rescheduling(request: web.Request, who: Principal) -> Reply:
    return Reply(200, await _rescheduling(request, who))


@resource.route("GET", "/v1/reschedulings/{code}/alternatives", summary="What the partner may choose",
                roles=("partner", "agent"), answers={200: AlternativeList})
async def get_alternatives(request: web.Request, who: Principal) -> Reply:
    info = await _rescheduling(request, who)
    return Reply(200, {"items": info["alternatives"], "next": None})


@resource.route("POST", "/v1/reschedulings/{code}/accept", summary="Choose an alternative",
                roles=("partner",), body=AcceptBody, answers={200: Accepted, 202: Accepted})
async def accept(request: web.Request, who: Principal, body: AcceptBody) -> Reply:
    info = await _rescheduling(request, who)
    code = info["code"]
    if info["status"] != "awaiting_partner_action":
        # Finished flows answer from the store: the partner's own choice again is the same 200.
        if info["status"] == "accepted" and info["alternative_id"] == body.alternative_id:
            return Reply(200, Accepted(code=code, status="accepted", alternative_id=body.alternative_id))
        raise Problem(409, NOT_AWAITING_CHOICE, f"rescheduling {code} is not awaiting a choice (status {info['status']})")
    if body.alternative_id not in {a["alternative_id"] for a in info["alternatives"]}:
        raise Problem(422, UNKNOWN_ALTERNATIVE, f"rescheduling {code} has no alternative {body.alternative_id!r}",
                      errors=[{"field": "alternative_id", "message": "not one of this rescheduling's alternatives"}])
    handle = request.app[TEMPORAL].get_workflow_handle(code)
    update = run_update(handle, ReschedulingWorkflow.accept, AlternativeChoice(alternative_id=body.alternative_id))
    try:
        # Shielded: giving up waiting must not cancel the update, which the flow goes on applying.
        done: ReschedulingInfo = await asyncio.wait_for(
            asyncio.shield(update), request.app[SETTINGS].sync_wait.total_seconds()
        )
    except asyncio.TimeoutError:
        return Reply(202, Accepted(code=code, status="processing", alternative_id=body.alternative_id))
    return Reply(200, Accepted(code=done.code, status=done.status, alternative_id=done.alternative_id))
