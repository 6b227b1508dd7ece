"""A flow's money is recorded once, whatever happens to the activity that records it (docs/settlement.md#exactly-once).

The cancellation runs on the time-skipping server over the real store (SQLite and PostgreSQL);
recording its ``cancelled`` transition commits and then fails, as when a worker dies before the
answer reaches the server, so the local activity runs again with the same record. The refund is
posted once, booked once and reported once.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest_asyncio
import sqlalchemy as sa
from temporalio.testing import WorkflowEnvironment

from domain.cancellation_flow import CancellationInput
from domain.codes import FlowKind, new_flow_code
from domain.flow_info import FlowRecord
from domain.journal import invariant_violations
from domain.money import Money
from domain.products import ReservationSpec
from domain.refund_ledger import REFUND_POSTED
from ports.recording import LockOutcome
from store.flow_index import FlowIndex
from store.repositories import Store, open_store
from store.schema import events, payments, refunds
from tests.workflows.fakes import FakeSupplier
from tests.workflows.scenarios import RESULT_WAIT
from worker.registry import activities_over, workflow_worker
from workflows.cancellation import CancellationWorkflow

EUR = "EUR"


@dataclass
class AnswerLostAfterCommit:
    """The real FlowIndex; the first recording of ``status`` commits, then the activity fails anyway."""

    flows: FlowIndex
    status: str
    calls: Counter[str] = field(default_factory=Counter)

    async def record_flow(self, record: FlowRecord) -> bool:
        push = await self.flows.record_flow(record)
        self.calls[record.status] += 1
        if record.status == self.status and self.calls[record.status] == 1:
            raise RuntimeError("the worker died before the server heard the answer")
        return push

    async def acquire(self, product_id: str, flow_code: str, at: datetime) -> LockOutcome:
        return await self.flows.acquire(product_id, flow_code, at)

    async def open_waiting(self, waiting: FlowRecord, offered: FlowRecord) -> tuple[LockOutcome, bool]:
        return await self.flows.open_waiting(waiting, offered)


@pytest_asyncio.fixture
async def real_store(database_url: str) -> AsyncIterator[Store]:
    opened = await open_store(database_url)
    yield opened
    await opened.close()


async def test_a_cancellation_refund_is_posted_once_when_recording_is_retried_after_commit(
    env: WorkflowEnvironment, real_store: Store
) -> None:
    partner, _ = await real_store.accounts.create_partner("Acme", None)
    reservation_id = await real_store.reservations.create(partner.partner_id, ids=random.Random(), spec=ReservationSpec.model_validate({
        "travellers": [{"traveller_id": "T1", "name": "Ada"}],
        "products": [{"kind": "other", "name": "Transfer", "starts_at": "2027-01-01T10:00:00+00:00",
                      "ends_at": "2027-01-01T11:00:00+00:00", "price": {"amount": "240.00", "currency": EUR},
                      "vat_rate": "0.10", "cancellation_policy": {"mode": "automatic"}}],
    }))
    [product] = await real_store.reservations.products_of(reservation_id)
    code = new_flow_code(FlowKind.CANCELLATION, secrets.SystemRandom())
    flow_input = CancellationInput(
        code=code, product_id=product.product_id, reservation_id=reservation_id, partner_id=partner.partner_id,
        resolution="automatic", paid=Money.of("240", EUR), penalty=Money.of("120", EUR), refund=Money.of("120", EUR),
        agent_quote_window=timedelta(hours=24), decision_window=timedelta(hours=72), webhook_retry_for=timedelta(hours=1),
    )
    assert await real_store.flows.open(FlowRecord.of(flow_input.initial_info(), FlowKind.CANCELLATION,
                                                     datetime.now(timezone.utc)), flow_input.model_dump(mode="json"))
    flaky = AnswerLostAfterCommit(real_store.flows, "cancelled")
    task_queue = f"settlement-{secrets.token_hex(4)}"
    activities = activities_over(flaky, FakeSupplier(), real_store.events, real_store.credits)

    async with workflow_worker(env.client, task_queue, activities):
        handle = await env.client.start_workflow(CancellationWorkflow.run, flow_input, id=code, task_queue=task_queue)
        info = await asyncio.wait_for(handle.result(), RESULT_WAIT)

    assert info.status == "cancelled"
    assert flaky.calls["cancelled"] == 2  # committed, answer lost, recorded again
    async with real_store.engine.connect() as conn:
        posted = (await conn.execute(sa.select(refunds).where(refunds.c.flow_code == code))).all()
        booked = (await conn.execute(sa.select(payments).where(payments.c.flow_code == code))).all()
        reported = (await conn.execute(sa.select(events.c.type).where(events.c.flow_code == code))).scalars().all()
    assert [(r.state, r.amount, r.number is not None) for r in posted] == [("posted", "120.00", True)]
    assert [(e.category, e.amount, e.refund_id) for e in booked] == [("refund", "-120.00", posted[0].refund_id)]
    assert sorted(reported) == ["cancellation.completed", REFUND_POSTED]
    entries = await real_store.payments.entries(reservation_id)
    assert invariant_violations(entries, await real_store.refunds.posted(reservation_id)) == []
    assert sum(e.amount.amount for e in entries) == Money.of("120", EUR).amount
