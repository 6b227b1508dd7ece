"""Special requests (docs/api.md#special-requests): the options a product offers, asking for one, and its state.

A special request does not mutate the product, so it is started without the product's
one-active-flow lock (``domain.special_requests``): it is accepted while a change or a
cancellation runs, and blocks neither.
"""

from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.access import product_state, visible_flow, visible_product
from api.app_keys import STORE
from api.endpoints import Reply, Resource
from api.flow_start import NewFlow, opening, start_flow
from api.problems import invalid_field, refused
from domain.codes import FlowKind
from domain.products import ProductSpec, SpecialRequestOption
from domain.refusals import Refusal
from domain.special_request_flow import SpecialRequestInfo, SpecialRequestInput
from store.accounts import Principal

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
async def list_options(request: web.Request, who: Principal) -> Reply:
    product = await visible_product(request, who, request.match_info["product_id"])
    spec: ProductSpec = product.spec
    return Reply(200, OptionList(items=spec.special_request_options))


@resource.route("POST", "/v1/products/{product_id}/special-requests", summary="Ask the airline for a special request",
                roles=("partner",), body=NewSpecialRequest, answers={202: SpecialRequestStarted})
async def create_special_request(request: web.Request, who: Principal, body: NewSpecialRequest) -> Reply:
    async def prepare(code: str) -> NewFlow:
        product = await visible_product(request, who, request.match_info["product_id"])
        spec: ProductSpec = product.spec
        option = next((o for o in spec.special_request_options if o.code == body.code), None)
        if option is None:
            offered = ", ".join(o.code for o in spec.special_request_options) or "none"
            raise invalid_field("code", f"not an option of this product (offered: {offered})")
        reservation = await request.app[STORE].reservations.view(product.reservation_id)
        assert reservation is not None  # the product belongs to it
        if body.traveller_id not in {t["traveller_id"] for t in reservation["travellers"]}:
            raise invalid_field("traveller_id", "not a traveller of this reservation")
        # The product's own state still matters (nothing to ask for on a cancelled or flown product);
        # another flow running on it does not.
        state = await product_state(request, product)
        reasons = [r for r in state.common_refusals(datetime.now(timezone.utc)) if r != "flow_in_progress"]
        if reasons:
            raise refused(Refusal.SPECIAL_REQUEST_DISALLOWED, f"no special request on this product: {', '.join(reasons)}")
        flow_input = SpecialRequestInput(
            **opening(request, code, product), option=option, traveller_id=body.traveller_id, note=body.note,
        )
        return NewFlow(FlowKind.SPECIAL_REQUEST, flow_input, exclusive=False)

    info = (await start_flow(request, FlowKind.SPECIAL_REQUEST, prepare)).info
    assert isinstance(info, SpecialRequestInfo)
    return Reply(202, SpecialRequestStarted(request_id=info.request_id, status=info.status))


@resource.route("GET", "/v1/special-requests/{request_id}", summary="A special request's state",
                roles=("partner", "agent"), answers={200: SpecialRequestInfo})
async def get_special_request(request: web.Request, who: Principal) -> Reply:
    return Reply(200, await visible_flow(request, who, request.match_info["request_id"], FlowKind.SPECIAL_REQUEST,
                                         "special request"))
