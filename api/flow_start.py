"""The one way the gateway starts a flow and talks to a running one (docs/flows.md).

- :class:`FlowStarter` takes the product's one-active-flow lock (for flows that mutate the
  product), indexes the flow and starts its workflow (workflow id = flow code). Every flow kind,
  and the supplier's schedule changes, start through it; every gateway also runs its reconciler,
  which finishes the starts a crash interrupted.
- :func:`within_sync_wait` bounds how long a request waits for a flow's outcome.
- :func:`update_flow` sends a partner's or agent's input to the workflow, which decides: its
  validator's refusal becomes the matching problem, and a flow that has already finished answers
  with its final state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError
from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from api.app_keys import SETTINGS, TEMPORAL
from api.endpoints import principal
from api.problems import Problem, refused
from api.request_ids import idempotency_seed, request_ids, update_id
from config.settings import Settings
from domain.cancellation_flow import CancellationInput
from domain.change_flow import ChangeInput
from domain.codes import FlowKind, new_flow_code, parse_flow_code
from domain.flow_info import FlowInfo, FlowRecord
from domain.refusals import Refusal
from domain.rescheduling_flow import ReschedulingInput
from domain.special_request_flow import SpecialRequestInput
from store.flow_index import FlowInProgress, QuoteUsed
from store.repositories import Store
from store.reservation_records import ProductRecord
from workflows.cancellation import CancellationWorkflow
from workflows.change import ChangeWorkflow
from workflows.rescheduling import ReschedulingWorkflow
from workflows.special_request import SpecialRequestWorkflow

log = structlog.get_logger("api.flow_start")
T = TypeVar("T")
ArgT = TypeVar("ArgT", bound=BaseModel)
InfoT = TypeVar("InfoT", bound=FlowInfo)

# A flow opened this long ago whose workflow has recorded nothing may never have been started
# (the gateway died between opening and starting it): the reconciler starts it.
UNSTARTED_AFTER = timedelta(seconds=10)
RECONCILE_EVERY_S = 5.0
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


class FlowStarter:
    """Opens a flow in the store, then starts its workflow; finishes starts a crash interrupted.

    No crash point leaves a lock without a workflow (docs/flows.md#how-a-flow-starts): the lock,
    the index row and the workflow's input are written in one transaction; the workflow is then
    started with the flow code as its id, which is idempotent; and :meth:`reconcile` starts any
    flow opened more than ``UNSTARTED_AFTER`` ago whose workflow has recorded nothing.
    """

    def __init__(self, store: Store, temporal: Client, settings: Settings) -> None:
        self._store = store
        self._temporal = temporal
        self.settings = settings

    async def start(self, new: NewFlow, opened_by: str | None = None) -> WorkflowHandle[Any, Any]:
        """Open the flow and start its workflow; 409 ``flow_in_progress`` when the product is busy,
        409 ``quote_used`` when its quote started another flow.

        The database decides races: of many simultaneous starts, one takes the lock (its primary
        key) and one uses the quote. A retry under the same Idempotency-Key opens nothing new and
        finds the flow its first attempt started.
        """
        record = new.record()
        start_input = new.argument.model_dump(mode="json")
        flows = self._store.flows
        if not new.exclusive:
            await flows.index(record, start_input, opened_by)
        else:
            try:
                await flows.open(record, start_input, opened_by, new.quote_id)
            except FlowInProgress as busy:
                raise flow_in_progress(busy.holder) from None
            except QuoteUsed as used:
                raise refused(Refusal.QUOTE_USED, f"this quote was used by {used.used_by}: ask for a new one") from None
        # If this fails (Temporal away, the gateway dying), the flow stays opened and the reconciler starts it.
        return await self._launch(new.kind, record.code, new.argument)

    async def resume(self, kind: FlowKind, code: str, opened_by: str) -> Started | None:
        """The flow ``code`` if ``opened_by`` opened it already (a retry of the request that opened
        it): its workflow is started if a crash left it unstarted (idempotent)."""
        found = await self._store.flows.start_input(code, opened_by)
        if found is None:
            return None
        argument = FLOW_TYPES[kind].input.model_validate(found)
        return Started(await self._launch(kind, code, argument), argument.initial_info())

    async def _launch(self, kind: FlowKind, code: str, argument: BaseModel) -> WorkflowHandle[Any, Any]:
        run = FLOW_TYPES[kind].run
        try:
            return await self._temporal.start_workflow(
                run,
                argument,
                id=code,
                task_queue=self.settings.task_queue,
                # Running: it is this flow already. Finished: it ran once, and a code names one flow forever.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            return self._temporal.get_workflow_handle_for(run, code)

    async def reconcile(self) -> int:
        """Start every flow whose start a crash may have interrupted; how many were looked at."""
        unstarted = await self._store.flows.unstarted(datetime.now(timezone.utc) - UNSTARTED_AFTER, RECONCILE_BATCH)
        for flow in unstarted:
            kind = FlowKind(flow.kind)
            try:
                argument = FLOW_TYPES[kind].input.model_validate(flow.start_input)
            except ValidationError:
                # Written by an older release, or by hand: one such row must not stop the others.
                log.error("flow_start_input_invalid", flow_code=flow.code, kind=flow.kind)
                continue
            await self._launch(kind, flow.code, argument)
            log.info("flow_start_reconciled", flow_code=flow.code, kind=flow.kind)
        return len(unstarted)

    async def reconcile_forever(self) -> None:
        """The gateway's background duty: an outage or a failing start is logged and tried again."""
        while True:
            try:
                await self.reconcile()
            except Exception as exc:  # Temporal or the database away: the next round tries again
                log.warning("flow_reconcile_failed", error=type(exc).__name__)
            await asyncio.sleep(RECONCILE_EVERY_S)


FLOW_STARTER = web.AppKey("flow_starter", FlowStarter)


def starter(request: web.Request) -> FlowStarter:
    return request.app[FLOW_STARTER]


async def start_flow(
    request: web.Request, kind: FlowKind, prepare: Callable[[str], Awaitable[NewFlow]]
) -> Started:
    """Start the flow a request asks for; ``prepare(code)`` checks the request and builds the flow.

    A retry under the same Idempotency-Key whose first attempt opened the flow already (and then
    lost its answer in a crash) skips ``prepare``, whose checks the first attempt passed and
    whose effects would now refuse it (the product is busy with, or cancelled by, this very
    flow): it finds that flow, and answers from it as the first attempt would have.
    """
    # With an Idempotency-Key the code is the same on a retry (api.request_ids); without one it
    # is new, so there is no earlier attempt to look for.
    code = new_flow_code(kind, request_ids(request))
    who = principal(request)
    opened_by = f"{who.role}:{who.principal_id}" if who is not None else None
    if opened_by is not None and idempotency_seed(request) is not None:
        resumed = await starter(request).resume(kind, code, opened_by)
        if resumed is not None:
            return resumed
    new = await prepare(code)
    return Started(await starter(request).start(new, opened_by), new.argument.initial_info())


def opening(request: web.Request, code: str, product: ProductRecord) -> dict[str, Any]:
    """The fields every flow input starts with (``domain.flow_info.FlowInput``) for a flow on ``product``."""
    return {
        "code": code,
        "product_id": product.product_id,
        "reservation_id": product.reservation_id,
        "partner_id": product.partner_id,
        "webhook_retry_for": request.app[SETTINGS].webhook_retry_for,
    }


def flow_in_progress(holder: str) -> Problem:
    return refused(Refusal.FLOW_IN_PROGRESS, f"the product has an active flow ({holder}); try again when it ends")


async def within_sync_wait(request: web.Request, outcome: Awaitable[T]) -> T | None:
    """``outcome`` if it comes within ``AFTERSALES_SYNC_WAIT``; None when the request should answer 202.

    Shielded: giving up waiting must not cancel the call underneath (a workflow result's poll, or an
    update the flow goes on applying).
    """
    try:
        return await asyncio.wait_for(asyncio.shield(outcome), request.app[SETTINGS].sync_wait.total_seconds())
    except TimeoutError:
        return None


async def update_flow(
    request: web.Request,
    code: str,
    update: UpdateMethodMultiParam[[Any, ArgT], InfoT],
    argument: ArgT,
    on_closed: Callable[[InfoT], InfoT],
) -> InfoT | None:
    """Send ``argument`` to the running flow's ``update``: its answer within ``AFTERSALES_SYNC_WAIT``,
    or None when the flow has durably accepted it and is still working on it (the caller answers 202).

    The workflow decides, not the store's projection of it: a validator's refusal becomes its
    problem (``api.problems``). Once the flow has finished, ``on_closed`` turns its final state
    into the answer (the same decision repeated answers like the first) or raises a refusal.
    Nothing is answered as taken before the workflow's history holds it: an input the flow could
    not accept within the wait (its worker restarting) is 503 ``flow_unavailable``, to retry.
    """
    run = FLOW_TYPES[parse_flow_code(code)].run
    handle: WorkflowHandle[Any, InfoT] = request.app[TEMPORAL].get_workflow_handle_for(run, code)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + request.app[SETTINGS].sync_wait.total_seconds()
    try:
        async with asyncio.timeout_at(deadline):
            # A retry under the same Idempotency-Key sends the same update id: Temporal answers it with
            # the first update's outcome instead of running it again.
            accepted = await handle.start_update(
                update, argument, id=update_id(request), wait_for_stage=WorkflowUpdateStage.ACCEPTED
            )
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        raise flow_unavailable(code, "could not take this input yet") from None
    except WorkflowUpdateFailedError as failed:
        raise problem_of(failed.cause) from None
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
        raise problem_of(failed.cause) from None


async def _final(handle: WorkflowHandle[Any, InfoT], code: str) -> InfoT:
    try:
        return await handle.result()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    # Opened in the store but not started yet (a crash interrupted it): the reconciler starts it soon.
    raise flow_unavailable(code, "is starting")


def flow_unavailable(code: str, what: str) -> Problem:
    return Problem(503, "flow_unavailable", f"flow {code} {what}: retry in a few seconds (with the same "
                   "Idempotency-Key to get the answer of an input it did take)")


_REFUSAL_TYPES = frozenset(refusal.value for refusal in Refusal)


def problem_of(cause: BaseException | None) -> Exception:
    """The problem for an update validator's refusal; anything else is not a refusal and stays an error."""
    if isinstance(cause, ApplicationError) and cause.type in _REFUSAL_TYPES:
        errors = list(cause.details[0]) if cause.details else None
        return refused(Refusal(cause.type), cause.message, errors)
    return RuntimeError(f"the flow's update failed: {cause!r}")
