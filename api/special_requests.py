"""Special requests (docs/api.md#special-requests): the options a product offers, asking for one, and
its state. What a request checks and does is ``services.special_requests``; the flow itself is
``workflows.special_request``.
"""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.app_keys import DEPS
from api.endpoints import Reply, Resource
from domain.codes import FlowKind
from domain.products import SpecialRequestOption
from domain.special_request_flow import SpecialRequestInfo
from services import special_requests
from services.requester import Requester
from services.visibility import visible_flow

resource = Resource("special-requests")


class OptionList(BaseModel):
    items: list[SpecialRequestOption]


class NewSpecialRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=8, description="an option code of the product")
    traveller_id: str = Field(min_length=1, max_length=40)
    note: str | None = Field(default=None, max_length=500)


class SpecialRequestStarted(BaseModel):
    request_id: str
    status: str


@resource.route("GET", "/v1/products/{product_id}/special-request-options", summary="The special requests a product offers",
                roles=("partner", "agent"), answers={200: OptionList})
async def list_options(request: web.Request, requester: Requester) -> Reply:
    return Reply(200, OptionList(items=await special_requests.options(request.app[DEPS], requester, request.match_info["product_id"])))


@resource.route("POST", "/v1/products/{product_id}/special-requests", summary="Ask the airline for a special request",
                roles=("partner",), body=NewSpecialRequest, answers={202: SpecialRequestStarted})
async def create_special_request(request: web.Request, requester: Requester, body: NewSpecialRequest) -> Reply:
    info = await special_requests.ask(request.app[DEPS], requester, request.match_info["product_id"], option_code=body.code,
                                      traveller_id=body.traveller_id, note=body.note)
    return Reply(202, SpecialRequestStarted(request_id=info.request_id, status=info.status))


@resource.route("GET", "/v1/special-requests/{request_id}", summary="A special request's state",
                roles=("partner", "agent"), answers={200: SpecialRequestInfo})
async def get_special_request(request: web.Request, requester: Requester) -> Reply:
    return Reply(200, await visible_flow(request.app[DEPS], requester.principal, request.match_info["request_id"],
                                         FlowKind.SPECIAL_REQUEST, "special request"))
