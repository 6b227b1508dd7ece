"""The refunds ledger (docs/api.md#settlement, docs/settlement.md#the-refunds-ledger) and
deposits given back (docs/settlement.md#deposits); what each request checks and does is
``services.refunds``.

Agents and admins create, edit, post and reject refunds; partners read their own and give back a
product's deposit. Flows post their own refunds (``store.money_effects``), never through here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, create_model

from api.app_keys import DEPS
from api.endpoints import Reply, Resource
from api.page_cursors import cursor_seq, next_cursor
from domain.money import Money
from domain.refund_ledger import REFUND_FIELDS, Refund, RefundState
from domain.refusals import invalid_field
from services import refunds
from services.requester import Requester
from services.visibility import visible_refund
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


def _projected(model: type[BaseModel]) -> type[BaseModel]:
    """``model`` with every field optional: what ``fields=`` leaves of it (without it, every field)."""
    return create_model(  # type: ignore[call-overload,no-any-return]  # fields given by name, as the refund has them
        "RefundFields", __doc__="A refund, with every field or only those `fields=` names.",
        **{name: (field.annotation, Field(default=None, description=field.description))
           for name, field in model.model_fields.items()},
    )


# Made at import from Refund: to the type checker, just a model.
if TYPE_CHECKING:
    RefundFields = BaseModel
else:
    RefundFields = _projected(Refund)


class RefundPage(BaseModel):
    items: list[RefundFields]
    next: str | None


def _projection(fields: str | None) -> list[str] | None:
    """A sparse fieldset: the answer carries only these fields; an unknown one is a 422."""
    if fields is None:
        return None
    names = [name.strip() for name in fields.split(",")]
    unknown = [name for name in names if name not in REFUND_FIELDS]
    if unknown:
        raise invalid_field(
            "query.fields", f"unknown field(s) {', '.join(repr(n) for n in unknown)}; known: {', '.join(REFUND_FIELDS)}",
        )
    return names


def _shown(refund: Refund, fields: list[str] | None) -> dict[str, Any]:
    view = refund.model_dump(mode="json")
    return view if fields is None else {name: view[name] for name in fields}


@resource.route("POST", "/v1/refunds", summary="Create a refund, as a draft or posted at once",
                roles=WRITERS, body=NewRefund, answers={201: Refund})
async def create_refund(request: web.Request, requester: Requester, body: NewRefund) -> Reply:
    return Reply(201, await refunds.create(
        request.app[DEPS], requester, reservation_id=body.reservation_id, amount=body.amount, state=body.state,
        reason=body.reason, notes=body.notes, back_office_code=body.back_office_code,
    ))


@resource.route("PATCH", "/v1/refunds/{refund_id}", summary="Edit a draft refund",
                roles=WRITERS, body=RefundChanges, answers={200: Refund})
async def edit_refund(request: web.Request, requester: Requester, body: RefundChanges) -> Reply:
    changes = {name: getattr(body, name) for name in body.model_fields_set}
    return Reply(200, await refunds.edit(request.app[DEPS], requester, request.match_info["refund_id"], changes))


@resource.route("POST", "/v1/refunds/{refund_id}/post", summary="Post a draft refund: it is numbered and booked",
                roles=WRITERS, body=NoBody, answers={200: Refund})
async def post_refund(request: web.Request, requester: Requester, body: NoBody) -> Reply:
    return Reply(200, await refunds.post(request.app[DEPS], requester, request.match_info["refund_id"]))


@resource.route("POST", "/v1/refunds/{refund_id}/reject", summary="Reject a draft refund",
                roles=WRITERS, body=Rejection, answers={200: Refund})
async def reject_refund(request: web.Request, requester: Requester, body: Rejection) -> Reply:
    return Reply(200, await refunds.reject(request.app[DEPS], requester, request.match_info["refund_id"], body.reason))


@resource.route("GET", "/v1/refunds/{refund_id}", summary="A refund (fields= to project it)",
                roles=READERS, query=RefundQuery, answers={200: RefundFields})
async def get_refund(request: web.Request, requester: Requester, query: RefundQuery) -> Reply:
    fields = _projection(query.fields)
    return Reply(200, _shown(await visible_refund(request.app[DEPS], requester.principal, request.match_info["refund_id"]), fields))


@resource.route("GET", "/v1/refunds", summary="The refunds ledger, in creation order (fields= to project it)",
                roles=READERS, query=RefundsQuery, answers={200: RefundPage})
async def list_refunds(request: web.Request, requester: Requester, query: RefundsQuery) -> Reply:
    fields = _projection(query.fields)
    scope = {**query.model_dump(exclude={"limit", "cursor", "fields"}), "caller": refunds.recorded_by(requester.principal)}
    after = cursor_seq(query.cursor, scope)
    where = RefundFilter(partner_id=query.partner_id, reservation_id=query.reservation_id, state=query.state,
                         flow_code=query.flow_code, back_office_code=query.back_office_code)
    rows = await refunds.page(request.app[DEPS], requester, where, after, query.limit + 1)
    page = rows[: query.limit]
    more = next_cursor(page[-1][0], scope) if len(rows) > query.limit else None
    return Reply(200, {"items": [_shown(refund, fields) for _, refund in page], "next": more})


@resource.route("POST", "/v1/products/{product_id}/deposit-refunds", summary="Give a product's deposit back, once",
                roles=READERS, body=NoBody, answers={201: Refund})
async def refund_deposit(request: web.Request, requester: Requester, body: NoBody) -> Reply:
    return Reply(201, await refunds.refund_deposit(request.app[DEPS], requester, request.match_info["product_id"]))
