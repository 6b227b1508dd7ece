"""Scale-out, proven on this machine (docs/operations.md#scaling-out): one Temporal server, PostgreSQL, two
workers and two gateways as separate processes on separate ports. Automatic and manual cancellations
go through both gateways while one worker is SIGKILLed; afterwards every flow has finished, each
product was cancelled at the supplier exactly once, and every event is in the feed exactly once."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import pytest
import pytest_asyncio
import sqlalchemy as sa
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from devstack.launcher import wait_for_listener
from store.db import create_engine
from tests.api.conftest import ADMIN, flight, hotel, reservation_body
from tests.conftest import throwaway_database
from tests.e2e.conftest import free_ports

if TYPE_CHECKING:
    from tests.e2e.conftest import AppProcess, StartApp

pytestmark = pytest.mark.e2e

AUTOMATIC = 100
MANUAL = 20
PARTNERS = 2
IN_FLIGHT = 12  # requests at once, across both gateways
KILL_AFTER = 30  # automatic cancellations answered before one worker is SIGKILLed
BOUND_S = 180
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=120)


@pytest_asyncio.fixture
async def scale_database() -> AsyncIterator[str]:
    """A database of its own, so the counts below are this test's alone."""
    async with throwaway_database("aftersales_scale") as url:
        if url is None:
            pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
        yield url


