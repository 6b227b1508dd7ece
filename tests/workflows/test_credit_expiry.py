"""Credits in the flows, on the time-skipping server (docs/settlement.md#credits): a flow that gives its
refund as a credit records it with the transition and starts its expiry; the expiry fires at the
credit's time, once, also when no worker runs at that moment and a new one comes up later; a change
the supplier refuses leaves the credit it was booked with whole."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from domain.cancellation_flow import CancellationInfo
from domain.change_flow import Booking, ChangeInfo, Prebooking
from domain.credit_ledger import CREDIT_EXPIRED, CREDIT_VALIDITY, Credit, credit_id_for
from domain.money import Money
from domain.products import ReservationSpec
from domain.rescheduling_flow import AlternativeChoice, ReschedulingInfo
from store.repositories import Store, open_store
from store.schema import events
from tests.store.test_credit_store import cancelled_to_credit
from tests.workflows.change_fakes import ITINERARY, ChangingSupplier, change_input
from tests.workflows.conftest import Harness
from tests.workflows.fakes import FakeSupplier
from tests.workflows.rescheduling_fakes import RESULT_WAIT, ReschedulingHarness, chosen, rescheduling_harness, start_rescheduling
from tests.workflows.scenarios import automatic, finish, manual
from worker.registry import activities_over, workflow_worker
from workflows.change import ChangeWorkflow
from workflows.credit_expiry import CreditExpiryInput, CreditExpiryWorkflow, expiry_workflow_id
from workflows.rescheduling import ReschedulingWorkflow

VALID_FOR = timedelta(days=30)


@pytest_asyncio.fixture
async def real_store(database_url: str) -> AsyncIterator[Store]:
    opened = await open_store(database_url)
    yield opened
    await opened.close()


async def timer_started(handle: WorkflowHandle[Any, Any]) -> None:
    """Wait, within a bound, until the worker has run the workflow's first task: the built-in stack-trace
    query is answered only after it; then its timer is in the history."""
    await asyncio.wait_for(handle.query("__stack_trace"), RESULT_WAIT)
    events = [e.event_type for e in (await handle.fetch_history()).events]
    assert EventType.EVENT_TYPE_TIMER_STARTED in events, events


async def credit_issued_at(store: Store, at: datetime) -> Credit:
    """A credit given instead of a cancellation's refund at ``at`` (the store as the flow records it)."""
    partner, _ = await store.accounts.create_partner("Acme", None)
    reservation_id = await store.reservations.create(partner.partner_id, ReservationSpec.model_validate({
        "travellers": [{"traveller_id": "T1", "name": "Ada"}],
        "products": [{"kind": "other", "name": "Transfer", "starts_at": "2027-01-01T10:00:00+00:00",
                      "ends_at": "2027-01-01T11:00:00+00:00", "price": {"amount": "240.00", "currency": "EUR"},
                      "vat_rate": "0.10", "cancellation_policy": {"mode": "automatic"}}],
    }), random.Random())
    [product] = await store.reservations.products_of(reservation_id)
    await store.flows.record_flow(cancelled_to_credit(partner.partner_id, reservation_id, product.product_id, at=at))
    [credit] = await store.credits.of_partner(partner.partner_id)
    return credit


async def test_a_credit_expires_at_its_time_once_though_no_worker_ran_then(env: WorkflowEnvironment, real_store: Store) -> None:
    credit = await credit_issued_at(real_store, await env.get_current_time())
    workflow_id = expiry_workflow_id(credit.credit_id)
    task_queue = f"credits-{secrets.token_hex(4)}"

    def worker() -> Worker:
        # No sticky cache: the next task goes to whichever worker polls the queue, as a dead worker's
        # does once its sticky queue times out on a real server (the test server would hold it).
        return workflow_worker(env.client, task_queue, activities_over(real_store.flows, FakeSupplier(), real_store.events,
                                                                        real_store.credits), max_cached_workflows=0)

    async with worker():
        handle = await env.client.start_workflow(
            CreditExpiryWorkflow.run, CreditExpiryInput(credit_id=credit.credit_id, expires_at=credit.expires_at),
            id=workflow_id, task_queue=task_queue,
        )
        await timer_started(handle)
        await env.sleep(credit.expires_at - await env.get_current_time() - timedelta(hours=1))
        early = await real_store.credits.credit(credit.credit_id)
        assert early is not None and early.state == "active"  # an hour before: nothing yet

    # The worker is gone when the time comes. (The test server skips time up to the timer: past it,
    # it holds the clock until a worker takes the task the timer scheduled.)
    await env.sleep(credit.expires_at - await env.get_current_time())
    assert await env.get_current_time() >= credit.expires_at
    late = await real_store.credits.credit(credit.credit_id)
    assert late is not None and late.state == "active"

    async with worker():  # a new worker comes up: it finds the timer fired and records the expiry
        assert await asyncio.wait_for(handle.result(), RESULT_WAIT) == "expired"

    after = await real_store.credits.credit(credit.credit_id)
    assert after is not None and (after.state, after.remaining, after.expired) == ("expired", Money.of("0", "EUR"), credit.amount)
    [expiry] = [m for m in after.movements if m.kind == "expired"]
    assert expiry.at == credit.expires_at  # at that time, however late the worker recorded it
    async with real_store.engine.connect() as conn:
        reported = (await conn.execute(sa.select(events.c.payload).where(events.c.type == CREDIT_EXPIRED))).scalars().all()
    assert [p["data"]["credit_id"] for p in reported].count(credit.credit_id) == 1
    # Run again (a second start, a retried activity): nothing more expires.
    assert await real_store.credits.expire(credit.credit_id, credit.expires_at) == "expired"
    assert await real_store.credits.credit(credit.credit_id) == after


