"""Rescheduling (docs/api.md#rescheduling): a rescheduling's flow info, its alternatives and the
partner's choice. Schedule changes come in through ``api.supplier_intake``."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.access import visible_flow
from api.endpoints import Reply, Resource
from api.flow_start import update_flow
from api.problems import refused
from domain.codes import FlowKind
from domain.refusals import Refusal
from domain.rescheduling_flow import AlternativeChoice, ReschedulingAlternative, ReschedulingInfo
from store.accounts import Principal
from workflows.rescheduling import ReschedulingWorkflow

resource = Resource("reschedulings")


class AlternativeList(BaseModel):
    items: list[ReschedulingAlternative]
    next: str | None = None  # a rescheduling has a handful of alternatives: always one page


class AcceptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alternative_id: str = Field(min_length=1, max_length=40)


class Accepted(BaseModel):
    code: str
    status: str  # accepted; processing when applying it outlasts the sync wait
    alternative_id: str | None


async def _rescheduling(request: web.Request, who: Principal) -> dict[str, Any]:
    return await visible_flow(request, who, request.match_info["code"], FlowKind.RESCHEDULING, "rescheduling")


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
    code = (await _rescheduling(request, who))["code"]

    def on_closed(final: ReschedulingInfo) -> ReschedulingInfo:
        if final.repeats(body.alternative_id):
            return final
        raise refused(Refusal.NOT_AWAITING_CHOICE, f"rescheduling {code} is not awaiting a choice (status {final.status})")

    done = await update_flow(
        request, code, ReschedulingWorkflow.accept, AlternativeChoice(alternative_id=body.alternative_id), on_closed,
    )
    if done is None:
        return Reply(202, Accepted(code=code, status="processing", alternative_id=body.alternative_id))
    return Reply(200, Accepted(code=done.code, status=done.status, alternative_id=done.alternative_id))
