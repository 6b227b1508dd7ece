"""Inputs and drivers for each main path of a flow, shared by the tests and the history recorder."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import datetime, timedelta
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError

from domain.cancellation_flow import AgentQuote, CancellationInfo, CancellationInput, Decision, PartnerDecision
from domain.credit_ledger import CREDIT_VALIDITY, RefundTo
from domain.flow_info import Resolution
from domain.money import Money
from domain.record_retry import RecordRetried, RecordRetryRequest, RefusedRecord
from tests.waits import eventually
from tests.workflows.fakes import InMemoryStore
from workflows.cancellation import CancellationWorkflow
from workflows.flow_transitions import FlowWorkflow
from workflows.trigger_delivery import TriggerDeliveryInput, TriggerDeliveryWorkflow

# Bounds on waiting for a result: far above what a run takes, so a hang fails instead of blocking.
RESULT_WAIT = 20.0

PAID = Money.of("240", "EUR")
AGENT_QUOTE = AgentQuote(
    penalty=Money.of("40", "EUR"), refund=Money.of("200", "EUR"), note="fare rules", agent_id="agt_1"
)

CancellationHandle = WorkflowHandle[CancellationWorkflow, CancellationInfo]


def cancellation_input(code: str, resolution: Resolution, refund_to: RefundTo = "original_payment",
                       traveller_ids: list[str] | None = None, opened_at: datetime | None = None) -> CancellationInput:
    """``traveller_ids``: a partial cancellation of those travellers (docs/flows.md#partial-cancellation);
    ``opened_at``: the gateway recorded ``processing`` when it opened the flow, as it does since the
    ``processing-recorded-at-opening`` patch (None: a flow opened before, which records it itself)."""
    automatic = resolution == "automatic"
    return CancellationInput(
        traveller_ids=traveller_ids,
        code=code,
        product_id="prd_1",
        reservation_id="res_1",
        partner_id="ptn_1",
        resolution=resolution,
        paid=PAID,
        penalty=Money.of("120", "EUR") if automatic else None,
        refund=Money.of("120", "EUR") if automatic else None,
        agent_quote_window=timedelta(hours=24),
        decision_window=timedelta(hours=72),
        webhook_retry_for=timedelta(hours=72),
        refund_to=refund_to,
        credit_validity=CREDIT_VALIDITY,
        opened_at=opened_at,
    )


async def start_cancellation(
    client: Client, task_queue: str, code: str, resolution: Resolution, refund_to: RefundTo = "original_payment",
    traveller_ids: list[str] | None = None, opened_at: datetime | None = None,
) -> CancellationHandle:
    return await client.start_workflow(
        CancellationWorkflow.run, cancellation_input(code, resolution, refund_to, traveller_ids, opened_at), id=code,
        task_queue=task_queue,
    )


async def finish(handle: CancellationHandle) -> CancellationInfo:
    return await asyncio.wait_for(handle.result(), RESULT_WAIT)


async def automatic(client: Client, task_queue: str, code: str, refund_to: RefundTo = "original_payment",
                    traveller_ids: list[str] | None = None, opened_at: datetime | None = None) -> CancellationHandle:
    handle = await start_cancellation(client, task_queue, code, "automatic", refund_to, traveller_ids, opened_at)
    await finish(handle)
    return handle


async def manual(
    client: Client, task_queue: str, code: str, decision: Decision | None, refund_to: RefundTo | None = None,
    traveller_ids: list[str] | None = None,
) -> CancellationHandle:
    """Agent quotes; the partner decides (accepting, maybe with where the refund goes), or lets the
    decision window pass when ``decision`` is None."""
    handle = await start_cancellation(client, task_queue, code, "manual", traveller_ids=traveller_ids)
    await handle.execute_update(CancellationWorkflow.submit_quote, AGENT_QUOTE)
    if decision is not None:
        await handle.execute_update(CancellationWorkflow.decide, PartnerDecision(decision=decision, refund_to=refund_to))
    await finish(handle)
    return handle


async def decided_while_quote_recorded(
    client: Client, task_queue: str, code: str, store: InMemoryStore, decision: Decision = "accept"
) -> CancellationHandle:
    """The agent quotes; while the flow records the quote (``awaiting_partner_decision`` held in the
    store), the partner decides: the decision is taken, and applied once the quote is recorded."""
    store.hold = "awaiting_partner_decision"
    handle = await start_cancellation(client, task_queue, code, "manual")
    quoting = await handle.start_update(
        CancellationWorkflow.submit_quote, AGENT_QUOTE, wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    await asyncio.wait_for(store.held.wait(), RESULT_WAIT)
    deciding = await handle.start_update(
        CancellationWorkflow.decide, PartnerDecision(decision=decision), wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    store.release.set()
    await asyncio.wait_for(asyncio.gather(quoting.result(), deciding.result()), RESULT_WAIT)
    await finish(handle)
    return handle


async def unquoted(client: Client, task_queue: str, code: str) -> CancellationHandle:
    """No agent quotes within the agent window."""
    handle = await start_cancellation(client, task_queue, code, "manual")
    await finish(handle)
    return handle


async def deliver(
    client: Client, task_queue: str, event_id: str, retry_for: timedelta, initial_interval: timedelta
) -> WorkflowHandle[TriggerDeliveryWorkflow, str]:
    handle = await client.start_workflow(
        TriggerDeliveryWorkflow.run,
        TriggerDeliveryInput(event_id=event_id, retry_for=retry_for, initial_interval=initial_interval),
        id=f"trigger-{event_id}",
        task_queue=task_queue,
    )
    await asyncio.wait_for(handle.result(), RESULT_WAIT)
    return handle


async def refused(update: Awaitable[Any]) -> ApplicationError:
    """The flow's refusal of ``update``; fails the test if the flow takes it."""
    try:
        await update
    except WorkflowUpdateFailedError as failed:
        assert isinstance(failed.cause, ApplicationError)
        return failed.cause
    raise AssertionError("the flow took an update it must refuse")


async def parked(handle: WorkflowHandle[Any, Any]) -> RefusedRecord:
    """The record the flow is parked on, once it is (asked of the workflow until then, within a bound)."""
    return await eventually(lambda: handle.query(FlowWorkflow.refused_record), RESULT_WAIT,
                            f"{handle.id} parked on a refused record")


async def retry_record(handle: WorkflowHandle[Any, Any], requested_by: str = "adm_ops") -> RecordRetried:
    """An operator's retry of the refused record, answered with its outcome."""
    return await handle.execute_update(FlowWorkflow.retry_record, RecordRetryRequest(requested_by=requested_by))


async def automatic_record_retried(client: Client, task_queue: str, code: str) -> CancellationHandle:
    """The store refuses the ``cancelled`` transition once (set up by the caller's store): the flow parks,
    an operator retries, and it completes."""
    handle = await start_cancellation(client, task_queue, code, "automatic")
    await parked(handle)
    await retry_record(handle)
    await finish(handle)
    return handle
