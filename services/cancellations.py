"""Cancellations (docs/api.md#cancellations): what each request checks and does — the allowance,
the quote, the cancellation with a quote, the partner's decision, the agent's quote and queue, and
a cancelled product's positions. The flow itself is ``workflows.cancellation``; its rules are in
``domain.allowance``, ``domain.penalty`` and ``domain.refund_terms``."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from datetime import datetime, timezone
from typing import Any

from domain.allowance import Allowance, cancellation_allowance
from domain.cancellation_flow import AgentQuote, CancellationInfo, CancellationInput, Decision, PartnerDecision
from domain.codes import QUOTE_ID, FlowKind
from domain.credit_ledger import RefundTo
from domain.flow_info import Resolution
from domain.involuntary import schedule_change_waiver
from domain.money import Money
from domain.partial_cancellation import Share, cancellation_share
from domain.positions import CancellationPositions, cancellation_positions
from domain.refund_terms import cancellation_terms
from domain.refusals import Refusal, Refused, not_found
from domain.waivers import WaiverRequest, policy_penalty
from services.bootstrap import Deps
from services.flow_start import NewFlow, StillWorking, flow_in_progress, opening, start_flow, update_flow, within_sync_wait
from services.involuntary import changing_rescheduling, tell_cancellation, terms_now
from services.requester import Requester
from services.visibility import product_state, visible_flow, visible_product
from store.flow_index import QueuePosition
from store.quotes import Quote
from store.reservation_records import ProductRecord
from workflows.cancellation import CancellationWorkflow


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def allowance(deps: Deps, requester: Requester, product_id: str) -> tuple[Allowance, list[str]]:
    """May the product be cancelled now, and if not, why."""
    _product, allowed, reasons = await _allowance(deps, requester, product_id)
    return allowed, reasons


async def _allowance(deps: Deps, requester: Requester, product_id: str) -> tuple[ProductRecord, Allowance, list[str]]:
    product = await visible_product(deps, requester.principal, product_id)
    allowed, reasons = cancellation_allowance(await product_state(deps, product), product.spec.cancellation_policy.mode, _now())
    return product, allowed, reasons


def _disallowed(reasons: list[str]) -> Refused:
    """Why a cancellation may not start: the product's active flow first (retry when it ends)."""
    if "flow_in_progress" in reasons:
        return flow_in_progress()
    return Refused(Refusal.CANCELLATION_DISALLOWED, f"the product cannot be cancelled: {', '.join(reasons)}")


async def quote(deps: Deps, requester: Requester, product_id: str, waiver_request: WaiverRequest | None = None,
                traveller_ids: Sequence[str] = ()) -> Quote:
    """A quote for cancelling ``traveller_ids`` of the product now (none: every traveller still
    confirmed, docs/api.md#partial-cancellation), kept until ``AFTERSALES_QUOTE_TTL``; a retry under
    the same Idempotency-Key gets the quote its first attempt kept.

    Involuntary (the supplier changed the product, docs/flows.md#involuntary-cancellations): automatic
    at penalty 0 with the schedule change's waiver, whatever the policy. Else a partner's waiver
    request makes it manual: an agent decides (docs/flows.md#waivers)."""
    product = await visible_product(deps, requester.principal, product_id)
    now = _now()
    allowed = cancellation_terms(await product_state(deps, product), product.spec, now)
    if allowed.resolution is None:
        # A busy product included: a quote is refused for the allowance's reasons (docs/api.md#errors).
        raise Refused(Refusal.CANCELLATION_DISALLOWED, f"the product cannot be cancelled: {', '.join(allowed.reasons)}")
    share = _share(product, traveller_ids)
    # The same terms the refund procedure shows (docs/settlement.md#the-refund-procedure), on the share.
    terms, involuntary = await terms_now(deps, product, now, share.paid)
    assert terms.resolution is not None  # the allowance does not depend on the share
    policy = policy_penalty(product.spec.cancellation_policy, terms.paid, product.start - now)
    waiver = None
    if involuntary:
        waiver = schedule_change_waiver(policy, terms.paid).model_dump(mode="json")
        waiver_request = None
    resolution: Resolution = "manual" if waiver_request is not None or terms.resolution == "manual" else "automatic"
    manual = resolution == "manual"
    return await deps.store.quotes.save(Quote(
        quote_id=requester.new_id(QUOTE_ID), product_id=product.product_id, partner_id=requester.principal.principal_id,
        resolution=resolution, paid=terms.paid.model_dump(mode="json"),
        penalty=None if manual else _stored(terms.penalty), refund=None if manual else _stored(terms.refund),
        created_at=now, expires_at=now + deps.settings.quote_ttl, involuntary=involuntary, waiver=waiver,
        waiver_request=None if waiver_request is None else waiver_request.model_dump(mode="json"),
        policy_penalty=_stored(policy), traveller_ids=list(share.traveller_ids),
    ))


