"""The one way the gateway starts a flow and talks to a running one (docs/flows.md).

- :class:`FlowStarter` takes the product's one-active-flow lock (for flows that mutate the
  product), indexes the flow and starts its workflow (workflow id = flow code). Every flow kind,
  and the supplier's schedule changes, start through it.
- :func:`within_sync_wait` bounds how long a request waits for a flow's outcome.
- :func:`update_flow` sends a partner's or agent's input to the workflow, which decides: its
  validator's refusal becomes the matching problem, and a flow that has already finished answers
  with its final state.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, TypeVar

import structlog
from aiohttp import web
from pydantic import BaseModel
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode
from temporalio.workflow import UpdateMethodMultiParam

from api.context import SETTINGS, TEMPORAL
from api.endpoints import principal
from api.problems import Problem
from api.refusals import refused
from config.settings import Settings
from domain.codes import FlowKind, new_flow_code, parse_flow_code
from domain.flow_info import FlowInfo, FlowRecord
from domain.refusals import Refusal
from store.facade import Store
from store.flow_index import FlowInProgress
from store.reservation_records import ProductRecord
from workflows.cancellation import CancellationWorkflow
from workflows.change import ChangeWorkflow
from workflows.rescheduling import ReschedulingWorkflow
from workflows.special_request import SpecialRequestWorkflow

log = structlog.get_logger("api.flow_start")
T = TypeVar("T")
ArgT = TypeVar("ArgT", bound=BaseModel)
InfoT = TypeVar("InfoT", bound=FlowInfo)

# A lock whose workflow never started (the gateway died between the two) is taken back after this.
ORPHAN_AFTER = timedelta(seconds=30)

# The workflow that runs each kind of flow.
WORKFLOW_RUNS: dict[FlowKind, Callable[..., Any]] = {
    FlowKind.CANCELLATION: CancellationWorkflow.run,
    FlowKind.CHANGE: ChangeWorkflow.run,
    FlowKind.RESCHEDULING: ReschedulingWorkflow.run,
    FlowKind.SPECIAL_REQUEST: SpecialRequestWorkflow.run,
}


@dataclass(frozen=True)
class NewFlow:
    """A flow about to start: its kind, the info it starts with, and its workflow's input.

    ``exclusive`` flows mutate the product and take its one-active-flow lock when they start; a
    special request does not, and a schedule change takes it in its workflow when its turn comes.
    Starting a non-exclusive flow again (a re-delivered push) finds the flow it started.
    """

    kind: FlowKind
    info: FlowInfo
    argument: BaseModel
    exclusive: bool = True

    def record(self) -> FlowRecord:
        return FlowRecord.of(self.info, self.kind, datetime.now(timezone.utc))


class FlowStarter:
    def __init__(self, store: Store, temporal: Client, settings: Settings) -> None:
        self._store = store
        self._temporal = temporal
        self.settings = settings

    async def start(self, new: NewFlow) -> WorkflowHandle[Any, Any]:
        """Lock (when exclusive), index and start the flow; 409 ``flow_in_progress`` when the product is busy.

        The database's primary key on the lock decides races: of many simultaneous starts, one wins.
        """
        flows = self._store.flows
        record = new.record()
        indexed = await self._open(record) if new.exclusive else await flows.index(record)
        try:
            return await self._temporal.start_workflow(
                WORKFLOW_RUNS[new.kind],
                new.argument,
                id=record.code,
                task_queue=self.settings.task_queue,
                # Running: it is this flow already. Finished: it ran once, and a code names one flow forever.
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            )
        except WorkflowAlreadyStartedError:
            return self._temporal.get_workflow_handle_for(WORKFLOW_RUNS[new.kind], record.code)
        except BaseException:
            # Nothing runs this flow: undo the index row (and the lock) so that a retry starts afresh.
            if indexed:
                await flows.abandon(record.code)
            raise

    async def _open(self, record: FlowRecord) -> bool:
        flows = self._store.flows
        try:
            return await flows.open(record)
        except FlowInProgress as busy:
            if not await self._reclaim_orphan(busy.holder):
                raise flow_in_progress(busy.holder) from None
        try:
            return await flows.open(record)
        except FlowInProgress as again:
            raise flow_in_progress(again.holder) from None

    async def _reclaim_orphan(self, holder: str) -> bool:
        """True when the lock's holder has no workflow and is old enough that it never will."""
        found = await self._store.flows.flow(holder)
        try:
            await self._temporal.get_workflow_handle(holder).describe()
            return False
        except RPCError as exc:
            if exc.status != RPCStatusCode.NOT_FOUND:
                return False
        # The lock and its flow row are written together: a lock without a row is not an orphan to take.
        if found is None or datetime.now(timezone.utc) - found.created_at < ORPHAN_AFTER:
            return False
        log.warning("orphan_lock_reclaimed", flow_code=holder)
        await self._store.flows.abandon(holder)
        return True


FLOW_STARTER = web.AppKey("flow_starter", FlowStarter)


def starter(request: web.Request) -> FlowStarter:
    return request.app[FLOW_STARTER]


_RNG = secrets.SystemRandom()


def new_code(request: web.Request, kind: FlowKind) -> str:
    """A new flow code. With an ``Idempotency-Key`` it is the same for the same caller, key and
    route, so a retry whose first answer was lost finds the flow the first attempt started
    instead of starting another (docs/api.md#idempotency)."""
    key = request.headers.get("Idempotency-Key")
    who = principal(request)
    if not key or who is None:
        return new_flow_code(kind, _RNG)
    seed = hashlib.sha256(f"{who.role}:{who.principal_id}\n{key}\n{request.method} {request.path}".encode()).digest()
    return new_flow_code(kind, random.Random(seed))


def opening(request: web.Request, kind: FlowKind, product: ProductRecord) -> dict[str, Any]:
    """The fields every flow input starts with (``domain.flow_info.FlowInput``) for a flow on ``product``."""
    return {
        "code": new_code(request, kind),
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
) -> InfoT:
    """Send ``argument`` to the running flow's ``update`` and return its answer.

    The workflow decides, not the store's projection of it: a validator's refusal becomes its
    problem (``api.refusals``). Once the flow has finished, ``on_closed`` turns its final state
    into the answer (the same decision repeated answers like the first) or raises a refusal.
    """
    run = WORKFLOW_RUNS[parse_flow_code(code)]
    handle: WorkflowHandle[Any, InfoT] = request.app[TEMPORAL].get_workflow_handle_for(run, code)
    try:
        return await handle.execute_update(update, argument)
    except WorkflowUpdateFailedError as failed:
        raise problem_of(failed.cause) from None
    except RPCError as exc:
        # The flow finished between the caller's last look and this update.
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
    return on_closed(await handle.result())


_REFUSAL_TYPES = frozenset(refusal.value for refusal in Refusal)


def problem_of(cause: BaseException | None) -> Exception:
    """The problem for an update validator's refusal; anything else is not a refusal and stays an error."""
    if isinstance(cause, ApplicationError) and cause.type in _REFUSAL_TYPES:
        errors = list(cause.details[0]) if cause.details else None
        return refused(Refusal(cause.type), cause.message, errors)
    return RuntimeError(f"the flow's update failed: {cause!r}")
