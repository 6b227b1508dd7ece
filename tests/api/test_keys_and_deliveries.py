"""Keys and deliveries over HTTP (docs/api.md#authentication-and-roles, docs/triggers.md), on SQLite and
PostgreSQL: the admin revokes and issues keys, a partner rotates its key and its webhook secret (both
secrets sign during the overlap), asks for an event again, and gets the events stored while it had no
webhook once it sets one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest_asyncio
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from config.settings import Settings
from domain.signature import SIGNATURE_HEADER, verify
from services.sweeps import sweep_forever
from store.repositories import Store, open_store
from store.schema import api_keys, events, partners
from tests.api.conftest import ADMIN, Actor, cancel_with_a_quote, feed_of, flight, new_partner
from tests.api.test_foundation import problem
from tests.conftest import GatewayTestServer
from tests.local_server import serve_locally
from worker.outbox_dispatcher import BATCH, OutboxDispatcher
from workflows.trigger_delivery import redelivery_workflow_id, trigger_workflow_id

BOUND_S = 60


@dataclass
class Delivery:
    body: dict[str, Any]
    raw: bytes
    signature: str


@dataclass
class Receiver:
    """A partner's webhook on 127.0.0.1 that keeps every delivery with its raw body and signature."""

    received: list[Delivery] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hooks", self._receive)
        self._runner, base = await serve_locally(app)
        self.url = f"{base}/hooks"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        raw = await request.read()
        self.received.append(Delivery(await request.json(), raw, request.headers.get(SIGNATURE_HEADER, "")))
        async with self._arrived:
            self._arrived.notify_all()
        return web.Response(status=204)

    async def until(self, arrived: Callable[[], bool]) -> None:
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(arrived), BOUND_S)

    def of(self, event_id: str) -> list[Delivery]:
        return [d for d in self.received if d.body["id"] == event_id]


@pytest_asyncio.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as running:
        yield running


@pytest_asyncio.fixture
async def second_gateway(settings: Settings, database_url: str, temporal_env: WorkflowEnvironment
                         ) -> AsyncIterator[TestClient]:
    """Another gateway process on the same database: its own store, its own key cache."""
    store = await open_store(database_url)
    app = create_app(settings, store=store, temporal=temporal_env.client)
    async with TestClient(GatewayTestServer(app)) as client:
        yield client
    await store.close()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def cancelled_event(http: TestClient, who: Actor, book) -> str:  # type: ignore[no-untyped-def]
    """An automatic cancellation's ``cancellation.completed`` event id."""
    product_id = (await book(who, flight()))["products"][0]["product_id"]
    done = await cancel_with_a_quote(http, who, product_id)
    assert done.status == 200, await done.text()
    feed = await (await http.get("/v1/events", headers=who.headers)).json()
    # The flow's own event (its refund.posted is stored with it, docs/settlement.md).
    return str([item["id"] for item in feed["items"] if item["type"] == "cancellation.completed"][-1])


async def delivery_of(http: TestClient, who: Actor, event_id: str) -> dict[str, Any]:
    feed = await (await http.get("/v1/events?limit=200", headers=who.headers)).json()
    return dict(next(item["delivery"] for item in feed["items"] if item["id"] == event_id))


# --- keys ---------------------------------------------------------------------------------------


async def test_admin_revokes_one_key_or_all_of_a_principal(http: TestClient, second_gateway: TestClient,
                                                           partner: Actor, agent: Actor) -> None:
    listed = await http.get(f"/v1/admin/api-keys?principal_id={agent.id}", headers=ADMIN)
    assert listed.status == 200
    (key,) = (await listed.json())["items"]
    assert key["status"] == "active" and key["role"] == "agent" and "api_key" not in key
    assert (await http.get("/v1/agent/cancellations", headers=agent.headers)).status == 200  # cached now

    revoked = await http.post(f"/v1/admin/api-keys/{key['key_id']}/revoke", headers=ADMIN)
    assert revoked.status == 200 and (await revoked.json())["status"] == "revoked"
    # At once in the process that revoked it, and in any process that had not cached it.
    await problem(await http.get("/v1/agent/cancellations", headers=agent.headers), 401, "unauthorized")
    await problem(await second_gateway.get("/v1/agent/cancellations", headers=agent.headers), 401, "unauthorized")

    issued = await http.post("/v1/admin/api-keys", json={"principal_id": agent.id}, headers=ADMIN)
    assert issued.status == 201
    fresh = await issued.json()
    assert fresh["role"] == "agent" and fresh["principal_id"] == agent.id
    assert (await http.get("/v1/agent/cancellations", headers=bearer(fresh["api_key"]))).status == 200

    everything = await http.post("/v1/admin/api-keys/revoke", json={"principal_id": partner.id}, headers=ADMIN)
    assert everything.status == 200 and {k["status"] for k in (await everything.json())["items"]} == {"revoked"}
    await problem(await http.get("/v1/events", headers=partner.headers), 401, "unauthorized")

    await problem(await http.post("/v1/admin/api-keys/key_nope/revoke", headers=ADMIN), 404, "not_found")
    await problem(await http.post("/v1/admin/api-keys", json={"principal_id": "ptn_nope"}, headers=ADMIN), 404,
                  "not_found")
    await problem(await http.get("/v1/admin/api-keys?principal_id=ptn_nope", headers=ADMIN), 404, "not_found")
    await problem(await http.post(f"/v1/admin/api-keys/{key['key_id']}/revoke", headers=bearer(fresh["api_key"])),
                  403, "forbidden")


