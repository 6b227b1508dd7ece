"""The one way a service starts a flow and talks to a running one (docs/flows.md#how-a-flow-starts).

- :func:`start_flow` opens a flow in the store (the product's one-active-flow lock for flows that
  mutate the product, the index row and the workflow's input, in one transaction) and starts its
  workflow (workflow id = flow code); a retry under the same Idempotency-Key finds the flow its first
  attempt opened instead (:func:`resume`). Every flow kind, and the supplier's schedule changes
  (:func:`open_and_launch`), start through here; :func:`reconcile` finishes the starts a crash
  interrupted, and every gateway sweeps it (``services.sweeps``).
- :func:`within_sync_wait` bounds how long a request waits for a flow's outcome.
- :func:`update_flow` sends a partner's or agent's input to the workflow, which decides: its
  validator's refusal is raised as :class:`~domain.refusals.Refused`, and a flow that has already
  finished answers with its final state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import structlog
from pydantic import BaseModel, ValidationError
from temporalio.client import (
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from domain.cancellation_flow import CancellationInput
from domain.change_flow import ChangeInput
from domain.codes import FlowKind, new_flow_code, parse_flow_code
from domain.flow_info import FlowInfo, FlowRecord
from domain.refusals import Refusal, Refused
from domain.rescheduling_flow import ReschedulingInput
from domain.special_request_flow import SpecialRequestInput
from services.bootstrap import Deps
from services.requester import Requester
from store.flow_index import FlowInProgress, QuoteUsed
from store.reservation_records import ProductRecord
from workflows.cancellation import CancellationWorkflow
from workflows.change import ChangeWorkflow
from workflows.rescheduling import ReschedulingWorkflow
from workflows.special_request import SpecialRequestWorkflow

log = structlog.get_logger("services.flow_start")
T = TypeVar("T")
ArgT = TypeVar("ArgT", bound=BaseModel)
InfoT = TypeVar("InfoT", bound=FlowInfo)
AnswerT = TypeVar("AnswerT")

# A flow opened this long ago whose workflow has recorded nothing may never have been started
# (the gateway died between opening and starting it): the reconciler starts it.
UNSTARTED_AFTER = timedelta(seconds=10)
RECONCILE_EVERY = timedelta(seconds=5)
RECONCILE_BATCH = 100


FlowStartInput = CancellationInput | ChangeInput | ReschedulingInput | SpecialRequestInput


@dataclass(frozen=True)
class FlowType:
    """How a kind of flow runs: its workflow's run method and the model of its input."""

    run: Callable[..., Any]
    input: type[FlowStartInput]


FLOW_TYPES: dict[FlowKind, FlowType] = {
    FlowKind.CANCELLATION: FlowType(CancellationWorkflow.run, CancellationInput),
    FlowKind.CHANGE: FlowType(ChangeWorkflow.run, ChangeInput),
    FlowKind.RESCHEDULING: FlowType(ReschedulingWorkflow.run, ReschedulingInput),
    FlowKind.SPECIAL_REQUEST: FlowType(SpecialRequestWorkflow.run, SpecialRequestInput),
}


@dataclass(frozen=True)
class NewFlow:
    """A flow about to start: its kind and its workflow's input (which gives the info it starts with).

    ``exclusive`` flows mutate the product and take its one-active-flow lock when they start; a
    special request does not, and a schedule change takes it in its workflow when its turn comes.
    Starting a non-exclusive flow again (a re-delivered push) finds the flow it started. A flow
    started from a cancellation quote uses the quote up (``quote_id``): a quote starts one flow.
    """

    kind: FlowKind
    argument: FlowStartInput
    exclusive: bool = True
    quote_id: str | None = None

    def record(self) -> FlowRecord:
        return FlowRecord.of(self.argument.initial_info(), self.kind, datetime.now(timezone.utc))


@dataclass(frozen=True)
class Started:
    """A flow as its start request answers it: its workflow, and the info it started with."""

    handle: WorkflowHandle[Any, Any]
    info: FlowInfo


@dataclass(frozen=True)
class StillWorking:
    """The flow took an input and is still working on it after ``AFTERSALES_SYNC_WAIT`` (the request
    answers 202): ``recorded`` is the flow as the store last recorded it."""

    recorded: dict[str, Any]

    @property
    def code(self) -> str:
        return str(self.recorded["code"])


class FlowUnavailable(Exception):
    """The flow could not take an input within the sync wait, or is still starting after a crash:
    nothing was taken, the caller retries (docs/api.md#errors, ``flow_unavailable``)."""

    def __init__(self, code: str, what: str) -> None:
        super().__init__(f"flow {code} {what}: retry in a few seconds (with the same Idempotency-Key to get "
                         "the answer of an input it did take)")
        self.code = code


