"""An operator's view of, and retry of, a flow parked on a record the store refused for good
(docs/operations.md#a-refused-record): the workflow's own ``refused_record`` query and ``retry_record``
update. Nothing here writes the flow's state: the workflow records its transition again itself."""

from __future__ import annotations

import asyncio
from typing import Any, NoReturn

from temporalio.client import WorkflowHandle
from temporalio.service import RPCError, RPCStatusCode

from domain.codes import parse_flow_code
from domain.flow_info import FlowInfo, is_terminal
from domain.record_retry import RecordRetried, RecordRetryRequest, RefusedRecord
from domain.refusals import Refusal, Refused, not_found
from services.bootstrap import Deps
from services.flow_start import FlowUnavailable, update_flow
from services.requester import Requester
from store.flow_index import RefusedRow
from workflows.flow_transitions import FlowWorkflow

# Parked flows are rare and each needs a person: the list is not paged beyond this.
MOST_LISTED = 500


async def parked_flows(deps: Deps) -> list[RefusedRow]:
    """Every flow parked on a refused record, as the store's rows say, the longest parked first."""
    return await deps.store.flows.refused_records(MOST_LISTED)


async def _stored_status(deps: Deps, code: str) -> str:
    """The flow's status as the store last recorded it; 404 when there is no such flow."""
    try:
        parse_flow_code(code)
    except ValueError:
        raise not_found("flow") from None
    found = await deps.store.flows.flow(code)
    if found is None:
        raise not_found("flow")
    return str(found.info["status"])


async def refused_record(deps: Deps, code: str) -> RefusedRecord | None:
    """The record the flow is parked on, as the workflow says; None when it is not parked."""
    if is_terminal(await _stored_status(deps, code)):
        return None  # a finished flow recorded its last move: nothing can be parked
    handle: WorkflowHandle[Any, Any] = deps.temporal.get_workflow_handle(code)
    try:
        async with asyncio.timeout(deps.settings.sync_wait.total_seconds()):
            refused: RefusedRecord | None = await handle.query(FlowWorkflow.refused_record)
    except TimeoutError:
        raise FlowUnavailable(code, "did not answer in time") from None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        return None
    return refused


async def retry_record(deps: Deps, requester: Requester, code: str) -> RecordRetried:
    """Ask the parked flow to record its refused transition again: recorded (it goes on) or refused again."""
    await _stored_status(deps, code)

    def on_closed(final: FlowInfo) -> NoReturn:
        raise Refused(Refusal.NO_REFUSED_RECORD, f"flow {code} has finished (status {final.status}): no refused record")

    retried = await update_flow(deps, requester, code, FlowWorkflow.retry_record,
                                RecordRetryRequest(requested_by=requester.opened_by), on_closed)
    if retried is None:
        # Taken, and the record is being retried (the database slow or away): a retry under the same
        # Idempotency-Key gets the outcome.
        raise FlowUnavailable(code, "is recording again and did not answer in time")
    return retried