@dataclass
class Gateway:
    url: str
    http: aiohttp.ClientSession

    async def call(self, method: str, path: str, key: str | None, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        async with self.http.request(method, self.url + path, json=body, timeout=REQUEST_TIMEOUT, headers=headers) as answer:
            return answer.status, await answer.json(content_type=None)


@dataclass
class Flows:
    """What the test started, and the moment to kill a worker."""

    automatic: dict[str, str] = field(default_factory=dict)  # flow code → product id
    manual: dict[str, str] = field(default_factory=dict)
    partner_of: dict[str, str] = field(default_factory=dict)  # flow code → partner key
    automatic_answered: int = 0
    kill_now: asyncio.Event = field(default_factory=asyncio.Event)


async def start_cancellation(gateway: Gateway, key: str, product_id: str) -> tuple[int, dict[str, Any]]:
    status, quote = await gateway.call("POST", f"/v1/products/{product_id}/cancellation-quotes", key, {})
    assert status == 201, quote
    status, started = await gateway.call("POST", f"/v1/products/{product_id}/cancellations", key,
                                         {"quote_id": quote["quote_id"]})
    assert status in (200, 202), started
    return status, started


async def test_two_workers_two_gateways_and_a_worker_killed(
    scale_database: str, temporal_env: WorkflowEnvironment, app_processes: StartApp
) -> None:
    environment = {
        "AFTERSALES_ENV": "sandbox",
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "AFTERSALES_DATABASE_URL": scale_database,
        "AFTERSALES_TASK_QUEUE": f"scale-{uuid.uuid4().hex[:8]}",
        "AFTERSALES_LOG_FORMAT": "json",
    }
    workers = [app_processes("worker", environment) for _ in range(2)]
    ports = free_ports(2)
    gateways_started = [app_processes("api", {**environment, "AFTERSALES_HTTP_PORT": str(port)}) for port in ports]
    for worker in workers:
        assert worker.wait_for_line("worker_started", BOUND_S), worker.output()
    for port in ports:
        await wait_for_listener("127.0.0.1", port, timeout=BOUND_S)

    async with aiohttp.ClientSession() as http:
        gateways = [Gateway(f"http://127.0.0.1:{port}", http) for port in ports]
        for gateway in gateways:
            status, health = await gateway.call("GET", "/healthz", None)
            assert (status, health["status"]) == (200, "ok"), health
        flows = await run_cancellations(gateways, workers)
        await check_outcome(gateways, flows, temporal_env, scale_database, gateways_started, workers)


async def run_cancellations(gateways: list[Gateway], workers: list[AppProcess]) -> Flows:
    a, b = gateways
    admin = ADMIN["Authorization"].removeprefix("Bearer ")
    status, agent = await a.call("POST", "/v1/admin/agents", admin, {"name": "Scale agent"})
    assert status == 201
    products: list[tuple[str, str, str]] = []  # (partner key, product id, mode)
    for n in range(PARTNERS):
        status, partner = await gateways[n % 2].call("POST", "/v1/admin/partners", admin, {"name": f"Scale {n}"})
        assert status == 201
        key = partner["api_key"]
        for mode, count, product in (("automatic", AUTOMATIC // PARTNERS, flight), ("manual", MANUAL // PARTNERS, hotel)):
            for offset in range(0, count, 20):
                body = reservation_body(*[product() for _ in range(min(20, count - offset))])
                status, booked = await gateways[offset % 2].call("POST", "/v1/sandbox/reservations", key, body)
                assert status == 201, booked
                products += [(key, p["product_id"], mode) for p in booked["products"]]

    flows = Flows()
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def automatic(i: int, key: str, product_id: str) -> None:
        async with gate:
            # Quote through one gateway, cancel through the other: any gateway serves any flow.
            _, started = await start_cancellation(gateways[i % 2], key, product_id)
        flows.automatic[started["code"]] = product_id
        flows.partner_of[started["code"]] = key
        flows.automatic_answered += 1
        if flows.automatic_answered == KILL_AFTER:
            flows.kill_now.set()

    async def manual(i: int, key: str, product_id: str) -> None:
        async with gate:
            status, started = await start_cancellation(gateways[i % 2], key, product_id)
            assert (status, started["status"]) == (202, "awaiting_agent_quote"), started
        code = started["code"]
        flows.manual[code] = product_id
        flows.partner_of[code] = key
        async with gate:
            status, quoted = await gateways[(i + 1) % 2].call(
                "POST", f"/v1/agent/cancellations/{code}/quote", agent["api_key"],
                {"penalty": {"amount": "60.00", "currency": "EUR"}, "refund": {"amount": "540.00", "currency": "EUR"}})
            assert status == 200, quoted
        async with gate:
            status, decided = await gateways[i % 2].call("PATCH", f"/v1/cancellations/{code}", key, {"decision": "accept"})
            assert status in (200, 202), decided

    async def kill_a_worker() -> None:
        await flows.kill_now.wait()
        workers[0].process.send_signal(signal.SIGKILL)

    killer = asyncio.create_task(kill_a_worker())
    await asyncio.gather(*(
        (automatic if mode == "automatic" else manual)(i, key, product_id)
        for i, (key, product_id, mode) in enumerate(products)
    ))
    await asyncio.wait_for(killer, 1)  # it fired while the cancellations were running
    assert workers[0].wait_for_exit(30) == -signal.SIGKILL
    assert len(flows.automatic) == AUTOMATIC and len(flows.manual) == MANUAL
    return flows


async def check_outcome(
    gateways: list[Gateway], flows: Flows, temporal_env: WorkflowEnvironment, database_url: str,
    gateway_processes: list[AppProcess], workers: list[AppProcess],
) -> None:
    codes = {**flows.automatic, **flows.manual}
    # Every flow finishes, cancelled.
    client = temporal_env.client
    results = await asyncio.wait_for(asyncio.gather(*(client.get_workflow_handle(code).result() for code in codes)), BOUND_S)
    assert Counter(r["status"] for r in results) == Counter({"cancelled": len(codes)})

    # Each product was cancelled at the supplier exactly once: by its one flow, whose history holds
    # one completed supplier cancel (a call cut by the kill was retried, and was a no-op the second time).
    completed: Counter[str] = Counter()
    touched = 0  # flows whose history shows the kill: a workflow task timed out, or an activity tried again
    for code in codes:
        history = await client.get_workflow_handle(code).fetch_history()
        touched += any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
                       or e.activity_task_started_event_attributes.attempt > 1 for e in history.events)
        scheduled = {e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                     if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED}
        completed[code] = sum(
            1 for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
            and scheduled[e.activity_task_completed_event_attributes.scheduled_event_id] == "cancel_at_supplier")
    assert set(completed.values()) == {1}, {c: n for c, n in completed.items() if n != 1}
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            products = (await conn.execute(sa.text(
                "SELECT product_id, status, cancelled_by FROM products"))).all()
            per_product = (await conn.execute(sa.text(
                "SELECT product_id, count(*) FROM flows WHERE kind = 'cancellation' GROUP BY product_id"))).all()
            locks = (await conn.execute(sa.text("SELECT count(*) FROM product_locks"))).scalar_one()
    finally:
        await engine.dispose()
    assert {row.product_id: (row.status, row.cancelled_by) for row in products} == {
        product_id: ("cancelled", code) for code, product_id in codes.items()}
    assert all(count == 1 for _, count in per_product) and len(per_product) == len(codes)
    assert locks == 0

    # Every event is in the feed exactly once.
    feeds: dict[str, list[dict[str, Any]]] = {}
    for key in set(flows.partner_of.values()):
        items: list[dict[str, Any]] = []
        after = ""
        while True:
            status, page = await gateways[len(items) % 2].call("GET", f"/v1/events?limit=200{after}", key)
            assert status == 200, page
            items += page["items"]
            if len(page["items"]) < 200:
                break
            after = f"&after={page['items'][-1]['id']}"
        feeds[key] = items
    events = [event for items in feeds.values() for event in items]
    assert len({event["id"] for event in events}) == len(events), "an event is in the feed twice"
    by_flow: dict[str, list[str]] = defaultdict(list)
    for key, items in feeds.items():
        for event in items:
            # A flow's events carry its info (``code``); the refund it posts carries the refund (``flow_code``).
            code = event["data"].get("code") or event["data"]["flow_code"]
            by_flow[code].append(event["type"])
            assert flows.partner_of[code] == key
    assert {code: by_flow[code] for code in flows.automatic} == {
        code: ["cancellation.completed", "refund.posted"] for code in flows.automatic}
    assert {code: by_flow[code] for code in flows.manual} == {
        code: ["cancellation.quoted", "cancellation.completed", "refund.posted"] for code in flows.manual}
    assert set(by_flow) == set(codes)

    # The other parts stayed up throughout.
    assert workers[1].process.poll() is None, workers[1].output()
    assert all(p.process.poll() is None for p in gateway_processes)
    print(f"scale-out: {len(flows.automatic)} automatic and {len(flows.manual)} manual cancellations over 2 gateways, "
          f"worker killed after {KILL_AFTER} answers ({touched} flows saw it); {len(events)} events, each once")
