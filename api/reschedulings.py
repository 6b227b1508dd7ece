"""Rescheduling (docs/api.md#rescheduling): a rescheduling's flow info, its alternatives and the
partner's choice (``services.reschedulings``). Schedule changes come in through ``api.supplier_intake``."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.app_keys import DEPS
from api.endpoints import Reply, Resource
from domain.codes import FlowKind
from domain.credit_ledger import RefundTo
from domain.rescheduling_flow import ReschedulingAlternative, ReschedulingInfo
from services import reschedulings
from services.flow_start import StillWorking
from services.requester import Requester
from services.visibility import visible_flow

resource = Resource("reschedulings")


class AlternativeList(BaseModel):
    items: list[ReschedulingAlternative]
    next: str | None = None  # a rescheduling has a handful of alternatives: always one page


class AcceptBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    alternative_id: str = Field(min_length=1, max_length=40)
    refund_to: RefundTo = Field(default="original_payment", description="with the refund alternative: where its refund "
                                "goes, back to the original payment or into a credit (docs/settlement.md#credits)")


class Accepted(BaseModel):
    code: str
    status: str  # accepted; processing when applying it outlasts the sync wait
    alternative_id: str | None
    refund_to: RefundTo = "original_payment"
    credit_id: str | None = Field(default=None, description="the credit the refund became (refund_to: credit)")


async def _rescheduling(request: web.Request, requester: Requester) -> dict[str, Any]:
    return await visible_flow(request.app[DEPS], requester.principal, request.match_info["code"], FlowKind.RESCHEDULING,
                              "rescheduling")


@resource.route("GET", "/v1/reschedulings/{code}", summary="A rescheduling's flow info",
                roles=("partner", "agent"), answers={200: ReschedulingInfo})
async def get_rescheduling(request: web.Request, requester: Requester) -> Reply:
    return Reply(200, await _rescheduling(request, requester))


@resource.route("GET", "/v1/reschedulings/{code}/alternatives", summary="What the partner may choose",
                roles=("partner", "agent"), answers={200: AlternativeList})
async def get_alternatives(request: web.Request, requester: Requester) -> Reply:
    info = await _rescheduling(request, requester)
    return Reply(200, {"items": info["alternatives"], "next": None})


@resource.route("POST", "/v1/reschedulings/{code}/accept", summary="Choose an alternative",
                roles=("partner",), body=AcceptBody, answers={200: Accepted, 202: Accepted})
async def accept(request: web.Request, requester: Requester, body: AcceptBody) -> Reply:
    done = await reschedulings.accept(request.app[DEPS], requester, request.match_info["code"], body.alternative_id,
                                      body.refund_to)
    if isinstance(done, StillWorking):
        return Reply(202, Accepted(code=done.code, status="processing", alternative_id=body.alternative_id,
                                   refund_to=body.refund_to))
    return Reply(200, Accepted(code=done.code, status=done.status, alternative_id=done.alternative_id,
                               refund_to=done.refund_to, credit_id=done.credit_id))