async def test_partner_rotates_its_key_and_the_old_one_ends_with_its_grace(
    http: TestClient, second_gateway: TestClient, store: Store, partner: Actor
) -> None:
    rotated = await http.post("/v1/partner/api-keys/rotate", json={}, headers=partner.headers)
    assert rotated.status == 201
    body = await rotated.json()
    assert set(body) == {"key_id", "api_key", "previous_key_expires_at"}
    ends = datetime.fromisoformat(body["previous_key_expires_at"])
    assert timedelta(hours=23) < ends - datetime.now(timezone.utc) <= timedelta(hours=24)

    # During the grace period both keys work.
    for key in (partner.key, body["api_key"]):
        assert (await http.get("/v1/events", headers=bearer(key))).status == 200
    keys = {k["status"] for k in (await (await http.get(f"/v1/admin/api-keys?principal_id={partner.id}",
                                                        headers=ADMIN)).json())["items"]}
    assert keys == {"active", "expiring"}

    # Once it is over (moved into the past here), the old key is 401 and the new one goes on.
    async with store.engine.begin() as conn:
        await conn.execute(api_keys.update().where(api_keys.c.principal_id == partner.id, api_keys.c.expires_at.is_not(None))
                           .values(expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    await problem(await second_gateway.get("/v1/events", headers=partner.headers), 401, "unauthorized")
    assert (await second_gateway.get("/v1/events", headers=bearer(body["api_key"]))).status == 200


# --- webhook secret rotation and redelivery -------------------------------------------------------


async def redelivered(temporal_env: WorkflowEnvironment, event_id: str) -> None:
    """Wait (bounded) until the event's redelivery has ended: a redeliver call before that joins it."""
    handle = temporal_env.client.get_workflow_handle(redelivery_workflow_id(event_id))
    assert await asyncio.wait_for(handle.result(), BOUND_S) == "delivered"


async def test_secret_rotation_signs_with_both_secrets_during_the_overlap(
    http: TestClient, store: Store, receiver: Receiver, temporal_env: WorkflowEnvironment,
    book  # type: ignore[no-untyped-def]
) -> None:
    partner = await new_partner(http, "Rotating", webhook_url=receiver.url)
    old_secret = partner.body["webhook_secret"]
    event_id = await cancelled_event(http, partner, book)
    await receiver.until(lambda: len(receiver.of(event_id)) == 1)
    # Recorded (the delivery records its attempt after the webhook answered).
    first_delivery = temporal_env.client.get_workflow_handle(trigger_workflow_id(event_id))
    assert await asyncio.wait_for(first_delivery.result(), BOUND_S) == "delivered"
    first = receiver.of(event_id)[0]
    assert first.signature.count("v1=") == 1 and verify(old_secret, first.signature, first.raw, 300, time.time())

    rotated = await http.post("/v1/partner/webhook/rotate-secret", json={}, headers=partner.headers)
    assert rotated.status == 201
    body = await rotated.json()
    new_secret = body["webhook_secret"]
    assert new_secret != old_secret and datetime.fromisoformat(body["previous_secret_expires_at"]) > datetime.now(timezone.utc)

    again = await http.post(f"/v1/events/{event_id}/redeliver", headers=partner.headers)
    assert again.status == 202 and await again.json() == {
        "id": event_id, "redelivery": "scheduled", "delivery": {"status": "delivered", "attempts": 1}}
    await receiver.until(lambda: len(receiver.of(event_id)) == 2)
    await redelivered(temporal_env, event_id)
    second = receiver.of(event_id)[1]
    assert second.raw == first.raw and second.signature.count("v1=") == 2
    for secret in (old_secret, new_secret):  # a receiver holding either secret accepts it
        assert verify(secret, second.signature, second.raw, 300, time.time())

    # After the overlap only the new secret signs.
    async with store.engine.begin() as conn:
        await conn.execute(partners.update().where(partners.c.partner_id == partner.id)
                           .values(previous_secret_expires_at=datetime.now(timezone.utc) - timedelta(seconds=1)))
    assert (await http.post(f"/v1/events/{event_id}/redeliver", headers=partner.headers)).status == 202
    await receiver.until(lambda: len(receiver.of(event_id)) == 3)
    third = receiver.of(event_id)[2]
    assert third.signature.count("v1=") == 1
    assert verify(new_secret, third.signature, third.raw, 300, time.time())
    assert not verify(old_secret, third.signature, third.raw, 300, time.time())


async def test_redelivery_is_for_the_partners_own_events_with_a_webhook(
    http: TestClient, partner: Actor, other_partner: Actor, book  # type: ignore[no-untyped-def]
) -> None:
    event_id = await cancelled_event(http, partner, book)
    await problem(await http.post(f"/v1/events/{event_id}/redeliver", headers=other_partner.headers), 404, "not_found")
    await problem(await http.post("/v1/events/evt_doesnotexist000000/redeliver", headers=partner.headers), 404,
                  "not_found")
    await problem(await http.post(f"/v1/events/{event_id}/redeliver", headers=partner.headers), 409, "webhook_not_set")
    await problem(await http.post(f"/v1/events/{event_id}/redeliver", headers=ADMIN), 403, "forbidden")


# --- late delivery: the outbox dispatcher ----------------------------------------------------------


async def test_events_stored_without_a_webhook_are_delivered_once_one_is_set(
    http: TestClient, store: Store, receiver: Receiver, partner: Actor, settings: Settings,
    temporal_env: WorkflowEnvironment, book  # type: ignore[no-untyped-def]
) -> None:
    event_id = await cancelled_event(http, partner, book)
    dispatcher = OutboxDispatcher(store.events, temporal_env.client, settings)
    assert await delivery_of(http, partner, event_id) == {"status": "pending", "attempts": 0}
    assert event_id not in [e.event_id for e in await store.events.undispatched(1000)]  # no webhook: nothing to start yet

    # An event another part of the service wrote straight into the outbox (settlement's refund.posted).
    written = "evt_refundposted" + partner.id[-4:]
    async with store.engine.begin() as conn:
        await conn.execute(events.insert().values(
            event_id=written, partner_id=partner.id, type="refund.posted", flow_code=None,
            payload={"id": written, "type": "refund.posted", "created_at": datetime.now(timezone.utc).isoformat(),
                     "data": {}},
            created_at=datetime.now(timezone.utc), delivery_status="pending", attempts=0))

    # The feed shows an event once every transaction older than it is over, on the whole PostgreSQL
    # server (docs/triggers.md#the-feeds-order): wait (bounded) until it shows both.
    stored = (await feed_of(http, partner.headers, 3, "?limit=200"))["items"]
    assert {event_id, written} <= {e["id"] for e in stored}
    assert (await http.put("/v1/partner/webhook", json={"url": receiver.url}, headers=partner.headers)).status == 200
    stop = asyncio.Event()
    running = asyncio.create_task(sweep_forever(dispatcher.sweep, name="outbox_dispatcher", every=timedelta(milliseconds=200),
                                                stop=stop, full_batch=BATCH))
    try:
        # Every event stored without a webhook: the flow's (its completion and its refund) and the one written.
        await receiver.until(lambda: {d.body["id"] for d in receiver.received} >= {e["id"] for e in stored})
    finally:
        stop.set()
        await running
    assert sorted(d.body["type"] for d in receiver.received) == sorted(e["type"] for e in stored)
    assert receiver.of(event_id) and receiver.of(written)
    for delivered in (event_id, written):  # the delivery records its attempt after the webhook answered
        handle = temporal_env.client.get_workflow_handle(trigger_workflow_id(delivered))
        assert await asyncio.wait_for(handle.result(), BOUND_S) == "delivered"
    assert await delivery_of(http, partner, event_id) == {"status": "delivered", "attempts": 1}
    async with store.engine.connect() as conn:
        undispatched = (await conn.execute(sa.select(sa.func.count()).select_from(events)
                                           .where(events.c.partner_id == partner.id, events.c.dispatched_at.is_(None)))
                        ).scalar_one()
    assert undispatched == 0
    assert await dispatcher.sweep() == 0  # a sweep over a quiet outbox starts nothing
