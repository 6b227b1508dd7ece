"""What the sandbox's own endpoints do (docs/api.md#sandbox): a reservation created in the embedded
supplier, the sandbox airline's schedule change, received like any supplier's push, a flow's pending
deadline made to pass now, and the sandbox agent's quote of a manual cancellation. Each goes through
the same entry point, workflow update or workflow wait as the real thing: nothing here writes a
flow's state or skips a step of it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, NoReturn

from temporalio.client import WorkflowHandle

from domain.cancellation_flow import CancellationInfo
from domain.codes import CREDIT_ID, SANDBOX_CHANGE_ID, FlowKind, parse_flow_code
from domain.deadline_advance import AdvancedDeadline, AdvanceRequest
from domain.flow_info import FlowInfo, is_terminal
from domain.money import Money
from domain.products import FlightProduct, ReservationSpec
from domain.refusals import Refusal, Refused, not_found
from domain.rescheduling_flow import ChangeKind, ScheduleChange, shifted
from services import cancellations, credits
from services.bootstrap import Deps
from services.flow_start import FlowUnavailable, StillWorking, update_flow, update_workflow
from services.requester import Requester
from services.reschedulings import receive_schedule_change
from services.visibility import visible_flow, visible_product, visible_reservation
from workflows.credit_expiry import CreditExpiryWorkflow, expiry_workflow_id
from workflows.deadlines import DeadlineWaits

# Who quotes in the sandbox: the flow records its quotes by agent, and this one is nobody's key.
SANDBOX_AGENT_ID = "sandbox-agent"


async def create_reservation(deps: Deps, requester: Requester, spec: ReservationSpec) -> dict[str, Any]:
    """The reservation as the partner reads it back; its ids come from the request's (a retry under
    the same Idempotency-Key creates nothing twice)."""
    reservation_id = await deps.store.reservations.create(requester.principal.principal_id, spec, requester.ids)
    return await visible_reservation(deps, requester.principal, reservation_id)


async def mock_schedule_change(deps: Deps, requester: Requester, product_id: str, kind: ChangeKind, delay_minutes: int) -> str:
    """The sandbox airline moves (``time_change``, by ``delay_minutes``) or cancels one of the
    partner's flights; the rescheduling flow's code."""
    product = await visible_product(deps, requester.principal, product_id)
    flight = product.spec
    if not isinstance(flight, FlightProduct):
        raise not_found("flight product")
    proposed = shifted(flight.segments, timedelta(minutes=delay_minutes)) if kind == "time_change" else []
    change = ScheduleChange(
        # Each mock is a new change, as a real airline's next push would be.
        change_id=requester.new_id(SANDBOX_CHANGE_ID),
        product_id=product.product_id,
        kind=kind,
        proposed_segments=proposed,
    )
    # The same entry point a supplier's push takes in production.
    return await receive_schedule_change(deps, change)


async def advance_deadline(deps: Deps, requester: Requester, code: str) -> AdvancedDeadline:
    """Make the deadline the partner's flow waits on pass now (docs/flows.md#advancing-a-deadline):
    the flow's own ``advance_deadline`` update, which its validator refuses when none is pending.
    A credit's id advances its expiry the same way."""
    if code.startswith(CREDIT_ID.prefix):
        return await _advance_credit_expiry(deps, requester, code)
    try:
        kind = parse_flow_code(code)
    except ValueError:
        raise not_found("flow") from None
    recorded = await visible_flow(deps, requester.principal, code, kind, "flow")
    if is_terminal(recorded["status"]):
        raise _no_pending_deadline(code, recorded["status"])

    def on_closed(final: FlowInfo) -> NoReturn:
        raise _no_pending_deadline(code, final.status)

    advanced = await update_flow(deps, requester, code, DeadlineWaits.advance_deadline,
                                 AdvanceRequest(requested_by=requester.opened_by), on_closed)
    if advanced is None:
        # Taken, but its answer was lost on the way (the handler answers in the task that accepts it):
        # a retry under the same Idempotency-Key gets it.
        raise FlowUnavailable(code, "did not answer in time")
    return advanced


async def _advance_credit_expiry(deps: Deps, requester: Requester, credit_id: str) -> AdvancedDeadline:
    """A credit's validity passes now: the expiry workflow's own ``advance_deadline`` update."""
    found = await credits.credit(deps, requester, credit_id)  # another partner's: 404
    if found.state != "active":
        raise _no_pending_deadline(credit_id, found.state)

    def on_closed(final: FlowInfo) -> NoReturn:
        raise _no_pending_deadline(credit_id, "expired")

    handle: WorkflowHandle[Any, Any] = deps.temporal.get_workflow_handle(expiry_workflow_id(credit_id))
    advanced = await update_workflow(deps, requester, handle, credit_id, CreditExpiryWorkflow.advance_deadline,
                                     AdvanceRequest(requested_by=requester.opened_by), on_closed)
    if advanced is None:
        raise FlowUnavailable(credit_id, "did not answer in time")
    return advanced


def _no_pending_deadline(code: str, status: str) -> Refused:
    return Refused(Refusal.NO_PENDING_DEADLINE, f"flow {code} waits on no deadline now (status {status})")


async def agent_quote(deps: Deps, requester: Requester, code: str, penalty: Money, note: str) -> CancellationInfo | StillWorking:
    """The sandbox agent quotes the partner's own manual cancellation: refund = paid − penalty, sent
    through the same workflow update an agent's quote takes (``services.cancellations.submit_quote``)."""
    paid = CancellationInfo.model_validate(
        await visible_flow(deps, requester.principal, code, FlowKind.CANCELLATION, "cancellation")
    ).paid
    # The refund is worked out here, so the penalty alone must make sense (as the agent's quote's checks
    # would say of it, with the same problem).
    if penalty.currency != paid.currency:
        raise _invalid_penalty("penalty.currency", f"must be the paid amount's currency, {paid.currency}")
    if penalty.amount > paid.amount:
        raise _invalid_penalty("penalty.amount", f"must be at most the paid amount {paid}")
    return await cancellations.submit_quote(deps, requester, code, penalty=penalty, refund=paid - penalty, note=note,
                                            agent_id=SANDBOX_AGENT_ID)


def _invalid_penalty(field: str, message: str) -> Refused:
    return Refused(Refusal.INVALID_QUOTE, "the quote does not add up", [{"field": field, "message": message}])
