"""What a caller may see (docs/api.md#authentication-and-roles): a partner only ever sees its own
products, reservations and flows, and anything else answers 404 so existence does not leak."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from api.app_keys import STORE
from api.problems import not_found
from domain.allowance import ProductState
from domain.codes import FlowKind, parse_flow_code
from store.accounts import Principal
from store.reservation_records import ProductRecord


def _hidden(who: Principal, owner: str) -> bool:
    return who.role == "partner" and owner != who.principal_id


async def visible_product(request: web.Request, who: Principal, product_id: str) -> ProductRecord:
    product = await request.app[STORE].reservations.product(product_id)
    if product is None or _hidden(who, product.partner_id):
        raise not_found("product")
    return product


async def product_state(request: web.Request, product: ProductRecord) -> ProductState:
    """The facts an allowance is decided on, the product's active flow included."""
    return product.state(await request.app[STORE].flows.lock_holder(product.product_id) is not None)


def flow_code(code: str | None, kind: FlowKind, what: str) -> str:
    """``code`` when it names a flow of ``kind``; 404 otherwise (a CF- code on a cancellation route)."""
    try:
        if code is not None and parse_flow_code(code) == kind:
            return code
    except ValueError:
        pass
    raise not_found(what)


async def visible_flow(
    request: web.Request, who: Principal, code: str | None, kind: FlowKind, what: str
) -> dict[str, Any]:
    """The flow info as the store last recorded it, if ``code`` is a flow of ``kind`` the caller may see."""
    found = await request.app[STORE].flows.flow(flow_code(code, kind, what))
    if found is None or _hidden(who, found.partner_id):
        raise not_found(what)
    return found.info


async def visible_reservation(request: web.Request, who: Principal, reservation_id: str) -> dict[str, Any]:
    view = await request.app[STORE].reservations.view(reservation_id)
    if view is None or _hidden(who, view["partner_id"]):
        raise not_found("reservation")
    view.pop("partner_id")
    return view
