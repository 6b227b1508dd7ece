"""API.md §6: allowance → quote → cancel, the flow info, the partner's decision and the agent's quote."""

from __future__ import annotations

import asyncio
import secrets
from datetime import datetime, timezone
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.context import SETTINGS, STORE, TEMPORAL
from api.endpoints import Reply, Resource
from api.flows import product_state, run_update, start_flow, visible_flow, visible_product
from api.problems import Problem, not_found
from domain.allowance import Allowance, cancellation_allowance
from domain.codes import FlowKind, new_flow_code
from domain.flows import AgentQuote, CancellationInfo, CancellationInput, FlowRecord, PartnerDecision
from domain.money import Money
from domain.penalty import penalty_for, refund_for
from domain.products import ProductSpec
from store.accounts import Principal
from store.flows import Quote
from workflows.cancellation import CancellationWorkflow

resource = Resource("cancellations")
_RNG = secrets.SystemRandom()


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
    cursor: str | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _allowance(request: web.Request, who: Principal, product_id: str):  # type: ignore[no-untyped-def]
    product = await visible_product(request, who, product_id)
    spec: ProductSpec = product.spec
    state = await product_state(request, product)
    allowance, reasons = cancellation_allowance(state, spec.cancellation_policy.mode, _now())
    return product, spec, allowance, reasons


@resource.route("GET", "/v1/products/{product_id}/cancellation-allowance", summary="May this product be cancelled",
                roles=("partner", "agent"), answers={200: CancellationAllowance})
async def get_allowance(request: web.Request, who: Principal) -> Reply:
    product, _spec, allowance, reasons = await _allowance(request, who, request.match_info["product_id"])
    return Reply(200, CancellationAllowance(product_id=product.product_id, allowance=allowance, reasons=reasons))


@resource.route("POST", "/v1/products/{product_id}/cancellation-quotes", summary="Quote a cancellation",
                roles=("partner",), body=NewQuote, answers={201: CancellationQuote})
async def create_quote(request: web.Request, who: Principal, body: NewQuote) -> Reply:
    product, spec, allowance, reasons = await _allowance(request, who, request.match_info["product_id"])
    if allowance == "disallowed":
        raise Problem(409, "cancellation_disallowed", f"the product cannot be cancelled: {', '.join(reasons)}")
    now = _now()
    resolution: Literal["automatic", "manual"] = "manual" if allowance == "unknown" else "automatic"
    penalty = refund = None
    if resolution == "automatic":
        penalty = penalty_for(spec.cancellation_policy.tiers, spec.price, product.start - now)
        refund = refund_for(spec.price, penalty)
    answer = CancellationQuote(
        quote_id="qt_" + secrets.token_hex(10),
        product_id=product.product_id,
        resolution=resolution,
        paid=spec.price,
        penalty=penalty,
        refund=refund,
        expires_at=now + request.app[SETTINGS].quote_ttl,
    )
    stored = answer.model_dump(mode="json")
    await request.app[STORE].flows.save_quote(
        Quote(
            quote_id=answer.quote_id, product_id=product.product_id, partner_id=who.principal_id,
            resolution=resolution, paid=stored["paid"], penalty=stored["penalty"], refund=stored["refund"],
            created_at=now, expires_at=answer.expires_at,
        )
    )
    return Reply(201, answer)


@resource.route("POST", "/v1/products/{product_id}/cancellations", summary="Cancel with a quote",
                roles=("partner",), body=NewCancellation, answers={200: CancellationStarted, 202: CancellationStarted})
