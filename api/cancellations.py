"""Cancellations (docs/api.md#cancellations): allowance → quote → cancel, the flow info, the
partner's decision and the agent's quote. The flow itself is ``workflows.cancellation``."""

from __future__ import annotations

from collections.abc import Awaitable
from datetime import datetime, timezone
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.access import product_state, visible_flow, visible_product
from api.app_keys import SETTINGS, STORE
from api.endpoints import Reply, Resource
from api.flow_start import NewFlow, opening, start_flow, update_flow, within_sync_wait
from api.problems import invalid_field, not_found, refused
from api.request_ids import token
from domain.allowance import Allowance, cancellation_allowance
from domain.cancellation_flow import AgentQuote, CancellationInfo, CancellationInput, PartnerDecision
from domain.codes import QUOTE_ID, FlowKind
from domain.money import Money
from domain.positions import CancellationPositions, cancellation_positions
from domain.products import ProductSpec
from domain.refund_terms import cancellation_terms
from domain.refusals import Refusal
from store.accounts import Principal
from store.flow_index import QueuePosition
from store.quotes import Quote
from store.reservation_records import ProductRecord
from workflows.cancellation import CancellationWorkflow

resource = Resource("cancellations")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CancellationAllowance(BaseModel):
    product_id: str
    allowance: Allowance
    reasons: list[str]


class NewQuote(_Body):
    pass


class CancellationQuote(BaseModel):
    quote_id: str
    product_id: str
    resolution: Literal["automatic", "manual"]
    paid: Money
    penalty: Money | None
    refund: Money | None
    expires_at: datetime


class NewCancellation(_Body):
    quote_id: str = Field(min_length=1, max_length=60)


class CancellationStarted(BaseModel):
    code: str
    status: str
    penalty: Money | None = None
    refund: Money | None = None


class DecisionBody(_Body):
    decision: Literal["accept", "reject"]


class AgentQuoteBody(_Body):
    penalty: Money
    refund: Money
    note: str = Field(default="", max_length=2000)


class FlowList(BaseModel):
    items: list[dict[str, Any]]
    next: str | None


class AgentQueueQuery(_Body):
    status: str | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=80)


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _allowance(
    request: web.Request, who: Principal, product_id: str
) -> tuple[ProductRecord, ProductSpec, Allowance, list[str]]:
    product = await visible_product(request, who, product_id)
    spec: ProductSpec = product.spec
    state = await product_state(request, product)
    allowance, reasons = cancellation_allowance(state, spec.cancellation_policy.mode, _now())
    return product, spec, allowance, reasons


def _disallowed(reasons: list[str]) -> Exception:
    if "flow_in_progress" in reasons:
        return refused(Refusal.FLOW_IN_PROGRESS, "the product has an active flow; try again when it ends")
    return refused(Refusal.CANCELLATION_DISALLOWED, f"the product cannot be cancelled: {', '.join(reasons)}")


async def _bounded(request: web.Request, info: dict[str, Any], answer: Awaitable[CancellationInfo | None]) -> Reply:
    """The flow's answer to a decision or a quote within the sync wait; else 202 with the flow as the
    store last saw it (the workflow goes on, and GET /v1/cancellations/{code} shows the outcome)."""
    done = await answer
    if done is None:
        stored = await request.app[STORE].flows.flow(info["code"])
        return Reply(202, stored.info if stored else info)
    return Reply(200, done)


@resource.route("GET", "/v1/products/{product_id}/cancellation-allowance", summary="May this product be cancelled",
                roles=("partner", "agent"), answers={200: CancellationAllowance})
async def get_allowance(request: web.Request, who: Principal) -> Reply:
    product, _spec, allowance, reasons = await _allowance(request, who, request.match_info["product_id"])
    return Reply(200, CancellationAllowance(product_id=product.product_id, allowance=allowance, reasons=reasons))


@resource.route("POST", "/v1/products/{product_id}/cancellation-quotes", summary="Quote a cancellation",
                roles=("partner",), body=NewQuote, answers={201: CancellationQuote})
async def create_quote(request: web.Request, who: Principal, body: NewQuote) -> Reply:
    product = await visible_product(request, who, request.match_info["product_id"])
    now = _now()
    # The same terms the refund procedure shows (docs/settlement.md#the-refund-procedure).
    terms = cancellation_terms(await product_state(request, product), product.spec, now)
    if terms.resolution is None:
        raise refused(Refusal.CANCELLATION_DISALLOWED, f"the product cannot be cancelled: {', '.join(terms.reasons)}")
    kept = await request.app[STORE].quotes.save(Quote(
        quote_id=token(request, QUOTE_ID), product_id=product.product_id, partner_id=who.principal_id,
        resolution=terms.resolution, paid=terms.paid.model_dump(mode="json"), penalty=_stored(terms.penalty),
        refund=_stored(terms.refund), created_at=now, expires_at=now + request.app[SETTINGS].quote_ttl,
    ))
    # Answered from what is kept: a retry under the same Idempotency-Key gets the first quote.
    return Reply(201, CancellationQuote(
        quote_id=kept.quote_id, product_id=kept.product_id, resolution=kept.resolution,
        paid=Money.model_validate(kept.paid), penalty=_money(kept.penalty), refund=_money(kept.refund),
        expires_at=kept.expires_at,
    ))


def _stored(money: Money | None) -> dict[str, str] | None:
    return None if money is None else money.model_dump(mode="json")


def _money(stored: dict[str, str] | None) -> Money | None:
    return None if stored is None else Money.model_validate(stored)


@resource.route("POST", "/v1/products/{product_id}/cancellations", summary="Cancel with a quote",
                roles=("partner",), body=NewCancellation, answers={200: CancellationStarted, 202: CancellationStarted})
