"""Manual change (docs/api.md#changes): the agent issues a checkout,
the partner pre-books it (PreBookCheckout) and books it (BookCheckout). Same flow as the automatic
change (``ChangeWorkflow``, manual resolution), started when the agent issues the checkout.
"""

from __future__ import annotations

from datetime import datetime, timezone

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from api.access import visible_product
from api.app_keys import SETTINGS, SUPPLIER
from api.changes import BookedChange, book, change_info, refuse_unless_changeable, run_change_update
from api.endpoints import Reply, Resource
from api.flow_start import NewFlow, opening, start_flow
from api.problems import invalid_field, refused
from domain.change_flow import (
    CHECKOUT_CONTEXT_PREFIX,
    CHECKOUT_PREFIX,
    Booking,
    ChangeInfo,
    ChangeInput,
    Prebooking,
)
from domain.codes import FlowKind
from domain.flow_info import is_terminal
from domain.money import Money
from domain.products import FlightProduct, ProductSpec, Segment
from domain.refusals import Refusal
from store.accounts import Principal
from workflows.change import ChangeWorkflow

resource = Resource("checkouts")
_PRODUCT: TypeAdapter[ProductSpec] = TypeAdapter(ProductSpec)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewCheckout(_Body):
    description: str = Field(min_length=1, max_length=2000)
    amount: Money = Field(description="what the partner pays for the change, in the product's currency")
    segments: list[Segment] | None = Field(default=None, min_length=1, max_length=10,
                                           description="the flight's new segments, when the change moves it")


class Checkout(BaseModel):
    checkout_id: str
    code: str
    expires_at: datetime


class PrebookBody(_Body):
    transaction_id: str = Field(min_length=1, max_length=60, description="the reservation id")


class CheckoutContext(BaseModel):
    checkout_context_id: str
    amount: Money
    payment_methods: list[str]
    expires_at: datetime


class BookCheckoutBody(_Body):
    payment_method: str = Field(min_length=1, max_length=40)


def _context_answer(info: ChangeInfo) -> Reply:
    if info.status == "expired":
        raise refused(Refusal.CHECKOUT_EXPIRED, "the checkout has expired: ask the service center for a new one")
    if info.checkout_context_id is None:
        raise refused(Refusal.NOT_AWAITING_PREBOOK, f"checkout of {info.code} is {info.status}")
    return Reply(201, CheckoutContext(checkout_context_id=info.checkout_context_id, amount=info.total_due,
                                      payment_methods=info.payment_methods, expires_at=info.expires_at))


@resource.route("POST", "/v1/agent/products/{product_id}/checkouts", summary="Issue a checkout for a manual change",
                roles=("agent",), body=NewCheckout, answers={201: Checkout})
async def issue_checkout(request: web.Request, who: Principal, body: NewCheckout) -> Reply:
    async def prepare(code: str) -> NewFlow:
        product = await visible_product(request, who, request.match_info["product_id"])
        spec: ProductSpec = product.spec
        if body.amount.currency != spec.price.currency:
            raise invalid_field("amount.currency", f"must be the product's currency, {spec.price.currency}")
        if body.amount.is_negative():
            raise invalid_field("amount.amount", "must not be negative")
        itinerary = None
        if body.segments is not None:
            if not isinstance(spec, FlightProduct):
                raise invalid_field("segments", "only a flight has segments")
            itinerary = _PRODUCT.validate_python({**spec.model_dump(), "segments": body.segments})
        await refuse_unless_changeable(request, product, spec)
        return NewFlow(FlowKind.CHANGE, ChangeInput(
            **opening(request, code, product),
            resolution="manual",
            total_due=body.amount,
            expires_at=datetime.now(timezone.utc) + request.app[SETTINGS].checkout_ttl,
            itinerary=itinerary,
            description=body.description,
            agent_id=who.principal_id,
            payment_methods=await request.app[SUPPLIER].payment_methods(product.product_id),
        ))

    info = (await start_flow(request, FlowKind.CHANGE, prepare)).info
    assert isinstance(info, ChangeInfo) and info.checkout_id is not None
    return Reply(201, Checkout(checkout_id=info.checkout_id, code=info.code, expires_at=info.expires_at))


@resource.route("POST", "/v1/checkouts/{checkout_id}/prebook", summary="Pre-book an agent's checkout",
                roles=("partner",), body=PrebookBody, answers={201: CheckoutContext, 202: BookedChange})
async def prebook(request: web.Request, who: Principal, body: PrebookBody) -> Reply:
    info = await change_info(request, who, CHECKOUT_PREFIX, request.match_info["checkout_id"], "checkout")
    prebooked = await run_change_update(request, info, ChangeWorkflow.prebook,
                                        Prebooking(transaction_id=body.transaction_id))
    if prebooked is None:
        # Taken, and still being recorded: the same pre-book again (same Idempotency-Key) answers the context.
        return Reply(202, BookedChange(code=info.code, status="processing"))
    # A finished flow answers from the store (a repeated pre-book gets the same context), so the
    # workflow's own transaction check is made here.
    if is_terminal(prebooked.status) and body.transaction_id != prebooked.reservation_id:
        raise invalid_field("transaction_id", "is not the reservation this checkout was issued for")
    return _context_answer(prebooked)


@resource.route("POST", "/v1/checkout-contexts/{checkout_context_id}/book", summary="Book (pay) a pre-booked checkout",
                roles=("partner",), body=BookCheckoutBody, answers={200: BookedChange, 202: BookedChange})
async def book_checkout(request: web.Request, who: Principal, body: BookCheckoutBody) -> Reply:
    info = await change_info(request, who, CHECKOUT_CONTEXT_PREFIX, request.match_info["checkout_context_id"],
                             "checkout context")
    return await book(request, info, Booking(payment_method=body.payment_method))
