"""The refund procedure (docs/api.md#settlement, docs/settlement.md#the-refund-procedure): what
cancelling each product would refund right now, computed exactly as an automatic quote would be
(``domain.refund_terms.cancellation_terms``), creating nothing."""

from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web

from api.access import product_state, visible_product, visible_reservation
from api.app_keys import STORE
from api.endpoints import Reply, Resource
from domain.refund_terms import (
    ProcedureItem,
    ProductProcedure,
    RefundProcedure,
    cancellation_terms,
    procedure_item,
    refund_procedure,
)
from store.accounts import Principal
from store.reservation_records import ProductRecord

resource = Resource("settlement")
READERS = ("partner", "agent", "admin")


async def _item(request: web.Request, product: ProductRecord, now: datetime) -> ProcedureItem:
    terms = cancellation_terms(await product_state(request, product), product.spec, now)
    return procedure_item(product.product_id, terms)


@resource.route("GET", "/v1/reservations/{reservation_id}/refund-procedure",
                summary="What cancelling each product would refund now", roles=READERS,
                answers={200: RefundProcedure})
async def reservation_procedure(request: web.Request, who: Principal) -> Reply:
    reservation = await visible_reservation(request, who, request.match_info["reservation_id"])
    now = datetime.now(timezone.utc)
    products = await request.app[STORE].reservations.products_of(reservation["reservation_id"])
    items = [await _item(request, product, now) for product in products]
    return Reply(200, refund_procedure(reservation["reservation_id"], items, now))


@resource.route("GET", "/v1/products/{product_id}/refund-procedure",
                summary="What cancelling this product would refund now", roles=READERS,
                answers={200: ProductProcedure})
async def product_procedure(request: web.Request, who: Principal) -> Reply:
    product = await visible_product(request, who, request.match_info["product_id"])
    now = datetime.now(timezone.utc)
    item = await _item(request, product, now)
    return Reply(200, ProductProcedure(**item.model_dump(), reservation_id=product.reservation_id, computed_at=now))