async def cancel(request: web.Request, who: Principal, body: NewCancellation) -> Reply:
    async def prepare(code: str) -> NewFlow:
        product_id = request.match_info["product_id"]
        found = await request.app[STORE].quotes.quote(body.quote_id)
        if found is None or found[0].partner_id != who.principal_id or found[0].product_id != product_id:
            raise not_found("quote")
        quote, newest = found
        product, _spec, allowance, reasons = await _allowance(request, who, product_id)
        if not newest:
            raise refused(Refusal.QUOTE_SUPERSEDED, "a newer quote exists for this product: use the newest one")
        if quote.expires_at <= _now():
            raise refused(Refusal.QUOTE_EXPIRED, "the quote has expired: ask for a new one")
        if allowance == "disallowed":
            raise _disallowed(reasons)
        settings = request.app[SETTINGS]
        flow_input = CancellationInput(
            **opening(request, code, product),
            resolution=quote.resolution,
            paid=Money.model_validate(quote.paid),
            penalty=_money(quote.penalty),
            refund=_money(quote.refund),
            agent_quote_window=settings.agent_quote_window,
            decision_window=settings.decision_window,
        )
        return NewFlow(FlowKind.CANCELLATION, flow_input, quote_id=quote.quote_id)

    started = await start_flow(request, FlowKind.CANCELLATION, prepare)
    info = started.info
    assert isinstance(info, CancellationInfo)
    if info.resolution == "manual":
        return Reply(202, CancellationStarted(code=info.code, status=info.status))
    final: CancellationInfo | None = await within_sync_wait(request, started.handle.result())
    if final is None:
        return Reply(202, CancellationStarted(code=info.code, status="processing"))
    return Reply(200, CancellationStarted(code=final.code, status=final.status, penalty=final.penalty,
                                          refund=final.refund))


@resource.route("GET", "/v1/cancellations/{code}", summary="A cancellation's flow info",
                roles=("partner", "agent"), answers={200: CancellationInfo})
async def get_cancellation(request: web.Request, who: Principal) -> Reply:
    return Reply(200, await visible_flow(request, who, request.match_info["code"], FlowKind.CANCELLATION,
                                         "cancellation"))


@resource.route("PATCH", "/v1/cancellations/{code}", summary="Accept or reject an agent's quote",
                roles=("partner",), body=DecisionBody, answers={200: CancellationInfo, 202: CancellationInfo})
async def decide(request: web.Request, who: Principal, body: DecisionBody) -> Reply:
    info = await visible_flow(request, who, request.match_info["code"], FlowKind.CANCELLATION, "cancellation")

    def on_closed(final: CancellationInfo) -> CancellationInfo:
        if final.repeats(body.decision):
            return final
        raise refused(Refusal.NOT_AWAITING_DECISION, f"cancellation {final.code} is not awaiting a decision")

    return await _bounded(request, info, update_flow(
        request, info["code"], CancellationWorkflow.decide, PartnerDecision(decision=body.decision), on_closed,
    ))


@resource.route("GET", "/v1/agent/cancellations", summary="The agents' queue of cancellations, nearest deadline first",
                roles=("agent",), query=AgentQueueQuery, answers={200: FlowList})
async def agent_queue(request: web.Request, who: Principal, query: AgentQueueQuery) -> Reply:
    try:
        after = QueuePosition.parse(query.cursor) if query.cursor else None
    except ValueError:
        raise invalid_field("query.cursor", "not a cursor this list gave: pass the `next` of the previous page") from None
    items, end = await request.app[STORE].flows.queue("cancellation", query.status, query.limit, after)
    return Reply(200, FlowList(items=items, next=end.cursor() if end else None))


@resource.route("POST", "/v1/agent/cancellations/{code}/quote", summary="Quote a manual cancellation",
                roles=("agent",), body=AgentQuoteBody, answers={200: CancellationInfo, 202: CancellationInfo})
async def agent_quote(request: web.Request, who: Principal, body: AgentQuoteBody) -> Reply:
    info = await visible_flow(request, who, request.match_info["code"], FlowKind.CANCELLATION, "cancellation")

    quote = AgentQuote(penalty=body.penalty, refund=body.refund, note=body.note, agent_id=who.principal_id)

    def on_closed(final: CancellationInfo) -> CancellationInfo:
        if final.shows_quote(quote):
            return final
        raise refused(Refusal.NOT_AWAITING_QUOTE, f"cancellation {final.code} is not awaiting a quote")

    return await _bounded(request, info, update_flow(
        request, info["code"], CancellationWorkflow.submit_quote, quote, on_closed,
    ))


@resource.route("GET", "/v1/cancellations/{code}/positions",
                summary="A cancelled product's credit-note positions with VAT",
                roles=("partner", "agent", "admin"), answers={200: CancellationPositions})
async def get_positions(request: web.Request, who: Principal) -> Reply:
    info = CancellationInfo.model_validate(
        await visible_flow(request, who, request.match_info["code"], FlowKind.CANCELLATION, "cancellation")
    )
    if info.status != "cancelled":
        raise refused(Refusal.NOT_CANCELLED, f"cancellation {info.code} is {info.status}: positions exist once it is cancelled")
    product = await request.app[STORE].reservations.product(info.product_id)
    assert product is not None  # a flow's product is never deleted
    penalty = info.penalty or Money.zero(info.paid.currency)
    return Reply(200, cancellation_positions(
        code=info.code, product_id=info.product_id, reservation_id=info.reservation_id, product=product.spec,
        paid=info.paid, penalty=penalty, cancelled_at=info.history[0].at if info.history else product.start,
    ))
