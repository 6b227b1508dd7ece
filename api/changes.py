"""Changes (docs/api.md#changes): allowance → alternatives → context (pre-book) → book, and the
change's flow info. The agent's checkout path is in ``api.checkouts``; what each request checks and
does is ``services.changes``; both drive ``workflows.change.ChangeWorkflow``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.app_keys import DEPS
from api.endpoints import Reply, Resource
from api.reservations import SoldProduct
from domain.change_flow import ChangeInfo
from domain.change_pricing import ChangeSearch
from domain.codes import FlowKind
from domain.money import Money
from domain.products import ProductSpec, Segment
from services import changes
from services.changes import ChangeBooked
from services.flow_start import StillWorking
from services.requester import Requester
from services.visibility import visible_flow

resource = Resource("changes")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChangeAllowance(BaseModel):
    product_id: str
    allowed: bool
    manual: bool = Field(description="true: an agent changes it by checkout; false: alternatives → context → book")
    reasons: list[str]


class AlternativeItem(BaseModel):
    """One itinerary to change to, and what it costs (a product of another kind than flight or hotel
    shows nothing more of it)."""

    itinerary_id: str
    price: Money = Field(description="the product's price after the change: price + max(fare_difference, 0)")
    fare_difference: Money
    change_fee: Money
    total_due: Money = Field(description="max(fare_difference, 0) + change_fee: a cheaper fare is not refunded")
    expires_at: datetime


class FlightAlternative(AlternativeItem):
    """A flight's itinerary: its carrier and segments."""

    carrier: str
    segments: list[Segment]


class HotelAlternative(AlternativeItem):
    """A hotel's stay: the hotel and its dates."""

    hotel: str
    check_in: date
    check_out: date


# What an alternative shows of the product it would make, by the product's kind.
_SHOWN: dict[str, type[AlternativeItem]] = {"flight": FlightAlternative, "hotel": HotelAlternative}


class Alternatives(BaseModel):
    items: list[FlightAlternative | HotelAlternative | AlternativeItem]


class NewContext(_Body):
    itinerary_id: str = Field(min_length=1, max_length=60)


class ChangeContext(BaseModel):
    context_id: str
    code: str
    product_id: str
    itinerary_id: str
    total_due: Money
    expires_at: datetime


class BookContext(_Body):
    invoice_hint: str | None = Field(default=None, max_length=200)
    credit_id: str | None = Field(default=None, min_length=1, max_length=40,
                                  description="pay with this credit: it pays what it can of total_due, the rest is due as usual")


class CreditPayment(BaseModel):
    """What the credit paid for the change, and what is left of it."""

    credit_id: str
    paid: Money
    due: Money = Field(description="what the change costs besides: total_due − paid, due as usual")
    remaining: Money
    state: str


class BookedChange(BaseModel):
    code: str
    status: str
    product: SoldProduct | None = Field(default=None, description="the product as the change made it; null while processing")
    credit_payment: CreditPayment | None = None


def booked(answer: ChangeBooked | StillWorking) -> Reply:
    """A booking's answer: the change and the product it made (and what a credit paid of it), or 202
    while the supplier still works on it."""
    if isinstance(answer, StillWorking):
        return Reply(202, BookedChange(code=answer.code, status="processing"))
    info, credit = answer.info, answer.credit
    payment = None
    if credit is not None:
        paid = credit.paid_for(info.code)
        payment = CreditPayment(credit_id=credit.credit_id, paid=paid, due=info.total_due - paid,
                                remaining=credit.remaining, state=credit.state)
    # The product as the store shows it (BookedChange documents its shape), as the reservation's GET does.
    return Reply(200, {"code": info.code, "status": info.status, "product": answer.product,
                       "credit_payment": None if payment is None else payment.model_dump(mode="json")})


def _itinerary_fields(itinerary: ProductSpec) -> dict[str, Any]:
    """What an alternative shows of the product it would make: its kind's own fields, and its price."""
    shown = set(_SHOWN.get(itinerary.kind, AlternativeItem).model_fields) - set(AlternativeItem.model_fields)
    return itinerary.model_dump(mode="json", include=shown | {"price"})


@resource.route("GET", "/v1/products/{product_id}/change-allowance", summary="May this product be changed",
                roles=("partner", "agent"), answers={200: ChangeAllowance})
async def get_allowance(request: web.Request, requester: Requester) -> Reply:
    product_id = request.match_info["product_id"]
    reasons, manual = await changes.allowance(request.app[DEPS], requester, product_id)
    return Reply(200, ChangeAllowance(product_id=product_id, allowed=not reasons, manual=manual, reasons=reasons))


@resource.route("POST", "/v1/products/{product_id}/change-alternatives", summary="Itineraries to change to",
                roles=("partner",), body=ChangeSearch, answers={200: Alternatives})
async def search_alternatives(request: web.Request, requester: Requester, body: ChangeSearch) -> Reply:
    offered = await changes.search_alternatives(request.app[DEPS], requester, request.match_info["product_id"], body)
    items = [
        _SHOWN.get(alternative.itinerary.kind, AlternativeItem)(
            itinerary_id=offer.itinerary_id, expires_at=offer.expires_at,
            **_itinerary_fields(alternative.itinerary), **alternative.charges.model_dump())
        for offer, alternative in offered
    ]
    # Each item as its own kind shows it (Alternatives documents the choice).
    return Reply(200, {"items": [item.model_dump(mode="json") for item in items]})


@resource.route("POST", "/v1/change-contexts", summary="Pre-book an alternative: hold its price",
                roles=("partner",), body=NewContext, answers={201: ChangeContext})
async def create_context(request: web.Request, requester: Requester, body: NewContext) -> Reply:
    info = await changes.create_context(request.app[DEPS], requester, body.itinerary_id)
    assert info.context_id is not None and info.itinerary_id is not None
    return Reply(201, ChangeContext(context_id=info.context_id, code=info.code, product_id=info.product_id,
                                    itinerary_id=info.itinerary_id, total_due=info.total_due,
                                    expires_at=info.expires_at))


@resource.route("POST", "/v1/change-contexts/{context_id}/book", summary="Book a pre-booked change",
                roles=("partner",), body=BookContext, answers={200: BookedChange, 202: BookedChange})
async def book_context(request: web.Request, requester: Requester, body: BookContext) -> Reply:
    return booked(await changes.book_context(request.app[DEPS], requester, request.match_info["context_id"], body.invoice_hint,
                                             body.credit_id))


@resource.route("GET", "/v1/changes/{code}", summary="A change's flow info",
                roles=("partner", "agent"), answers={200: ChangeInfo})
async def get_change(request: web.Request, requester: Requester) -> Reply:
    return Reply(200, await visible_flow(request.app[DEPS], requester.principal, request.match_info["code"], FlowKind.CHANGE,
                                         "change"))