async def start_flow(deps: Deps, requester: Requester, kind: FlowKind, prepare: Callable[[str], Awaitable[NewFlow]]) -> Started:
    """Start the flow a request asks for; ``prepare(code)`` checks the request and builds the flow.

    A retry under the same Idempotency-Key whose first attempt opened the flow already (and then
    lost its answer in a crash) skips ``prepare``, whose checks the first attempt passed and
    whose effects would now refuse it (the product is busy with, or cancelled by, this very
    flow): it finds that flow, and answers from it as the first attempt would have.
    """
    # With an Idempotency-Key the code is the same on a retry (services.requester); without one it
    # is new, so there is no earlier attempt to look for.
    code = new_flow_code(kind, requester.ids)
    if requester.seed is not None:
        resumed = await resume(deps, kind, code, requester.opened_by)
        if resumed is not None:
            return resumed
    new = await prepare(code)
    return Started(await open_and_launch(deps, new, requester.opened_by), new.argument.initial_info())


async def open_and_launch(deps: Deps, new: NewFlow, opened_by: str | None = None) -> WorkflowHandle[Any, Any]:
    """Open the flow and start its workflow; refused ``flow_in_progress`` when the product is busy,
    ``quote_used`` when its quote started another flow.

    The database decides races: of many simultaneous starts, one takes the lock (its primary key)
    and one uses the quote. No crash point leaves a lock without a workflow: the lock, the index row
    and the workflow's input are written in one transaction; the workflow is then started with the
    flow code as its id, which is idempotent; and :func:`reconcile` starts any flow opened more than
    ``UNSTARTED_AFTER`` ago whose workflow has recorded nothing.
    """
    record = new.record()
    start_input = new.argument.model_dump(mode="json")
    flows = deps.store.flows
    if not new.exclusive:
        await flows.index(record, start_input, opened_by)
    else:
        try:
            await flows.open(record, start_input, opened_by, new.quote_id)
        except FlowInProgress as busy:
            raise flow_in_progress(busy.holder) from None
        except QuoteUsed as used:
            raise Refused(Refusal.QUOTE_USED, f"this quote was used by {used.used_by}: ask for a new one") from None
    # If this fails (Temporal away, the gateway dying), the flow stays opened and the reconciler starts it.
    return await _launch(deps, new.kind, record.code, new.argument)


async def open_and_launch_many(deps: Deps, news: list[NewFlow], disruption_id: str | None = None, at_once: int = 50) -> None:
    """:func:`open_and_launch` for many non-exclusive flows (a disruption's batch): indexed in one
    transaction, then their workflows started, ``at_once`` at a time. Idempotent as one by one is:
    a flow indexed or started already is found, not opened again."""
    assert all(not new.exclusive for new in news), "only flows that take no lock are opened in bulk"
    await deps.store.flows.index_many([(new.record(), new.argument.model_dump(mode="json")) for new in news], disruption_id)
    gate = asyncio.Semaphore(at_once)

    async def launch(new: NewFlow) -> None:
        async with gate:
            await _launch(deps, new.kind, new.argument.initial_info().code, new.argument)

    # One failure fails them all (the caller retries; what was started is found then).
    async with asyncio.TaskGroup() as starts:
        for new in news:
            starts.create_task(launch(new))


async def resume(deps: Deps, kind: FlowKind, code: str, opened_by: str) -> Started | None:
    """The flow ``code`` if ``opened_by`` opened it already (a retry of the request that opened
    it): its workflow is started if a crash left it unstarted (idempotent)."""
    found = await deps.store.flows.start_input(code, opened_by)
    if found is None:
        return None
    argument = FLOW_TYPES[kind].input.model_validate(found)
    return Started(await _launch(deps, kind, code, argument), argument.initial_info())


