"""The refunds ledger (docs/api.md#settlement, docs/settlement.md#the-refunds-ledger) and
deposits given back (docs/settlement.md#deposits).

Agents and admins create, edit, post and reject refunds; partners read their own and give back a
product's deposit. Flows post their own refunds (``store.money_effects``), never through here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.access import visible_product
from api.app_keys import STORE
from api.endpoints import Reply, Resource
from api.page_cursors import cursor_seq, next_cursor
from api.problems import INVALID, Problem, not_found, refusals_answered
from domain.money import Money
from domain.refund_ledger import REFUND_FIELDS, Refund, RefundState, amount_problems
from store.accounts import Principal
from store.refund_records import RefundFilter

resource = Resource("settlement")

WRITERS = ("agent", "admin")
READERS = ("partner", "agent", "admin")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewRefund(_Body):
    reservation_id: str = Field(min_length=1, max_length=40)
    amount: Money
    state: Literal["draft", "posted"]
    reason: str = Field(min_length=1, max_length=500)
    back_office_code: str | None = Field(default=None, min_length=1, max_length=100)
    notes: str = Field(default="", max_length=2000)


class RefundChanges(_Body):
    """Only the fields sent change; ``back_office_code: null`` clears it."""

    amount: Money | None = None
    reason: str | None = Field(default=None, min_length=1, max_length=500)
    notes: str | None = Field(default=None, max_length=2000)
    back_office_code: str | None = Field(default=None, min_length=1, max_length=100)


class Rejection(_Body):
    reason: str = Field(min_length=1, max_length=500)


class NoBody(_Body):
    pass


class RefundQuery(_Body):
    fields: str | None = Field(default=None, max_length=1000, description="comma-separated fields to answer with")


class RefundsQuery(RefundQuery):
    reservation_id: str | None = Field(default=None, min_length=1, max_length=40)
    state: RefundState | None = None
    flow_code: str | None = Field(default=None, min_length=1, max_length=20)
    back_office_code: str | None = Field(default=None, min_length=1, max_length=100)
    partner_id: str | None = Field(default=None, min_length=1, max_length=40, description="agents and admins only")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200)


class RefundPage(BaseModel):
    items: list[dict[str, Any]]
    next: str | None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _by(who: Principal) -> str:
    """Who did it, as the ledger records it: ``agent:agt_…``, ``admin``, ``partner:ptn_…``."""
    return "admin" if who.role == "admin" else f"{who.role}:{who.principal_id}"


def _projection(fields: str | None) -> list[str] | None:
    """A sparse fieldset: the answer carries only these fields; an unknown one is a 422."""
    if fields is None:
        return None
    names = [name.strip() for name in fields.split(",")]
    unknown = [name for name in names if name not in REFUND_FIELDS]
    if unknown:
        raise Problem(INVALID, "validation_failed", "the request has invalid fields", errors=[{
            "field": "query.fields",
            "message": f"unknown field(s) {', '.join(repr(n) for n in unknown)}; known: {', '.join(REFUND_FIELDS)}",
        }])
    return names


def _shown(refund: Refund, fields: list[str] | None) -> dict[str, Any]:
    view = refund.model_dump(mode="json")
    return view if fields is None else {name: view[name] for name in fields}


async def _visible(request: web.Request, who: Principal) -> Refund:
    refund = await request.app[STORE].refunds.refund(request.match_info["refund_id"])
    if refund is None or (who.role == "partner" and refund.partner_id != who.principal_id):
        raise not_found("refund")
    return refund


async def _check_amount(request: web.Request, reservation_id: str, amount: Money) -> None:
    charged = await request.app[STORE].refunds.charged(reservation_id)
    if charged is None:
        raise Problem(INVALID, "validation_failed", "the request has invalid fields",
                      errors=[{"field": "reservation_id", "message": "no such reservation"}])
    problems = amount_problems(amount, charged.account)
    if problems:
        raise Problem(INVALID, "validation_failed", "the request has invalid fields",
                      errors=[{"field": f, "message": m} for f, m in problems])


@resource.route("POST", "/v1/refunds", summary="Create a refund, as a draft or posted at once",
                roles=WRITERS, body=NewRefund, answers={201: Refund})
async def create_refund(request: web.Request, who: Principal, body: NewRefund) -> Reply:
    await _check_amount(request, body.reservation_id, body.amount)
    with refusals_answered():
        refund = await request.app[STORE].refunds.create(
            reservation_id=body.reservation_id, amount=body.amount, state=body.state, reason=body.reason,
            notes=body.notes, back_office_code=body.back_office_code, by=_by(who), at=_now(),
        )
    return Reply(201, refund)


@resource.route("PATCH", "/v1/refunds/{refund_id}", summary="Edit a draft refund",
                roles=WRITERS, body=RefundChanges, answers={200: Refund})
async def edit_refund(request: web.Request, who: Principal, body: RefundChanges) -> Reply:
    refund = await _visible(request, who)
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    missing = [name for name in ("amount", "reason", "notes") if name in changes and changes[name] is None]
    if missing:
        raise Problem(INVALID, "validation_failed", "the request has invalid fields",
                      errors=[{"field": name, "message": "must not be null"} for name in missing])
    if refund.state == "draft" and changes.get("amount") is not None:
        await _check_amount(request, refund.reservation_id, changes["amount"])
    with refusals_answered():
        edited = await request.app[STORE].refunds.edit(refund.refund_id, changes, _now())
    assert edited is not None  # refunds are never deleted
    return Reply(200, edited)


@resource.route("POST", "/v1/refunds/{refund_id}/post", summary="Post a draft refund: it is numbered and booked",
                roles=WRITERS, body=NoBody, answers={200: Refund})
async def post_refund(request: web.Request, who: Principal, body: NoBody) -> Reply:
    refund = await _visible(request, who)
    with refusals_answered():
        posted = await request.app[STORE].refunds.post(refund.refund_id, _by(who), _now())
    assert posted is not None
    return Reply(200, posted)


@resource.route("POST", "/v1/refunds/{refund_id}/reject", summary="Reject a draft refund",
                roles=WRITERS, body=Rejection, answers={200: Refund})
async def reject_refund(request: web.Request, who: Principal, body: Rejection) -> Reply:
    refund = await _visible(request, who)
    with refusals_answered():
        rejected = await request.app[STORE].refunds.reject(refund.refund_id, body.reason, _by(who), _now())
    assert rejected is not None
    return Reply(200, rejected)


@resource.route("GET", "/v1/refunds/{refund_id}", summary="A refund (fields= to project it)",
                roles=READERS, query=RefundQuery, answers={200: Refund})
async def get_refund(request: web.Request, who: Principal, query: RefundQuery) -> Reply:
    fields = _projection(query.fields)
    return Reply(200, _shown(await _visible(request, who), fields))


@resource.route("GET", "/v1/refunds", summary="The refunds ledger, in creation order (fields= to project it)",
                roles=READERS, query=RefundsQuery, answers={200: RefundPage})
async def list_refunds(request: web.Request, who: Principal, query: RefundsQuery) -> Reply:
    fields = _projection(query.fields)
    scope = {**query.model_dump(exclude={"limit", "cursor", "fields"}), "caller": _by(who)}
    after = cursor_seq(query.cursor, scope)
    partner_id = query.partner_id
    if who.role == "partner":
        if partner_id not in (None, who.principal_id):
            return Reply(200, RefundPage(items=[], next=None))
        partner_id = who.principal_id
    where = RefundFilter(partner_id=partner_id, reservation_id=query.reservation_id, state=query.state,
                         flow_code=query.flow_code, back_office_code=query.back_office_code)
    rows = await request.app[STORE].refunds.page(where, after, query.limit + 1)
    page = rows[: query.limit]
    more = next_cursor(page[-1][0], scope) if len(rows) > query.limit else None
    return Reply(200, RefundPage(items=[_shown(refund, fields) for _, refund in page], next=more))


@resource.route("POST", "/v1/products/{product_id}/deposit-refunds", summary="Give a product's deposit back, once",
                roles=READERS, body=NoBody, answers={201: Refund})
async def refund_deposit(request: web.Request, who: Principal, body: NoBody) -> Reply:
    product = await visible_product(request, who, request.match_info["product_id"])
    with refusals_answered():
        refund = await request.app[STORE].refunds.refund_deposit(product.product_id, _by(who), _now())
    assert refund is not None  # visible_product found it
    return Reply(201, refund)