def _share(product: ProductRecord, traveller_ids: Sequence[str]) -> Share:
    """The share cancelling ``traveller_ids`` of the product covers, or the refusal (docs/api.md#partial-cancellation)."""
    return cancellation_share(product.spec, product.fares(), product.cancelled_travellers or {}, traveller_ids)


def _stored(money: Money | None) -> dict[str, str] | None:
    return None if money is None else money.model_dump(mode="json")


def money_of(stored: dict[str, str] | None) -> Money | None:
    """An amount as a quote keeps it (JSON mode), or None."""
    return None if stored is None else Money.model_validate(stored)


async def cancel(
    deps: Deps, requester: Requester, product_id: str, quote_id: str, refund_to: RefundTo = "original_payment"
) -> CancellationInfo:
    """Start the cancellation the quote prices, its refund going where ``refund_to`` says (a credit:
    docs/settlement.md#credits). An automatic one is waited for within ``AFTERSALES_SYNC_WAIT``: its
    final info when it ends in time; otherwise, and for a manual one, the info it started with
    (``processing``, ``awaiting_agent_quote``)."""

    async def prepare(code: str) -> NewFlow:
        found = await deps.store.quotes.quote(quote_id)
        if found is None or found[0].partner_id != requester.principal.principal_id or found[0].product_id != product_id:
            raise not_found("quote")
        kept, newest = found
        product, allowed, reasons = await _allowance(deps, requester, product_id)
        if not newest:
            raise Refused(Refusal.QUOTE_SUPERSEDED, "a newer quote exists for this product: use the newest one")
        if kept.expires_at <= _now():
            raise Refused(Refusal.QUOTE_EXPIRED, "the quote has expired: ask for a new one")
        if allowed == "disallowed":
            raise _disallowed(reasons)
        if kept.traveller_ids:
            # Still every one of them confirmed, and the policy still allows the subset.
            _share(product, kept.traveller_ids)
        flow_input = CancellationInput(
            **opening(deps, code, product),
            resolution=kept.resolution,
            traveller_ids=kept.traveller_ids,
            paid=Money.model_validate(kept.paid),
            penalty=money_of(kept.penalty),
            refund=money_of(kept.refund),
            agent_quote_window=deps.settings.agent_quote_window,
            decision_window=deps.settings.decision_window,
            refund_to=refund_to,
            credit_validity=deps.settings.credit_validity,
            involuntary=kept.involuntary,
            waiver=kept.waiver,
            waiver_request=kept.waiver_request,
            policy_penalty=money_of(kept.policy_penalty),
            # An automatic flow's ``processing`` is recorded in the write that opens it: its workflow's
            # first task goes straight to the supplier (docs/operations.md#a-cancellation-millisecond-by-millisecond).
            opened_at=_now() if kept.resolution == "automatic" else None,
        )
        return NewFlow(FlowKind.CANCELLATION, flow_input, quote_id=kept.quote_id)

    started = await start_flow(deps, requester, FlowKind.CANCELLATION, prepare)
    info = started.info
    assert isinstance(info, CancellationInfo)
    if not info.involuntary:
        # A schedule change indexed while this flow opened found no cancellation to tell: tell it now.
        changed_by = await changing_rescheduling(deps, product_id)
        if changed_by is not None:
            await tell_cancellation(deps, product_id, changed_by, info.code)
    if info.resolution == "manual":
        return info
    final: CancellationInfo | None = await within_sync_wait(deps, started.handle.result())
    return info if final is None else final


