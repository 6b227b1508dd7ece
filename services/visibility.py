"""What a caller may see (docs/api.md#authentication-and-roles): a partner only ever sees its own
products, reservations, flows, refunds, credits, payments and events; anything else answers 404
(``domain.refusals.not_found``), so existence does not leak. Agents and admins see everything."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from domain.allowance import ProductState
from domain.codes import FlowKind, parse_flow_code
from domain.credit_ledger import Credit
from domain.journal import Payment
from domain.refund_ledger import Refund
from domain.refusals import not_found
from services.bootstrap import Deps
from store.accounts import Principal
from store.reservation_records import ProductRecord

T = TypeVar("T")


def _hidden(who: Principal, owner: str) -> bool:
    """``who`` may not see what belongs to the partner ``owner``."""
    return who.role == "partner" and owner != who.principal_id


async def partner_rows(who: Principal, asked: str | None, read: Callable[[str | None], Awaitable[list[T]]]) -> list[T]:
    """The rows ``read(partner_id)`` gives of a list the caller filtered on partner ``asked`` (None:
    every partner's): a partner's lists hold its own rows only, and asking for another's answers
    nothing (no hint that it exists); agents and admins filter as they ask."""
    if who.role == "partner":
        if asked not in (None, who.principal_id):
            return []
        asked = who.principal_id
    return await read(asked)


async def visible_product(deps: Deps, who: Principal, product_id: str) -> ProductRecord:
    product = await deps.store.reservations.product(product_id)
    if product is None or _hidden(who, product.partner_id):
        raise not_found("product")
    return product


async def product_state(deps: Deps, product: ProductRecord) -> ProductState:
    """The facts an allowance is decided on, the product's active flow included."""
    return product.state(await deps.store.flows.lock_holder(product.product_id) is not None)


def flow_code(code: str | None, kind: FlowKind, what: str) -> str:
    """``code`` when it names a flow of ``kind``; 404 otherwise (a CF- code on a cancellation route)."""
    try:
        if code is not None and parse_flow_code(code) == kind:
            return code
    except ValueError:
        pass
    raise not_found(what)


async def visible_flow(deps: Deps, who: Principal, code: str | None, kind: FlowKind, what: str) -> dict[str, Any]:
    """The flow info as the store last recorded it, if ``code`` is a flow of ``kind`` the caller may see."""
    found = await deps.store.flows.flow(flow_code(code, kind, what))
    if found is None or _hidden(who, found.partner_id):
        raise not_found(what)
    return found.info


async def visible_reservation(deps: Deps, who: Principal, reservation_id: str) -> dict[str, Any]:
    view = await deps.store.reservations.view(reservation_id)
    if view is None or _hidden(who, view["partner_id"]):
        raise not_found("reservation")
    view.pop("partner_id")
    return view


async def visible_refund(deps: Deps, who: Principal, refund_id: str) -> Refund:
    refund = await deps.store.refunds.refund(refund_id)
    if refund is None or _hidden(who, refund.partner_id):
        raise not_found("refund")
    return refund


async def visible_credit(deps: Deps, who: Principal, credit_id: str) -> Credit:
    credit = await deps.store.credits.credit(credit_id)
    if credit is None or _hidden(who, credit.partner_id):
        raise not_found("credit")
    return credit


async def own_payment(deps: Deps, who: Principal, payment_id: str) -> Payment:
    """A journal entry of the calling partner (only partners confirm payments)."""
    found = await deps.store.payments.payment(payment_id)
    if found is None or found.partner_id != who.principal_id:
        raise not_found("payment")
    return found


async def own_event(deps: Deps, who: Principal, event_id: str) -> None:
    """Refused unless ``event_id`` is one of the calling partner's events."""
    if await deps.store.events.owner(event_id) != who.principal_id:
        raise not_found("event")