async def test_an_automatic_cancellation_taken_as_credit_issues_it_and_starts_its_expiry(harness: Harness) -> None:
    code = "CAN-CRED0001"
    info = await finish(await automatic(harness.client, harness.task_queue, code, refund_to="credit"))

    cancelled_at = info.history[-1].at
    assert (info.status, info.refund_to, info.credit_id, info.credit_expires_at) == (
        "cancelled", "credit", credit_id_for(code), cancelled_at + CREDIT_VALIDITY)
    # The store is told with the transition: it issues the credit in that transaction.
    assert harness.store.records[-1].info["refund_to"] == "credit"
    assert harness.store.records[-1].info["credit_id"] == credit_id_for(code)
    expiry = await harness.client.get_workflow_handle(expiry_workflow_id(credit_id_for(code))).describe()
    assert expiry.status == WorkflowExecutionStatus.RUNNING and expiry.workflow_type == "CreditExpiryWorkflow"
    assert harness.store.expiries == []  # a year to go


async def test_a_cancellation_refunded_to_the_original_payment_starts_no_expiry(harness: Harness) -> None:
    info = await finish(await automatic(harness.client, harness.task_queue, "CAN-CRED0002"))
    assert (info.refund_to, info.credit_id, info.credit_expires_at) == ("original_payment", None, None)
    history = await harness.client.get_workflow_handle("CAN-CRED0002").fetch_history()
    children = [e.start_child_workflow_execution_initiated_event_attributes.workflow_type.name for e in history.events
                if e.event_type == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED]
    assert children == ["TriggerDeliveryWorkflow"]  # its trigger's delivery only


async def test_a_partner_accepting_a_manual_quote_may_take_the_refund_as_credit(harness: Harness) -> None:
    info: CancellationInfo = await finish(await manual(harness.client, harness.task_queue, "CAN-CRED0003", "accept", "credit"))
    assert (info.status, info.refund_to, info.credit_id) == ("cancelled", "credit", credit_id_for("CAN-CRED0003"))
    assert info.refund == Money.of("200", "EUR")  # the quote's refund, as a credit


async def test_the_refund_alternative_of_a_rescheduling_may_be_taken_as_credit(env: WorkflowEnvironment) -> None:
    async with rescheduling_harness(env.client) as rs:
        info: ReschedulingInfo = await (await chosen(rs, "RS-CRED0001", "refund", "flight_cancelled", "credit")).result()
    assert (info.status, info.alternative_id, info.refund_to, info.credit_id) == (
        "accepted", "refund", "credit", credit_id_for("RS-CRED0001"))


async def test_only_the_refund_alternative_goes_into_a_credit(env: WorkflowEnvironment) -> None:
    async with rescheduling_harness(env.client) as rs:
        await _refused_credit_with_a_rebooking(rs)


async def _refused_credit_with_a_rebooking(rs: ReschedulingHarness) -> None:
    handle = await start_rescheduling(rs, "RS-CRED0002")
    await rs.store.wait_for_status("RS-CRED0002", "awaiting_partner_action")
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update(ReschedulingWorkflow.accept, AlternativeChoice(alternative_id="proposed", refund_to="credit"))
    cause = refused.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "invalid_fields"
    assert cause.details[0] == [{"field": "refund_to", "message": "credit goes only with the refund alternative"}]
    await handle.execute_update(ReschedulingWorkflow.accept, AlternativeChoice(alternative_id="proposed"))
    info = await asyncio.wait_for(handle.result(), RESULT_WAIT)
    assert (info.status, info.refund_to, info.credit_id) == ("accepted", "original_payment", None)


async def test_a_change_the_supplier_refuses_leaves_its_credit_whole(env: WorkflowEnvironment, real_store: Store) -> None:
    """Booked with a credit, refused at the supplier: the credit is as it was, and the next change takes from it."""
    credit = await credit_issued_at(real_store, await env.get_current_time())
    reservation_id = await real_store.reservations.create(credit.partner_id, ReservationSpec.model_validate({
        "travellers": [{"traveller_id": "T1", "name": "Ada"}], "products": [ITINERARY.model_dump(mode="json")],
    }), random.Random())
    [product] = await real_store.reservations.products_of(reservation_id)
    supplier = ChangingSupplier(refusal="the flight is full")
    task_queue = f"credits-{secrets.token_hex(4)}"

    async def checkout(code: str) -> ChangeInfo:
        flow_input = change_input(code, "manual", await env.get_current_time()).model_copy(update={
            "product_id": product.product_id, "reservation_id": reservation_id, "partner_id": credit.partner_id})
        handle = await env.client.start_workflow(ChangeWorkflow.run, flow_input, id=code, task_queue=task_queue)
        await handle.execute_update(ChangeWorkflow.prebook, Prebooking(transaction_id=reservation_id))
        # The booking answers with the outcome. (Not the workflow's result: waiting on it, the test
        # server skips its clock years ahead once the flow is done, past the credit's validity.)
        return await asyncio.wait_for(
            handle.execute_update(ChangeWorkflow.book, Booking(payment_method="credit", credit_id=credit.credit_id)), RESULT_WAIT)

    async with workflow_worker(env.client, task_queue, activities_over(real_store.flows, supplier, real_store.events,
                                                                        real_store.credits)):
        failed = await checkout("CF-CRED0001")
        assert (failed.status, failed.credit_id) == ("failed", credit.credit_id)
        assert await real_store.credits.credit(credit.credit_id) == credit

        supplier.refusal = None
        modified = await checkout("CF-CRED0002")
    assert modified.status == "modified"
    after = await real_store.credits.credit(credit.credit_id)
    assert after is not None
    assert after.paid_for("CF-CRED0002") == Money.of("75", "EUR") and after.paid_for("CF-CRED0001").is_zero()
