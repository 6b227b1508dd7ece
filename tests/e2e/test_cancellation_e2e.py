"""Cancellation end to end: signed triggers to a real receiver, and a worker killed mid-flow."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiohttp.test_utils import TestClient
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings
from store.repositories import Store
from store.schema import events, products, refunds
from tests.api.conftest import ADMIN, Actor, flight, hotel, new_partner, reservation_body
from tests.workflows.receiver import WebhookReceiver
from workflows.trigger_delivery import trigger_workflow_id

pytestmark = pytest.mark.e2e
BOUND_S = 90


async def _book(client: TestClient, owner: Actor, product: dict) -> str:
    response = await client.post("/v1/sandbox/reservations", json=reservation_body(product), headers=owner.headers)
    assert response.status == 201, await response.text()
    return (await response.json())["products"][0]["product_id"]


async def _cancel(client: TestClient, owner: Actor, product_id: str) -> dict:
    quote = await (await client.post(f"/v1/products/{product_id}/cancellation-quotes", json={},
                                     headers=owner.headers)).json()
    response = await client.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                                 headers=owner.headers)
    assert response.status in (200, 202), await response.text()
    return await response.json()


async def test_trigger_is_signed_and_retried_until_delivered(http: TestClient, temporal_env: WorkflowEnvironment) -> None:
    probe = await new_partner(http, "Hooked")
    async with WebhookReceiver(secret=probe.body["webhook_secret"], failures=3) as receiver:
        # The secret is only known once the partner exists: point its webhook at the receiver now.
        response = await http.put("/v1/partner/webhook", json={"url": receiver.url}, headers=probe.headers)
        assert response.status == 200
        product_id = await _book(http, probe, flight(days_ahead=30))
        done = await _cancel(http, probe, product_id)
        assert done["status"] == "cancelled"

        feed = await (await http.get("/v1/events", headers=probe.headers)).json()
        event = feed["items"][0]
        assert event["type"] == "cancellation.completed"
        outcome = await asyncio.wait_for(
            temporal_env.client.get_workflow_handle(trigger_workflow_id(event["id"])).result(), BOUND_S
        )
        assert outcome == "delivered"
        assert len(receiver.received) == 4 and all(r.signed for r in receiver.received)
        assert {r.body["id"] for r in receiver.received} == {event["id"]}
        assert receiver.received[-1].body["data"]["code"] == done["code"]
        feed = await (await http.get("/v1/events", headers=probe.headers)).json()
        assert feed["items"][0]["delivery"]["status"] == "delivered"
        assert feed["items"][0]["delivery"]["attempts"] >= 4


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    # A decision waits for the flow's outcome at most AFTERSALES_SYNC_WAIT, then answers 202. After
    # a worker is killed, its sticky task queue times out first (10 s) before another worker takes
    # the flow: wait long enough here to see the outcome itself.
    return {"AFTERSALES_SYNC_WAIT": "60s"}


@pytest_asyncio.fixture
async def worker_process(settings: Settings, temporal_env: WorkflowEnvironment) -> AsyncIterator[object]:
    """Starts `python -m worker` processes against the test's dev server and database; kills leftovers."""
    started: list[subprocess.Popen[str]] = []
    target = temporal_env.client.service_client.config.target_host

    async def start() -> subprocess.Popen[str]:
        env = {
            **os.environ,
            "TEMPORAL_ADDRESS": target,
            "AFTERSALES_DATABASE_URL": settings.database_url,
            "AFTERSALES_TASK_QUEUE": settings.task_queue,
            "AFTERSALES_LOG_FORMAT": "json",
        }
        process = subprocess.Popen([sys.executable, "-m", "worker"], env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        started.append(process)
        assert process.stdout is not None
        stdout = process.stdout

        def until_started() -> None:
            for line in stdout:
                if "worker_started" in line:
                    return
            raise AssertionError("worker exited before starting")

        await asyncio.wait_for(asyncio.to_thread(until_started), BOUND_S)
        # Keep draining its output so a full pipe never blocks it.
        asyncio.get_running_loop().run_in_executor(None, lambda: [None for _ in stdout])
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


async def test_worker_killed_while_awaiting_decision_loses_nothing(
    gateway: TestClient, store: Store, worker_process  # type: ignore[no-untyped-def]
) -> None:
    first = await worker_process()
    partner = await new_partner(gateway, "Durable")
    agent_created = await (await gateway.post("/v1/admin/agents", json={"name": "A"}, headers=ADMIN)).json()
    agent = {"Authorization": f"Bearer {agent_created['api_key']}"}
    product_id = await _book(gateway, partner, hotel())
    code = (await _cancel(gateway, partner, product_id))["code"]
    quoted = await gateway.post(f"/v1/agent/cancellations/{code}/quote", headers=agent, json={
        "penalty": {"amount": "60.00", "currency": "EUR"}, "refund": {"amount": "540.00", "currency": "EUR"}})
    assert quoted.status == 200 and (await quoted.json())["status"] == "awaiting_partner_decision"

    first.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(asyncio.to_thread(first.wait), BOUND_S) == -signal.SIGKILL
    await worker_process()

    accepted = await asyncio.wait_for(
        gateway.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=partner.headers), BOUND_S
    )
    assert accepted.status == 200, await accepted.text()
    info = await accepted.json()
    assert info["status"] == "cancelled"
    assert [h["event"] for h in info["history"]] == [
        "awaiting_agent_quote", "awaiting_partner_decision", "cancelled"]
    async with store.engine.connect() as conn:
        product = (await conn.execute(sa.select(products).where(products.c.product_id == product_id))).one()
        types = (await conn.execute(
            sa.select(events.c.type).where(events.c.flow_code == code).order_by(events.c.seq))).scalars().all()
        posted = (await conn.execute(sa.select(refunds.c.amount).where(refunds.c.flow_code == code))).scalars().all()
    assert product.status == "cancelled" and product.cancelled_by == code
    # The refund is posted once, with the transition that cancelled (docs/settlement.md).
    assert types == ["cancellation.quoted", "cancellation.completed", "refund.posted"]
    assert posted == ["540.00"]
