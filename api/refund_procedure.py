"""The refund procedure (docs/api.md#settlement, docs/settlement.md#the-refund-procedure): what
cancelling each product would refund right now, computed exactly as an automatic quote would be
(``services.refunds``, ``domain.refund_terms.cancellation_terms``), creating nothing."""

from __future__ import annotations

from aiohttp import web

from api.app_keys import DEPS
from api.endpoints import Reply, Resource
from domain.refund_terms import ProductProcedure, RefundProcedure
from services import refunds
from services.requester import Requester

resource = Resource("settlement")
READERS = ("partner", "agent", "admin")


@resource.route("GET", "/v1/reservations/{reservation_id}/refund-procedure",
                summary="What cancelling each product would refund now", roles=READERS,
                answers={200: RefundProcedure})
async def reservation_procedure(request: web.Request, requester: Requester) -> Reply:
    return Reply(200, await refunds.reservation_procedure(request.app[DEPS], requester, request.match_info["reservation_id"]))


@resource.route("GET", "/v1/products/{product_id}/refund-procedure",
                summary="What cancelling this product would refund now", roles=READERS,
                answers={200: ProductProcedure})
async def product_procedure(request: web.Request, requester: Requester) -> Reply:
    return Reply(200, await refunds.product_procedure(request.app[DEPS], requester, request.match_info["product_id"]))
