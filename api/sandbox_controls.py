"""The sandbox's own endpoints (docs/api.md#sandbox), registered only when ``AFTERSALES_ENV=sandbox``:
reservations created in the embedded supplier, the sandbox airline's schedule-change mock, a flow's
pending deadline made to pass now, and the sandbox agent's quote (``services.sandbox_controls``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.app_keys import DEPS
from api.cancellations import answered
from api.endpoints import Reply, Resource
from api.reservations import Reservation
from domain.cancellation_flow import CancellationInfo
from domain.deadline_advance import DeadlineName
from domain.money import Money
from domain.products import ReservationSpec
from domain.rescheduling_flow import ChangeKind
from services import sandbox_controls
from services.requester import Requester

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
    code: str = Field(description="the rescheduling flow the change started (RS-…)")


class DeadlinePassed(BaseModel):
    code: str
    deadline: DeadlineName = Field(description="the deadline that passed: named after the setting that gives its length")
    due_at: datetime = Field(description="when it would have passed")


class SandboxAgentQuote(BaseModel):
    model_config = ConfigDict(extra="forbid")

    penalty: Money = Field(description="what the cancellation costs; the refund is the paid amount minus it")
    note: str = Field(default="", max_length=2000)


@resource.route("POST", "/v1/sandbox/reservations", summary="Create a reservation in the sandbox supplier",
                roles=("partner",), body=ReservationSpec, answers={201: Reservation})
async def create_reservation(request: web.Request, requester: Requester, body: ReservationSpec) -> Reply:
    return Reply(201, await sandbox_controls.create_reservation(request.app[DEPS], requester, body))


@resource.route("POST", "/v1/sandbox/rescheduling/mock", summary="The sandbox airline pushes a schedule change",
                roles=("partner",), body=MockScheduleChange, answers={202: Received})
async def mock_schedule_change(request: web.Request, requester: Requester, body: MockScheduleChange) -> Reply:
    code = await sandbox_controls.mock_schedule_change(request.app[DEPS], requester, body.product_id, body.kind, body.delay_minutes)
    return Reply(202, Received(status="received", code=code))


@resource.route("POST", "/v1/sandbox/flows/{code}/advance", summary="The deadline the flow waits on passes now",
                roles=("partner",), answers={202: DeadlinePassed})
async def advance_deadline(request: web.Request, requester: Requester) -> Reply:
    code = request.match_info["code"]
    advanced = await sandbox_controls.advance_deadline(request.app[DEPS], requester, code)
    return Reply(202, DeadlinePassed(code=code, deadline=advanced.deadline, due_at=advanced.due_at))


@resource.route("POST", "/v1/sandbox/cancellations/{code}/agent-quote",
                summary="The sandbox agent quotes the caller's manual cancellation",
                roles=("partner",), body=SandboxAgentQuote, answers={200: CancellationInfo, 202: CancellationInfo})
async def sandbox_agent_quote(request: web.Request, requester: Requester, body: SandboxAgentQuote) -> Reply:
    return answered(await sandbox_controls.agent_quote(request.app[DEPS], requester, request.match_info["code"],
                                                       body.penalty, body.note))
