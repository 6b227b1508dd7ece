"""In-memory ports for the rescheduling flow (product locks, moving a flight), a worker wired to
them, and the drivers of each main path, shared by the tests and the history recorder."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio.client import Client, WorkflowHandle

from domain.credit_ledger import RefundTo
from domain.flow_info import FlowRecord
from domain.products import FlightProduct, Segment
from domain.rescheduling_flow import (
    AlternativeChoice,
    ChangeKind,
    ReschedulingInfo,
    ReschedulingInput,
    ScheduleChange,
    new_rescheduling,
    shifted,
)
from ports.recording import LockOutcome
from ports.supplier import SupplierRefused
from tests.workflows.fakes import FakeSupplier, Harness, InMemoryStore, own_worker
from workflows.rescheduling import ReschedulingWorkflow

RESULT_WAIT = 20.0
PRODUCT_ID = "prd_1"
WINDOW = timedelta(hours=72)
DEPARTURE = datetime(2026, 12, 20, 7, 0, tzinfo=timezone.utc)
FLIGHT = FlightProduct.model_validate({
    "kind": "flight", "carrier": "ZZ",
    "segments": [{"origin": "MAD", "destination": "CDG", "departure": DEPARTURE,
                  "arrival": DEPARTURE + timedelta(hours=2, minutes=5), "flight_number": "ZZ101"}],
    "price": {"amount": "240", "currency": "EUR"}, "vat_rate": "0.081",
    "cancellation_policy": {"mode": "automatic"},
})

ReschedulingHandle = WorkflowHandle[ReschedulingWorkflow, ReschedulingInfo]


@dataclass
class LockingStore(InMemoryStore):
    """The in-memory store plus product locks, as :class:`store.flow_index.FlowIndex` keeps them; tests wait
    on :meth:`wait_for` for what the flow records instead of sleeping."""

    holders: dict[str, str] = field(default_factory=dict)  # product_id → flow code
    cancelled: set[str] = field(default_factory=set)
    acquire_attempts: int = 0

    async def record_flow(self, record: FlowRecord) -> bool:
        push = await super().record_flow(record)
        if record.terminal and self.holders.get(record.product_id) == record.code:
            del self.holders[record.product_id]
        await self._notify()
        return push

    async def acquire(self, product_id: str, flow_code: str, at: datetime) -> LockOutcome:
        self.acquire_attempts += 1
        await self._notify()
        holder = self.holders.get(product_id)
        if holder == flow_code:
            return "acquired"
        if product_id in self.cancelled:
            return "product_cancelled"
        if holder is None:
            self.holders[product_id] = flow_code
            return "acquired"
        return "busy"

    async def open_waiting(self, waiting: FlowRecord, offered: FlowRecord) -> tuple[LockOutcome, bool]:
        """As the real store does in one transaction; here, one step after the other."""
        await self.record_flow(waiting)
        lock = await self.acquire(waiting.product_id, waiting.code, waiting.at)
        return lock, (await self.record_flow(offered) if lock == "acquired" else False)

    async def wait_for_status(self, code: str, status: str) -> None:
        await self.wait_for(lambda: status in self.statuses(code))


@dataclass
class MovingSupplier(FakeSupplier):
    """Also moves flights; refuses that too when ``refusal`` is set, and waits for ``gate`` too."""

    moves: list[tuple[str, list[Segment], str]] = field(default_factory=list)

    async def reschedule_product(self, product_id: str, segments: list[Segment], flow_code: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.refusal is not None:
            raise SupplierRefused(self.refusal)
        self.moves.append((product_id, segments, flow_code))


ReschedulingHarness = Harness[LockingStore, MovingSupplier]


def rescheduling_harness(client: Client) -> AbstractAsyncContextManager[ReschedulingHarness]:
    return own_worker(client, "rescheduling", LockingStore(), MovingSupplier())


def rescheduling_input(code: str, kind: ChangeKind) -> ReschedulingInput:
    proposed = shifted(FLIGHT.segments, timedelta(minutes=90)) if kind == "time_change" else []
    change = ScheduleChange(change_id=f"chg-{code}", product_id=PRODUCT_ID, kind=kind, proposed_segments=proposed)
    # The code is the caller's, as in the other flows' tests, rather than the one derived from the change.
    info = new_rescheduling(change, FLIGHT, "res_1", "ptn_1").model_copy(update={"code": code})
    return ReschedulingInput(info=info, window=WINDOW, webhook_retry_for=timedelta(hours=72))


async def start_rescheduling(h: ReschedulingHarness, code: str, kind: ChangeKind = "time_change") -> ReschedulingHandle:
    return await h.client.start_workflow(
        ReschedulingWorkflow.run, rescheduling_input(code, kind), id=code, task_queue=h.task_queue
    )


async def finish(handle: ReschedulingHandle) -> ReschedulingInfo:
    return await asyncio.wait_for(handle.result(), RESULT_WAIT)


async def chosen(
    h: ReschedulingHarness, code: str, alternative_id: str, kind: ChangeKind = "time_change",
    refund_to: RefundTo = "original_payment",
) -> ReschedulingHandle:
    """The partner picks ``alternative_id`` (the refund one maybe as a credit) once the flow offers its alternatives."""
    handle = await start_rescheduling(h, code, kind)
    await h.store.wait_for_status(code, "awaiting_partner_action")
    await handle.execute_update(ReschedulingWorkflow.accept, AlternativeChoice(alternative_id=alternative_id, refund_to=refund_to))
    await finish(handle)
    return handle


async def unanswered(h: ReschedulingHarness, code: str, kind: ChangeKind = "time_change") -> ReschedulingHandle:
    """Nobody chooses: the window passes (skipped by the time-skipping server) and the default applies."""
    handle = await start_rescheduling(h, code, kind)
    await finish(handle)
    return handle


async def waited(h: ReschedulingHarness, code: str, busy_with: str = "CAN-BUSY0001") -> ReschedulingHandle:
    """The product has another active flow when the change arrives; it ends, then the partner accepts."""
    h.store.holders[PRODUCT_ID] = busy_with
    handle = await start_rescheduling(h, code)
    await h.store.wait_for(lambda: h.store.acquire_attempts >= 1 and "waiting_for_product" in h.store.statuses(code))
    del h.store.holders[PRODUCT_ID]  # the other flow ends
    await h.store.wait_for_status(code, "awaiting_partner_action")
    await handle.execute_update(ReschedulingWorkflow.accept, AlternativeChoice(alternative_id="rebook-1d"))
    await finish(handle)
    return handle


async def overtaken(h: ReschedulingHarness, code: str) -> ReschedulingHandle:
    """The product is cancelled by the flow the change was waiting for: nothing is left to reschedule."""
    h.store.holders[PRODUCT_ID] = "CAN-BUSY0001"
    handle = await start_rescheduling(h, code)
    await h.store.wait_for(lambda: h.store.acquire_attempts >= 1)
    h.store.cancelled.add(PRODUCT_ID)
    del h.store.holders[PRODUCT_ID]
    await finish(handle)
    return handle



def recorded(
    path: Callable[..., Awaitable[ReschedulingHandle]], code: str, **options: Any
) -> Callable[[Harness], Awaitable[ReschedulingHandle]]:
    """A path as ``record_histories`` runs it: on the recorder's server, with a worker of its own."""

    async def run(h: Harness) -> ReschedulingHandle:
        async with rescheduling_harness(h.client) as harness:
            return await path(harness, code, **options)

    return run