async def _launch(deps: Deps, kind: FlowKind, code: str, argument: BaseModel) -> WorkflowHandle[Any, Any]:
    run = FLOW_TYPES[kind].run
    try:
        return await deps.temporal.start_workflow(
            run,
            argument,
            id=code,
            task_queue=deps.settings.task_queue,
            # Running: it is this flow already. Finished: it ran once, and a code names one flow forever.
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        return deps.temporal.get_workflow_handle_for(run, code)


@dataclass
class ReconcilerPass:
    """Where the reconciler's pass through the unstarted flows is. Each round goes on after the last flow
    the round before looked at, and a round that reaches the end starts the next pass from the oldest.
    A flow whose workflow runs but has recorded nothing yet (an automatic cancellation, opened as
    ``processing``, while its supplier is slow or away) is found again, but once a pass, not every round:
    however many such flows there are, a flow whose start a crash did interrupt is reached."""

    after: tuple[datetime, str] | None = None


async def reconcile(deps: Deps, at: ReconcilerPass | None = None) -> int:
    """Start every flow whose start a crash may have interrupted, a batch a round; how many were looked at."""
    at = at or ReconcilerPass()
    unstarted = await deps.store.flows.unstarted(datetime.now(timezone.utc) - UNSTARTED_AFTER, RECONCILE_BATCH, at.after)
    at.after = (unstarted[-1].created_at, unstarted[-1].code) if len(unstarted) == RECONCILE_BATCH else None
    for flow in unstarted:
        kind = FlowKind(flow.kind)
        try:
            argument = FLOW_TYPES[kind].input.model_validate(flow.start_input)
        except ValidationError:
            # Written by an older release, or by hand: one such row must not stop the others.
            log.error("flow_start_input_invalid", flow_code=flow.code, kind=flow.kind)
            continue
        await _launch(deps, kind, flow.code, argument)
        log.info("flow_start_reconciled", flow_code=flow.code, kind=flow.kind)
    return len(unstarted)


def opening(deps: Deps, code: str, product: ProductRecord) -> dict[str, Any]:
    """The fields every flow input starts with (``domain.flow_info.FlowInput``) for a flow on ``product``."""
    return {
        "code": code,
        "product_id": product.product_id,
        "reservation_id": product.reservation_id,
        "partner_id": product.partner_id,
        "webhook_retry_for": deps.settings.webhook_retry_for,
        "deadlines_advanceable": deps.settings.deadlines_advanceable,
    }


def flow_in_progress(holder: str = "") -> Refused:
    which = f" ({holder})" if holder else ""
    return Refused(Refusal.FLOW_IN_PROGRESS, f"the product has an active flow{which}; try again when it ends")


async def within_sync_wait(deps: Deps, outcome: Awaitable[T]) -> T | None:
    """``outcome`` if it comes within ``AFTERSALES_SYNC_WAIT``; None when the request should answer 202.

    Shielded: giving up waiting must not cancel the call underneath (a workflow result's poll, or an
    update the flow goes on applying).
    """
    try:
        return await asyncio.wait_for(asyncio.shield(outcome), deps.settings.sync_wait.total_seconds())
    except TimeoutError:
        return None


async def update_flow(
    deps: Deps,
    requester: Requester,
    code: str,
    update: UpdateMethodMultiParam[[Any, ArgT], AnswerT],
    argument: ArgT,
    on_closed: Callable[[InfoT], AnswerT],
) -> AnswerT | None:
    """Send ``argument`` to the running flow's ``update``: its answer within ``AFTERSALES_SYNC_WAIT``,
    or None when the flow has durably accepted it and is still working on it (the caller answers 202).
    The answer is the flow info for a partner's or agent's input, the deadline for an advance.

    The workflow decides, not the store's projection of it: a validator's refusal is raised as
    :class:`~domain.refusals.Refused`. Once the flow has finished, ``on_closed`` turns its final state
    into the answer (the same decision repeated answers like the first) or raises a refusal.
    Nothing is answered as taken before the workflow's history holds it: an input the flow could
    not accept within the wait (its worker restarting) raises :class:`FlowUnavailable`, to retry.
    """
    run = FLOW_TYPES[parse_flow_code(code)].run
    handle: WorkflowHandle[Any, InfoT] = deps.temporal.get_workflow_handle_for(run, code)
    return await update_workflow(deps, requester, handle, code, update, argument, on_closed)


async def update_workflow(
    deps: Deps,
    requester: Requester,
    handle: WorkflowHandle[Any, InfoT],
    code: str,
    update: UpdateMethodMultiParam[[Any, ArgT], AnswerT],
    argument: ArgT,
    on_closed: Callable[[InfoT], AnswerT],
) -> AnswerT | None:
    """:func:`update_flow` for any workflow of ours (a credit's expiry as well as a flow): ``code``
    names it in the answers."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deps.settings.sync_wait.total_seconds()
    try:
        async with asyncio.timeout_at(deadline):
            # A retry under the same Idempotency-Key sends the same update id: Temporal answers it with
            # the first update's outcome instead of running it again.
            accepted = await handle.start_update(
                update, argument, id=requester.update_id, wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        raise FlowUnavailable(code, "could not take this input yet") from None
    except WorkflowUpdateFailedError as failed:
        raise refusal_of(failed.cause) from None
    except RPCError as exc:
        # The flow finished between the caller's last look and this update (or has not started yet).
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return on_closed(await _final(handle, code))
    try:
        async with asyncio.timeout_at(deadline):
            return await asyncio.shield(accepted.result())
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        return None
    except WorkflowUpdateFailedError as failed:  # a validator's refusal comes with the outcome
        raise refusal_of(failed.cause) from None


async def _final(handle: WorkflowHandle[Any, InfoT], code: str) -> InfoT:
    try:
        return await handle.result()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    # Opened in the store but not started yet (a crash interrupted it): the reconciler starts it soon.
    raise FlowUnavailable(code, "is starting")


_REFUSAL_TYPES = frozenset(refusal.value for refusal in Refusal)


def refusal_of(cause: BaseException | None) -> Exception:
    """The refusal an update validator raised; anything else is not a refusal and stays an error."""
    if isinstance(cause, ApplicationError) and cause.type in _REFUSAL_TYPES:
        errors = list(cause.details[0]) if cause.details else None
        # A validator marks a refusal that holds only until the flow gets further as retryable.
        return Refused(Refusal(cause.type), cause.message, errors, not_yet=not cause.non_retryable)
    return RuntimeError(f"the flow's update failed: {cause!r}")