async def cancel(request: web.Request, who: Principal, body: NewCancellation) -> Reply:
    product_id = request.match_info["product_id"]
    found = await request.app[STORE].flows.quote(body.quote_id)
    if found is None or found[0].partner_id != who.principal_id or found[0].product_id != product_id:
        raise not_found("quote")
    quote, newest = found
    product, _spec, allowance, reasons = await _allowance(request, who, product_id)
    if not newest:
        raise Problem(409, "quote_superseded", "a newer quote exists for this product: use the newest one")
    if quote.expires_at <= _now():
        raise Problem(410, "quote_expired", "the quote has expired: ask for a new one")
    if "flow_in_progress" in reasons:
        raise Problem(409, "flow_in_progress", "the product has an active flow; try again when it ends")
    if allowance == "disallowed":
        raise Problem(409, "cancellation_disallowed", f"the product cannot be cancelled: {', '.join(reasons)}")

    settings = request.app[SETTINGS]
    flow_input = CancellationInput(
        code=new_flow_code(FlowKind.CANCELLATION, _RNG),
        product_id=product.product_id,
        reservation_id=product.reservation_id,
        partner_id=who.principal_id,
        resolution=quote.resolution,  # type: ignore[arg-type]
        paid=Money.model_validate(quote.paid),
        penalty=Money.model_validate(quote.penalty) if quote.penalty else None,
        refund=Money.model_validate(quote.refund) if quote.refund else None,
        agent_quote_window=settings.agent_quote_window,
        decision_window=settings.decision_window,
        webhook_retry_for=settings.webhook_retry_for,
    )
    info = flow_input.initial_info()
    handle = await start_flow(
        request,
        FlowRecord(
            code=info.code, kind=FlowKind.CANCELLATION, product_id=info.product_id,
            reservation_id=info.reservation_id, partner_id=info.partner_id, status=info.status,
            terminal=False, info=info.model_dump(mode="json"), at=_now(),
        ),
        CancellationWorkflow.run,
        flow_input,
    )
    if flow_input.resolution == "manual":
        return Reply(202, CancellationStarted(code=info.code, status=info.status))
    try:
        # Shielded: giving up waiting must not cancel the workflow-result call's underlying poll.
        final: CancellationInfo = await asyncio.wait_for(
            asyncio.shield(handle.result()), settings.sync_wait.total_seconds()
        )
    except asyncio.TimeoutError:
        return Reply(202, CancellationStarted(code=info.code, status="processing"))
    return Reply(200, CancellationStarted(code=final.code, status=final.status, penalty=final.penalty,
                                          refund=final.refund))


@resource.route("GET", "/v1/cancellations/{code}", summary="A cancellation's flow info",
                roles=("partner", "agent"), answers={200: CancellationInfo})
async def get_cancellation(request: web.Request, who: Principal) -> Reply:
    code = request.match_info["code"]
    if not code.startswith("CAN-"):
        raise not_found("cancellation")
    return Reply(200, await visible_flow(request, who, code))


@resource.route("PATCH", "/v1/cancellations/{code}", summary="Accept or reject an agent's quote",
                roles=("partner",), body=DecisionBody, answers={200: CancellationInfo})
async def decide(request: web.Request, who: Principal, body: DecisionBody) -> Reply:
    code = request.match_info["code"]
    info = await visible_flow(request, who, code)
    if info.get("decision") is not None or info["status"] not in ("awaiting_partner_decision",):
        # Finished flows answer from the store: the same decision again is the same 200.
        if info.get("decision") == body.decision:
            return Reply(200, info)
        raise Problem(409, "not_awaiting_decision", f"cancellation {code} is not awaiting a decision")
    handle = request.app[TEMPORAL].get_workflow_handle(code)
    result: CancellationInfo = await run_update(handle, CancellationWorkflow.decide, PartnerDecision(decision=body.decision))
    return Reply(200, result)


@resource.route("GET", "/v1/agent/cancellations", summary="The agents' queue of cancellations",
                roles=("agent",), query=AgentQueueQuery, answers={200: FlowList})
async def agent_queue(request: web.Request, who: Principal, query: AgentQueueQuery) -> Reply:
    items = await request.app[STORE].flows.infos("cancellation", query.status, query.limit + 1, query.cursor)
    page = items[: query.limit]
    return Reply(200, FlowList(items=page, next=page[-1]["code"] if len(items) > query.limit else None))


@resource.route("POST", "/v1/agent/cancellations/{code}/quote", summary="Quote a manual cancellation",
                roles=("agent",), body=AgentQuoteBody, answers={200: CancellationInfo})
async def agent_quote(request: web.Request, who: Principal, body: AgentQuoteBody) -> Reply:
    code = request.match_info["code"]
    info = await visible_flow(request, who, code)
    if info["status"] != "awaiting_agent_quote":
        raise Problem(409, "not_awaiting_quote", f"cancellation {code} is not awaiting a quote")
    handle = request.app[TEMPORAL].get_workflow_handle(code)
    result: CancellationInfo = await run_update(
        handle, CancellationWorkflow.submit_quote,
        AgentQuote(penalty=body.penalty, refund=body.refund, note=body.note, agent_id=who.principal_id),
    )
    return Reply(200, result)
