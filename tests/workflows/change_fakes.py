"""In-memory ports for the change and special-request flows (a supplier that changes products and
answers special requests, a store that can hold one transition), a worker wired to them, and the
drivers of each main path, shared by the tests and the history recorder."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio.client import Client, WorkflowHandle, WorkflowUpdateStage

from domain.change_flow import Booking, ChangeInfo, ChangeInput, Prebooking
from domain.flow_info import FlowRecord, Resolution
from domain.money import Money
from domain.products import FlightProduct, ProductSpec, SpecialRequestOption
from domain.special_request_flow import SpecialRequestAsk, SpecialRequestInfo, SpecialRequestInput, SupplierAnswer
from ports.supplier import SupplierRefused
from tests.workflows.fakes import FakeSupplier, Harness, InMemoryStore, own_worker
from workflows.change import ChangeWorkflow
from workflows.special_request import SpecialRequestWorkflow

RESULT_WAIT = 20.0
PRODUCT_ID = "prd_1"
RESERVATION_ID = "res_1"
CONTEXT_TTL = timedelta(minutes=20)
CHECKOUT_TTL = timedelta(hours=24)
SUPPLIER_DELAY = timedelta(hours=2)  # long, to show the timer is durable and skipped, not slept
DEPARTURE = datetime(2026, 12, 21, 13, 0, tzinfo=timezone.utc)
ITINERARY = FlightProduct.model_validate({
    "kind": "flight", "carrier": "ZZ",
    "segments": [{"origin": "MAD", "destination": "CDG", "departure": DEPARTURE,
                  "arrival": DEPARTURE + timedelta(hours=2, minutes=5), "flight_number": "ZZ1101"}],
    "price": {"amount": "264", "currency": "EUR"}, "vat_rate": "0.081",
    "cancellation_policy": {"mode": "automatic"},
    "change_policy": {"changeable": True, "change_fee": {"amount": "30", "currency": "EUR"}},
})
WHEELCHAIR = SpecialRequestOption(code="WCHR", name="Wheelchair")

ChangeHandle = WorkflowHandle[ChangeWorkflow, ChangeInfo]
SpecialRequestHandle = WorkflowHandle[SpecialRequestWorkflow, SpecialRequestInfo]


@dataclass
class HoldingStore(InMemoryStore):
    """Holds the recording of ``hold_status`` until ``release`` is set, so a test can act while a
    flow is between deciding and recording (e.g. a booking arriving as the context expires)."""

    hold_status: str | None = None
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def record_flow(self, record: FlowRecord) -> bool:
        if record.status == self.hold_status:
            self.reached.set()
            await self.release.wait()
        return await super().record_flow(record)


@dataclass
class ChangingSupplier(FakeSupplier):
    """Also changes products (refused when ``refusal`` is set, held until ``gate`` opens when given)
    and answers special requests with ``verdict``."""

    changes: list[tuple[str, ProductSpec | None, str]] = field(default_factory=list)
    verdict: SupplierAnswer = field(default_factory=lambda: SupplierAnswer(status="confirmed"))
    asked: list[SpecialRequestAsk] = field(default_factory=list)

    async def apply_change(self, product_id: str, itinerary: ProductSpec | None, flow_code: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.refusal is not None:
            raise SupplierRefused(self.refusal)
        self.changes.append((product_id, itinerary, flow_code))

    async def submit_special_request(self, ask: SpecialRequestAsk) -> timedelta:
        return SUPPLIER_DELAY

    async def answer_special_request(self, ask: SpecialRequestAsk) -> SupplierAnswer:
        self.asked.append(ask)
        return self.verdict


ChangeHarness = Harness[HoldingStore, ChangingSupplier]


def change_harness(client: Client) -> AbstractAsyncContextManager[ChangeHarness]:
    return own_worker(client, "change", HoldingStore(), ChangingSupplier())


def change_input(code: str, resolution: Resolution, now: datetime) -> ChangeInput:
    """A context on ``ITINERARY`` (automatic), or an agent's checkout moving to it (manual)."""
    automatic = resolution == "automatic"
    return ChangeInput(
        code=code,
        product_id=PRODUCT_ID,
        reservation_id=RESERVATION_ID,
        partner_id="ptn_1",
        resolution=resolution,
        total_due=Money.of("54", "EUR") if automatic else Money.of("75", "EUR"),
        expires_at=now + (CONTEXT_TTL if automatic else CHECKOUT_TTL),
        itinerary=ITINERARY,
        itinerary_id="itn_1" if automatic else None,
        fare_difference=Money.of("24", "EUR") if automatic else None,
        change_fee=Money.of("30", "EUR") if automatic else None,
        description=None if automatic else "moved to the 13:00 flight by phone",
        agent_id=None if automatic else "agt_1",
        payment_methods=[] if automatic else ["card", "bank_transfer", "invoice"],
        webhook_retry_for=timedelta(hours=72),
    )


