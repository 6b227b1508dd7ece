"""In-memory ports and a worker wired to them, shared by the tests and the history recorder."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

import aiohttp
from temporalio.client import Client
from temporalio.worker import Worker

from domain.credit_ledger import CreditState
from domain.disruptions import FanOutBatch, FanOutPage
from domain.flow_info import FlowRecord, event_body
from ports.recording import DeliveryTarget, RecordRefused
from ports.supplier import Supplier, SupplierRefused
from tests.contract.event_collector import collect
from worker.registry import activities_over, workflow_worker


@dataclass
class Attempt:
    event_id: str
    delivered: bool
    detail: str


@dataclass
class InMemoryStore:
    """FlowStore and EventOutbox at once, as the real store is; a partner webhook is optional."""

    webhook_url: str | None = None
    webhook_secret: str = "whsec_test"
    records: list[FlowRecord] = field(default_factory=list)
    events: dict[str, bytes] = field(default_factory=dict)
    attempts: list[Attempt] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    # A status whose first recording "commits" and then fails, as a worker that dies before the
    # activity's answer reaches the server: the activity is retried with the same record.
    lose_answer_once: str | None = None
    # Every expiry recorded, in order: (credit id, at).
    expiries: list[tuple[str, datetime]] = field(default_factory=list)
    # Statuses whose record the store refuses for good, each as many times as counted here (as a
    # database refuses a value its column cannot hold until a migration widens it); nothing is written.
    refuse: Counter[str] = field(default_factory=Counter)
    refusals: list[FlowRecord] = field(default_factory=list)
    # A status whose recording is held, before it commits, until ``release`` is set; ``held`` is set
    # once it arrives (a record being written while the flow takes another input).
    hold: str | None = None
    held: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    # The disruption fan-out's port: how many products the flight has, and each one's flow starts.
    flight_products: int = 0
    fanned_out: list[str] = field(default_factory=list)
    # Notified on every record: tests wait on :meth:`wait_for` for what a flow records instead of polling.
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def start_batch(self, temporal: Client, page: FanOutPage) -> FanOutBatch:
        products = [f"PRD-{i:010d}" for i in range(self.flight_products)]
        after = [p for p in products if page.after_product_id is None or p > page.after_product_id][:page.limit]
        self.fanned_out += after
        return FanOutBatch(found=len(after), last_product_id=after[-1] if after else None)

    async def record_flow(self, record: FlowRecord) -> bool:
        if self.refuse[record.status] > 0:
            self.refuse[record.status] -= 1
            self.refusals.append(record)
            raise RecordRefused("DataError: numeric field overflow")
        if record.status == self.hold:
            self.held.set()
            await self.release.wait()
        self.records.append(record)
        if record.event_id is not None and record.event_type is not None and record.event_id not in self.events:
            body = event_body(record.event_id, record.event_type, record.at, record.info)
            collect(body, "a workflow test's in-memory store")  # checked against the published schemas (tests/contract)
            self.add_event(record.event_id, body)
        await self._notify()
        if record.status == self.lose_answer_once:
            self.lose_answer_once = None
            raise RuntimeError("the answer was lost after the commit")
        # Always pushed: the delivery workflow itself answers "no_webhook" when there is no URL.
        return record.event_id is not None

    def add_event(self, event_id: str, body: dict[str, object]) -> None:
        self.events[event_id] = json.dumps(body).encode()

    async def delivery_target(self, event_id: str) -> DeliveryTarget | None:
        if self.webhook_url is None:
            return None
        return DeliveryTarget(url=self.webhook_url, secret=self.webhook_secret, body=self.events[event_id])

    async def record_attempt(self, event_id: str, delivered: bool, detail: str) -> None:
        self.attempts.append(Attempt(event_id, delivered, detail))

    async def mark_failed(self, event_id: str) -> None:
        self.failed.append(event_id)

    async def expire(self, credit_id: str, at: datetime) -> CreditState | None:
        """Records each expiry asked for (every credit exists here, and is active until then)."""
        self.expiries.append((credit_id, at))
        return "expired"

    async def wait_for(self, predicate: Callable[[], object], bound_s: float = 20.0) -> None:
        """Until ``predicate()`` holds of what was recorded, at most ``bound_s`` seconds."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), bound_s)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    def statuses(self, code: str) -> list[str]:
        return [r.status for r in self.records if r.code == code]

    def event_types(self, code: str) -> list[str | None]:
        return [r.event_type for r in self.records if r.code == code]


@dataclass
class FakeSupplier:
    """Refuses when ``refusal`` is set; holds every cancel until ``gate`` opens when one is given."""

    refusal: str | None = None
    gate: asyncio.Event | None = None
    cancels: Counter[str] = field(default_factory=Counter)
    # The travellers each flow asked to cancel (None: the whole product).
    travellers: dict[str, list[str] | None] = field(default_factory=dict)

    async def cancel_product(self, product_id: str, flow_code: str, traveller_ids: list[str] | None = None) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.cancels[flow_code] += 1
        self.travellers[flow_code] = traveller_ids
        if self.refusal is not None:
            raise SupplierRefused(self.refusal)


StoreT = TypeVar("StoreT", bound=InMemoryStore)
SupplierT = TypeVar("SupplierT", bound=FakeSupplier)


@dataclass
class Harness(Generic[StoreT, SupplierT]):
    """A client, the task queue a worker of its own polls, and the fakes that worker acts on."""

    client: Client
    task_queue: str
    store: StoreT
    supplier: SupplierT


@asynccontextmanager
async def own_worker(client: Client, prefix: str, store: StoreT, supplier: SupplierT) -> AsyncIterator[Harness[StoreT, SupplierT]]:
    """A worker of its own for the flows, their triggers and their activities, on its own task queue."""
    harness = Harness(client, f"{prefix}-{uuid.uuid4().hex[:8]}", store, supplier)
    async with new_worker(client, harness.task_queue, store, supplier):
        yield harness


def new_worker(
    client: Client,
    task_queue: str,
    store: InMemoryStore,
    supplier: Supplier,
    http: aiohttp.ClientSession | None = None,
) -> Worker:
    """The production worker's workflows and activities, over in-memory ports."""
    return workflow_worker(client, task_queue, activities_over(store, supplier, store, store, http, fan_out=store))