async def decide(
    deps: Deps, requester: Requester, code: str, decision: Decision, refund_to: RefundTo | None = None
) -> CancellationInfo | StillWorking:
    """The partner accepts or rejects the agent's quote (accepting, it may say where the refund goes:
    None keeps what the cancellation was started with); the flow's validator decides whether it may."""
    info = await visible_flow(deps, requester.principal, code, FlowKind.CANCELLATION, "cancellation")

    def on_closed(final: CancellationInfo) -> CancellationInfo:
        if final.repeats(decision, refund_to):
            return final
        raise Refused(Refusal.NOT_AWAITING_DECISION, f"cancellation {final.code} is not awaiting a decision")

    return await _bounded(deps, info, update_flow(
        deps, requester, info["code"], CancellationWorkflow.decide, PartnerDecision(decision=decision, refund_to=refund_to), on_closed,
    ))


async def submit_quote(
    deps: Deps, requester: Requester, code: str, penalty: Money, refund: Money, note: str, agent_id: str | None = None,
    waiver: WaiverRequest | None = None,
) -> CancellationInfo | StillWorking:
    """An agent quotes a manual cancellation; the flow's validator checks that it adds up. ``agent_id``:
    who the flow records as quoting, when not the caller (the sandbox agent, quoting for a partner)."""
    info = await visible_flow(deps, requester.principal, code, FlowKind.CANCELLATION, "cancellation")
    agent_quote = AgentQuote(penalty=penalty, refund=refund, note=note, agent_id=agent_id or requester.principal.principal_id,
                             waiver=waiver)

    def on_closed(final: CancellationInfo) -> CancellationInfo:
        if final.shows_quote(agent_quote):
            return final
        raise Refused(Refusal.NOT_AWAITING_QUOTE, f"cancellation {final.code} is not awaiting a quote")

    return await _bounded(deps, info, update_flow(
        deps, requester, info["code"], CancellationWorkflow.submit_quote, agent_quote, on_closed,
    ))


async def _bounded(
    deps: Deps, info: dict[str, Any], answer: Awaitable[CancellationInfo | None]
) -> CancellationInfo | StillWorking:
    """The flow's answer to a decision or a quote within the sync wait; else the flow as the store
    last saw it (the workflow goes on, and GET /v1/cancellations/{code} shows the outcome)."""
    done = await answer
    if done is None:
        stored = await deps.store.flows.flow(info["code"])
        return StillWorking(stored.info if stored else info)
    return done


async def agent_queue(
    deps: Deps, status: str | None, limit: int, after: QueuePosition | None
) -> tuple[list[dict[str, Any]], QueuePosition | None]:
    """The cancellations agents work on, nearest deadline first: a page, and where the next one starts."""
    return await deps.store.flows.queue("cancellation", status, limit, after)


async def positions(deps: Deps, requester: Requester, code: str) -> CancellationPositions:
    """A cancelled product's credit-note positions with VAT (docs/settlement.md#cancellation-positions)."""
    info = CancellationInfo.model_validate(
        await visible_flow(deps, requester.principal, code, FlowKind.CANCELLATION, "cancellation")
    )
    if info.status != "cancelled":
        raise Refused(Refusal.NOT_CANCELLED, f"cancellation {info.code} is {info.status}: positions exist once it is cancelled")
    product = await deps.store.reservations.product(info.product_id)
    assert product is not None  # a flow's product is never deleted
    penalty = info.penalty or Money.zero(info.paid.currency)
    return cancellation_positions(
        code=info.code, product_id=info.product_id, reservation_id=info.reservation_id, product=product.spec,
        paid=info.paid, penalty=penalty, cancelled_at=info.history[0].at if info.history else product.start,
        traveller_ids=info.traveller_ids,
        waiver=info.waiver,
    )