async def start_change(h: ChangeHarness, code: str, resolution: Resolution) -> ChangeHandle:
    # A fresh time-skipping server starts at this machine's time; nothing has skipped it yet.
    return await h.client.start_workflow(
        ChangeWorkflow.run, change_input(code, resolution, datetime.now(timezone.utc)), id=code, task_queue=h.task_queue
    )


async def finish(handle: WorkflowHandle[Any, Any]) -> Any:
    return await asyncio.wait_for(handle.result(), RESULT_WAIT)


async def booked(h: ChangeHarness, code: str) -> ChangeHandle:
    """The partner books its context."""
    handle = await start_change(h, code, "automatic")
    await handle.execute_update(ChangeWorkflow.book, Booking(invoice_hint="PO-1234"))
    await finish(handle)
    return handle


async def unbooked(h: ChangeHarness, code: str, resolution: Resolution = "automatic") -> ChangeHandle:
    """Nobody books (or pre-books): the TTL passes (skipped by the time-skipping server)."""
    handle = await start_change(h, code, resolution)
    await finish(handle)
    return handle


async def checked_out(h: ChangeHarness, code: str) -> ChangeHandle:
    """The agent's checkout is pre-booked and booked by the partner."""
    handle = await start_change(h, code, "manual")
    await handle.execute_update(ChangeWorkflow.prebook, Prebooking(transaction_id=RESERVATION_ID))
    await handle.execute_update(ChangeWorkflow.book, Booking(payment_method="card"))
    await finish(handle)
    return handle


async def booked_while_prebook_recorded(h: ChangeHarness, code: str, payment_method: str = "card") -> ChangeHandle:
    """The partner pre-books the agent's checkout; while the flow records the pre-book
    (``checkout_prebooked`` held in the store), the partner books: the booking is taken, and applied
    once the pre-book is recorded."""
    h.store.hold_status = "checkout_prebooked"
    handle = await start_change(h, code, "manual")
    prebooking = await handle.start_update(
        ChangeWorkflow.prebook, Prebooking(transaction_id=RESERVATION_ID), wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    await asyncio.wait_for(h.store.reached.wait(), RESULT_WAIT)
    booking = await handle.start_update(
        ChangeWorkflow.book, Booking(payment_method=payment_method), wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    h.store.release.set()
    await asyncio.wait_for(asyncio.gather(prebooking.result(), booking.result()), RESULT_WAIT)
    await finish(handle)
    return handle


def special_request_input(code: str, note: str | None = None) -> SpecialRequestInput:
    return SpecialRequestInput(
        code=code,
        product_id=PRODUCT_ID,
        reservation_id=RESERVATION_ID,
        partner_id="ptn_1",
        option=WHEELCHAIR,
        traveller_id="T1",
        note=note,
        webhook_retry_for=timedelta(hours=72),
    )


async def special_request(h: ChangeHarness, code: str, verdict: SupplierAnswer | None = None) -> SpecialRequestHandle:
    """A special request the airline answers with ``verdict`` (confirmed when None) after its delay."""
    if verdict is not None:
        h.supplier.verdict = verdict
    handle = await h.client.start_workflow(
        SpecialRequestWorkflow.run, special_request_input(code, "aisle please"), id=code, task_queue=h.task_queue
    )
    await finish(handle)
    return handle


DECLINED = SupplierAnswer(status="declined", reason="no wheelchair on this aircraft")


def recorded(
    path: Callable[..., Awaitable[WorkflowHandle[Any, Any]]], code: str, **options: Any
) -> Callable[[Harness], Awaitable[WorkflowHandle[Any, Any]]]:
    """A path as ``record_histories`` runs it: on the recorder's server, with a worker of its own."""

    async def run(h: Harness) -> WorkflowHandle[Any, Any]:
        async with change_harness(h.client) as harness:
            return await path(harness, code, **options)

    return run
