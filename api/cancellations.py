"""Cancellations (docs/api.md#cancellations): allowance → quote → cancel, the flow info, the
partner's decision and the agent's quote and queue. What each request checks and does is
``services.cancellations``; the flow itself is ``workflows.cancellation``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.app_keys import DEPS
from api.endpoints import Reply, Resource
from domain.allowance import Allowance
from domain.cancellation_flow import CancellationInfo
from domain.codes import FlowKind
from domain.credit_ledger import RefundTo
from domain.flow_info import is_terminal
from domain.money import Money
from domain.positions import CancellationPositions
from domain.refusals import invalid_field
from domain.waivers import Waiver, WaiverRequest
from services import cancellations
from services.flow_start import StillWorking
from services.requester import Requester
from services.visibility import visible_flow
from store.flow_index import QueuePosition

resource = Resource("cancellations")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CancellationAllowance(BaseModel):
    product_id: str
    allowance: Allowance
    reasons: list[str]


class NewQuote(_Body):
    traveller_ids: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        default_factory=list, max_length=20,
        description="the travellers to cancel (docs/api.md#partial-cancellation); absent or empty: every traveller still confirmed")
    waiver_request: WaiverRequest | None = Field(
        default=None, description="ask for the penalty to be waived: the quote becomes manual, an agent decides "
                                  "(docs/flows.md#waivers)")


class CancellationQuote(BaseModel):
    quote_id: str
    product_id: str
    resolution: Literal["automatic", "manual"]
    traveller_ids: list[str] = Field(description="the travellers it cancels; `paid` is the sum of their fares")
    paid: Money
    penalty: Money | None
    refund: Money | None
    expires_at: datetime
    involuntary: bool = Field(default=False, description="the airline changed the product: penalty 0 whatever the policy")
    waiver: Waiver | None = Field(default=None, description="the penalty waived and why (involuntary: SCHEDULE_CHANGE)")
    waiver_request: WaiverRequest | None = Field(default=None, description="the waiver the partner asked for")


_REFUND_TO = "where the refund goes: back to the original payment, or into a credit (docs/settlement.md#credits)"


class NewCancellation(_Body):
    quote_id: str = Field(min_length=1, max_length=60)
    refund_to: RefundTo = Field(default="original_payment", description=_REFUND_TO)


class CancellationStarted(BaseModel):
    code: str
    status: str
    traveller_ids: list[str] | None = Field(default=None, description="the travellers it cancels")
    penalty: Money | None = None
    refund: Money | None = None
    refund_to: RefundTo = "original_payment"
    credit_id: str | None = Field(default=None, description="the credit the refund became (refund_to: credit)")


class DecisionBody(_Body):
    decision: Literal["accept", "reject"]
    refund_to: RefundTo | None = Field(default=None, description=_REFUND_TO + "; with accept only, absent: as the "
                                                                              "cancellation was started")

    @model_validator(mode="after")
    def _refund_to_with_accept(self) -> DecisionBody:
        if self.refund_to is not None and self.decision != "accept":
            raise ValueError("refund_to goes with accept: a rejected quote refunds nothing")
        return self


class AgentQuoteBody(_Body):
    penalty: Money
    refund: Money
    note: str = Field(default="", max_length=2000)
    waiver: WaiverRequest | None = Field(
        default=None, description="waive all or part of the penalty, and why (docs/flows.md#waivers)")


class FlowList(BaseModel):
    items: list[CancellationInfo]
    next: str | None


class AgentQueueQuery(_Body):
    status: str | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=80)


def answered(answer: CancellationInfo | StillWorking) -> Reply:
    """The flow's answer within the sync wait; else 202 with the flow as the store last saw it (the
    workflow goes on, and GET /v1/cancellations/{code} shows the outcome)."""
    return Reply(202, answer.recorded) if isinstance(answer, StillWorking) else Reply(200, answer)


@resource.route("GET", "/v1/products/{product_id}/cancellation-allowance", summary="May this product be cancelled",
                roles=("partner", "agent"), answers={200: CancellationAllowance})
async def get_allowance(request: web.Request, requester: Requester) -> Reply:
    product_id = request.match_info["product_id"]
    allowance, reasons = await cancellations.allowance(request.app[DEPS], requester, product_id)
    return Reply(200, CancellationAllowance(product_id=product_id, allowance=allowance, reasons=reasons))


@resource.route("POST", "/v1/products/{product_id}/cancellation-quotes", summary="Quote a cancellation",
                roles=("partner",), body=NewQuote, answers={201: CancellationQuote})
async def create_quote(request: web.Request, requester: Requester, body: NewQuote) -> Reply:
    kept = await cancellations.quote(request.app[DEPS], requester, request.match_info["product_id"], body.waiver_request,
                                     body.traveller_ids)
    return Reply(201, CancellationQuote(
        quote_id=kept.quote_id, product_id=kept.product_id, resolution=kept.resolution,
        traveller_ids=kept.traveller_ids or [],
        paid=Money.model_validate(kept.paid), penalty=cancellations.money_of(kept.penalty),
        refund=cancellations.money_of(kept.refund), expires_at=kept.expires_at, involuntary=kept.involuntary,
        waiver=None if kept.waiver is None else Waiver.model_validate(kept.waiver),
        waiver_request=None if kept.waiver_request is None else WaiverRequest.model_validate(kept.waiver_request),
    ))


@resource.route("POST", "/v1/products/{product_id}/cancellations", summary="Cancel with a quote",
                roles=("partner",), body=NewCancellation, answers={200: CancellationStarted, 202: CancellationStarted})
async def cancel(request: web.Request, requester: Requester, body: NewCancellation) -> Reply:
    info = await cancellations.cancel(request.app[DEPS], requester, request.match_info["product_id"], body.quote_id,
                                      body.refund_to)
    if not is_terminal(info.status):  # a manual flow, or an automatic one still processing after the sync wait
        return Reply(202, CancellationStarted(code=info.code, status=info.status, traveller_ids=info.traveller_ids,
                                              refund_to=info.refund_to))
    return Reply(200, CancellationStarted(code=info.code, status=info.status, traveller_ids=info.traveller_ids,
                                          penalty=info.penalty, refund=info.refund, refund_to=info.refund_to,
                                          credit_id=info.credit_id))


@resource.route("GET", "/v1/cancellations/{code}", summary="A cancellation's flow info",
                roles=("partner", "agent"), answers={200: CancellationInfo})
async def get_cancellation(request: web.Request, requester: Requester) -> Reply:
    return Reply(200, await visible_flow(request.app[DEPS], requester.principal, request.match_info["code"],
                                         FlowKind.CANCELLATION, "cancellation"))


@resource.route("PATCH", "/v1/cancellations/{code}", summary="Accept or reject an agent's quote",
                roles=("partner",), body=DecisionBody, answers={200: CancellationInfo, 202: CancellationInfo})
async def decide(request: web.Request, requester: Requester, body: DecisionBody) -> Reply:
    return answered(await cancellations.decide(request.app[DEPS], requester, request.match_info["code"], body.decision,
                                                body.refund_to))


@resource.route("GET", "/v1/agent/cancellations", summary="The agents' queue of cancellations, nearest deadline first",
                roles=("agent",), query=AgentQueueQuery, answers={200: FlowList})
async def agent_queue(request: web.Request, requester: Requester, query: AgentQueueQuery) -> Reply:
    try:
        after = QueuePosition.parse(query.cursor) if query.cursor else None
    except ValueError:
        raise invalid_field("query.cursor", "not a cursor this list gave: pass the `next` of the previous page") from None
    items, end = await cancellations.agent_queue(request.app[DEPS], query.status, query.limit, after)
    # As recorded (FlowList documents the shape): the queue is read often, and never re-validated.
    return Reply(200, {"items": items, "next": end.cursor() if end else None})


@resource.route("POST", "/v1/agent/cancellations/{code}/quote", summary="Quote a manual cancellation",
                roles=("agent",), body=AgentQuoteBody, answers={200: CancellationInfo, 202: CancellationInfo})
async def agent_quote(request: web.Request, requester: Requester, body: AgentQuoteBody) -> Reply:
    return answered(await cancellations.submit_quote(
        request.app[DEPS], requester, request.match_info["code"], penalty=body.penalty, refund=body.refund, note=body.note,
        waiver=body.waiver,
    ))


@resource.route("GET", "/v1/cancellations/{code}/positions",
                summary="A cancelled product's credit-note positions with VAT",
                roles=("partner", "agent", "admin"), answers={200: CancellationPositions})
async def get_positions(request: web.Request, requester: Requester) -> Reply:
    return Reply(200, await cancellations.positions(request.app[DEPS], requester, request.match_info["code"]))
