"""Manual change (docs/api.md#changes): the agent issues a checkout, the partner pre-books it
(PreBookCheckout) and books it (BookCheckout). Same flow as the automatic change (``ChangeWorkflow``,
manual resolution), started when the agent issues the checkout; what each request checks and does is
``services.changes``.
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.app_keys import DEPS
from api.changes import BookedChange, booked
from api.endpoints import Reply, Resource
from domain.credit_ledger import CREDIT_PAYMENT_METHOD
from domain.money import Money
from domain.products import Segment
from services import changes
from services.flow_start import StillWorking
from services.requester import Requester

resource = Resource("checkouts")


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
    payment_method: str = Field(min_length=1, max_length=40,
                                description=f"one of the checkout's payment_methods, or {CREDIT_PAYMENT_METHOD} with a credit_id")
    credit_id: str | None = Field(default=None, min_length=1, max_length=40,
                                  description=f"with payment_method {CREDIT_PAYMENT_METHOD}: the credit that pays")

    @model_validator(mode="after")
    def _credit_named_with_its_method(self) -> BookCheckoutBody:
        if (self.payment_method == CREDIT_PAYMENT_METHOD) != (self.credit_id is not None):
            raise ValueError(f"payment_method {CREDIT_PAYMENT_METHOD} and a credit_id go together")
        return self


@resource.route("POST", "/v1/agent/products/{product_id}/checkouts", summary="Issue a checkout for a manual change",
                roles=("agent",), body=NewCheckout, answers={201: Checkout})
async def issue_checkout(request: web.Request, requester: Requester, body: NewCheckout) -> Reply:
    info = await changes.issue_checkout(request.app[DEPS], requester, request.match_info["product_id"],
                                        description=body.description, amount=body.amount, segments=body.segments)
    assert info.checkout_id is not None
    return Reply(201, Checkout(checkout_id=info.checkout_id, code=info.code, expires_at=info.expires_at))


@resource.route("POST", "/v1/checkouts/{checkout_id}/prebook", summary="Pre-book an agent's checkout",
                roles=("partner",), body=PrebookBody, answers={201: CheckoutContext, 202: BookedChange})
async def prebook(request: web.Request, requester: Requester, body: PrebookBody) -> Reply:
    info = await changes.prebook(request.app[DEPS], requester, request.match_info["checkout_id"], body.transaction_id)
    if isinstance(info, StillWorking):
        return Reply(202, BookedChange(code=info.code, status="processing"))
    assert info.checkout_context_id is not None
    return Reply(201, CheckoutContext(checkout_context_id=info.checkout_context_id, amount=info.total_due,
                                      payment_methods=info.payment_methods, expires_at=info.expires_at))


@resource.route("POST", "/v1/checkout-contexts/{checkout_context_id}/book", summary="Book (pay) a pre-booked checkout",
                roles=("partner",), body=BookCheckoutBody, answers={200: BookedChange, 202: BookedChange})
async def book_checkout(request: web.Request, requester: Requester, body: BookCheckoutBody) -> Reply:
    return booked(await changes.book_checkout(request.app[DEPS], requester, request.match_info["checkout_context_id"],
                                              body.payment_method, body.credit_id))
