"""The refunds ledger (docs/settlement.md#the-refunds-ledger), deposits given back
(docs/settlement.md#deposits) and the refund procedure (docs/settlement.md#the-refund-procedure).

Agents and admins create, edit, post and reject refunds; partners read their own and give back a
product's deposit. Flows post their own refunds (``store.money_effects``), never through here. The
ledger's rules are ``domain.refund_ledger``'s and ``domain.journal``'s; the store applies them in
the transaction that writes.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Literal

from domain.involuntary import involuntary_cancellation_terms
from domain.money import Money
from domain.partial_cancellation import PARTIAL_NOT_ALLOWED, confirmed
from domain.refund_ledger import Refund, amount_problems
from domain.refund_terms import (
    CancellationTerms,
    ProcedureItem,
    ProductProcedure,
    RefundProcedure,
    cancellation_terms,
    procedure_item,
    refund_procedure,
)
from domain.refusals import invalid_field, invalid_fields
from domain.travellers import Fare, total
from services.bootstrap import Deps
from services.involuntary import terms_now
from services.requester import Requester
from services.visibility import partner_rows, product_state, visible_product, visible_refund, visible_reservation
from store.accounts import Principal
from store.refund_records import RefundFilter
from store.reservation_records import ProductRecord


def _now() -> datetime:
    return datetime.now(timezone.utc)


def recorded_by(who: Principal) -> str:
    """Who did it, as the ledger records it: ``agent:agt_…``, ``admin``, ``partner:ptn_…``."""
    return "admin" if who.role == "admin" else f"{who.role}:{who.principal_id}"


async def _check_amount(deps: Deps, reservation_id: str, amount: Money) -> None:
    charged = await deps.store.refunds.charged(reservation_id)
    if charged is None:
        raise invalid_field("reservation_id", "no such reservation")
    problems = amount_problems(amount, charged.account)
    if problems:
        raise invalid_fields(problems)


async def create(
    deps: Deps, requester: Requester, *, reservation_id: str, amount: Money, state: Literal["draft", "posted"], reason: str, notes: str,
    back_office_code: str | None,
) -> Refund:
    """A refund, as a draft or posted at once."""
    await _check_amount(deps, reservation_id, amount)
    return await deps.store.refunds.create(
        reservation_id=reservation_id, amount=amount, state=state, reason=reason, notes=notes,
        back_office_code=back_office_code, by=recorded_by(requester.principal), at=_now(),
    )


async def edit(deps: Deps, requester: Requester, refund_id: str, changes: dict[str, Any]) -> Refund:
    """Change the fields in ``changes`` (the ones the request sent) of a draft; ``back_office_code``
    may be cleared with None, the others may not."""
    refund = await visible_refund(deps, requester.principal, refund_id)
    missing = [name for name in ("amount", "reason", "notes") if name in changes and changes[name] is None]
    if missing:
        raise invalid_fields((name, "must not be null") for name in missing)
    if refund.state == "draft" and changes.get("amount") is not None:
        await _check_amount(deps, refund.reservation_id, changes["amount"])
    edited = await deps.store.refunds.edit(refund.refund_id, changes, _now())
    assert edited is not None  # refunds are never deleted
    return edited


async def post(deps: Deps, requester: Requester, refund_id: str) -> Refund:
    """Post a draft: it is numbered and booked."""
    refund = await visible_refund(deps, requester.principal, refund_id)
    posted = await deps.store.refunds.post(refund.refund_id, recorded_by(requester.principal), _now())
    assert posted is not None
    return posted


async def reject(deps: Deps, requester: Requester, refund_id: str, reason: str) -> Refund:
    refund = await visible_refund(deps, requester.principal, refund_id)
    rejected = await deps.store.refunds.reject(refund.refund_id, reason, recorded_by(requester.principal), _now())
    assert rejected is not None
    return rejected


async def page(deps: Deps, requester: Requester, where: RefundFilter, after: int | None, limit: int) -> list[tuple[int, Refund]]:
    """Up to ``limit`` refunds after the row ``after``, in creation order, with their row numbers; a
    partner's are its own."""
    return await partner_rows(requester.principal, where.partner_id,
                              lambda partner_id: deps.store.refunds.page(replace(where, partner_id=partner_id), after, limit))


async def refund_deposit(deps: Deps, requester: Requester, product_id: str) -> Refund:
    """Give a product's deposit back, once."""
    product = await visible_product(deps, requester.principal, product_id)
    refund = await deps.store.refunds.refund_deposit(product.product_id, recorded_by(requester.principal), _now())
    assert refund is not None  # visible_product found it
    return refund


async def _procedure_item(deps: Deps, product: ProductRecord, now: datetime) -> ProcedureItem:
    """Terms of cancelling every traveller still confirmed (involuntary when the supplier changed the
    product: docs/flows.md#involuntary-cancellations), and of cancelling each alone (docs/api.md#partial-cancellation)."""
    remaining = confirmed(product.fares(), product.cancelled_travellers or {})
    if not remaining or product.status == "cancelled":
        terms, _involuntary = await terms_now(deps, product, now)
        return procedure_item(product.product_id, terms)
    terms, involuntary = await terms_now(deps, product, now, total(fare.amount for fare in remaining))
    state = await product_state(deps, product)
    spec = product.spec

    def alone(fare: Fare) -> CancellationTerms:
        if not spec.partial_cancellation():
            # A policy that cancels whole products only shows each traveller's fare, with no terms of its own.
            return CancellationTerms("disallowed", [PARTIAL_NOT_ALLOWED], fare.amount)
        own = cancellation_terms(state, spec, now, fare.amount)
        return involuntary_cancellation_terms(own) if involuntary else own

    return procedure_item(product.product_id, terms, [(fare.traveller_id, alone(fare)) for fare in remaining])


async def reservation_procedure(deps: Deps, requester: Requester, reservation_id: str) -> RefundProcedure:
    """What cancelling each product of the reservation would refund now, computed exactly as an
    automatic quote would be, creating nothing."""
    reservation = await visible_reservation(deps, requester.principal, reservation_id)
    now = _now()
    products = await deps.store.reservations.products_of(reservation["reservation_id"])
    items = [await _procedure_item(deps, product, now) for product in products]
    return refund_procedure(reservation["reservation_id"], items, now)


async def product_procedure(deps: Deps, requester: Requester, product_id: str) -> ProductProcedure:
    product = await visible_product(deps, requester.principal, product_id)
    now = _now()
    item = await _procedure_item(deps, product, now)
    return ProductProcedure(**item.model_dump(), reservation_id=product.reservation_id, computed_at=now)
