"""SSRF-safe webhooks in production (docs/triggers.md#where-triggers-may-go), on SQLite and PostgreSQL:
every address class refused at registration (422 ``webhook_url_refused``) and again at delivery,
where a refused address is a failed attempt and no request is made. Names resolve through a
resolver seam: nothing here is sent anywhere but 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient
from temporalio.testing import WorkflowEnvironment

from activities.webhooks import TriggerActivities
from api.app import create_app
from config.settings import Settings
from domain.codes import EVENT_ID
from domain.webhook_urls import WebhookPolicy
from ports.webhook_guard import WebhookGuard
from store.repositories import Store
from store.schema import events, partners
from tests.api.test_foundation import problem
from tests.conftest import GatewayTestServer
from tests.local_server import serve_locally

ADMIN_KEY = "a-production-admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}

# What the seam says names resolve to; any other name does not resolve.
NAMES = {
    "partner.example": ["93.184.216.34"],
    "rebind.partner.example": ["127.0.0.1"],
    "metadata.partner.example": ["169.254.169.254"],
    "office.partner.example": ["10.0.0.1"],
    "split.partner.example": ["93.184.216.34", "192.168.1.20"],  # one bad answer refuses the name
    "v6loop.partner.example": ["::1"],
    "anycast.partner.example": ["0.0.0.0"],
}

# The list, as an attacker sent it (http), and as https: refused either way.
REFUSED = [
    "http://127.0.0.1:8080/hooks", "http://169.254.169.254/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/", "http://10.0.0.1/", "http://0.0.0.0:8080/",
    "http://2130706433:8080/", "http://[::1]:8080/", "http://user:pass@partner.example/hooks",
    "https://127.0.0.1:8443/hooks", "https://169.254.169.254/latest/meta-data/",
    "https://metadata.google.internal/computeMetadata/v1/", "https://10.0.0.1/", "https://0.0.0.0:8443/",
    "https://2130706433:8443/", "https://[::1]:8443/", "https://user:pass@partner.example/hooks",
    "https://[::ffff:127.0.0.1]/", "https://224.0.0.1/", "https://240.0.0.1/", "https://localhost/hooks",
    "https://rebind.partner.example/hooks", "https://metadata.partner.example/", "https://office.partner.example/",
    "https://split.partner.example/", "https://v6loop.partner.example/", "https://anycast.partner.example/",
]


async def seam(host: str, port: int) -> list[str]:
    if host in NAMES:
        return NAMES[host]
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"AFTERSALES_ENV": "production", "AFTERSALES_ADMIN_KEY": ADMIN_KEY}


@pytest_asyncio.fixture
async def gateway(settings: Settings, store: Store, temporal_env: WorkflowEnvironment) -> AsyncIterator[TestClient]:
    app = create_app(settings, store=store, temporal=temporal_env.client, webhook_resolver=seam)
    async with TestClient(GatewayTestServer(app)) as client:
        yield client


async def new_partner(gateway: TestClient) -> dict[str, Any]:
    response = await gateway.post("/v1/admin/partners", json={"name": "Prod partner"}, headers=ADMIN)
    assert response.status == 201, await response.text()
    return dict(await response.json())


@pytest.mark.parametrize("url", REFUSED)
async def test_refused_at_registration(gateway: TestClient, url: str) -> None:
    created = await gateway.post("/v1/admin/partners", json={"name": "SSRF", "webhook_url": url}, headers=ADMIN)
    body = await problem(created, 422, "webhook_url_refused")
    assert body["errors"][0]["field"] == "webhook_url"

    partner = await new_partner(gateway)
    updated = await gateway.put("/v1/partner/webhook", json={"url": url},
                                headers={"Authorization": f"Bearer {partner['api_key']}"})
    body = await problem(updated, 422, "webhook_url_refused")
    assert body["errors"][0]["field"] == "url" and body["errors"][0]["message"]


async def test_public_https_webhooks_are_accepted(gateway: TestClient) -> None:
    partner = await new_partner(gateway)
    headers = {"Authorization": f"Bearer {partner['api_key']}"}
    for url in ("https://partner.example/hooks", "https://not-yet-in-dns.partner.example/hooks"):
        response = await gateway.put("/v1/partner/webhook", json={"url": url}, headers=headers)
        assert response.status == 200 and (await response.json())["url"] == url


async def test_a_url_longer_than_the_column_is_a_422_not_a_500(gateway: TestClient) -> None:
    partner = await new_partner(gateway)
    headers = {"Authorization": f"Bearer {partner['api_key']}"}
    for length in (2001, 2083, 2100):
        url = "https://partner.example/" + "a" * (length - len("https://partner.example/"))
        await problem(await gateway.put("/v1/partner/webhook", json={"url": url}, headers=headers), 422,
                      "validation_failed")
    fits = "https://partner.example/" + "a" * (2000 - len("https://partner.example/"))
    assert (await gateway.put("/v1/partner/webhook", json={"url": fits}, headers=headers)).status == 200


class Receiver:
    """A webhook on 127.0.0.1 that counts what reaches it (nothing should)."""

    def __init__(self) -> None:
        self.hits = 0
        self.port = 0
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> Receiver:
        async def receive(request: web.Request) -> web.Response:
            self.hits += 1
            return web.Response(status=204)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", receive)
        self._runner, _ = await serve_locally(app)
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


def loopback_only() -> aiohttp.TraceConfig:
    """A safety net for the test itself: a request to anything but 127.0.0.1 fails before connecting."""
    trace = aiohttp.TraceConfig()

    async def check(session: object, context: object, params: aiohttp.TraceRequestStartParams) -> None:
        if params.url.host != "127.0.0.1":
            raise AssertionError(f"the test was about to send a request to {params.url.host}")

    trace.on_request_start.append(check)
    return trace


async def stored_event(store: Store, webhook_url: str) -> str:
    """A pending event of a partner whose URL is already stored (as if DNS changed after registration)."""
    partner, _key = await store.accounts.create_partner("Rebinding", None)
    event_id = EVENT_ID.secure()
    now = datetime.now(timezone.utc)
    async with store.engine.begin() as conn:
        await conn.execute(partners.update().where(partners.c.partner_id == partner.partner_id)
                           .values(webhook_url=webhook_url))
        await conn.execute(events.insert().values(
            event_id=event_id, partner_id=partner.partner_id, type="cancellation.completed", flow_code=None,
            payload={"id": event_id, "type": "cancellation.completed"}, created_at=now, delivery_status="pending",
            attempts=0))
    return event_id


async def attempts(store: Store, event_id: str) -> tuple[int, str | None]:
    async with store.engine.connect() as conn:
        row = (await conn.execute(sa.select(events.c.attempts, events.c.last_error)
                                  .where(events.c.event_id == event_id))).one()
    return row.attempts, row.last_error


@pytest.mark.parametrize("name", ["rebind.partner.example", "v6loop.partner.example", "metadata.partner.example",
                                  "office.partner.example", "split.partner.example", "anycast.partner.example",
                                  "gone.partner.example"])
async def test_refused_at_delivery_is_a_failed_attempt_without_a_request(store: Store, name: str) -> None:
    async with Receiver() as receiver, aiohttp.ClientSession(trace_configs=[loopback_only()]) as http:
        event_id = await stored_event(store, f"https://{name}:{receiver.port}/hooks")
        triggers = TriggerActivities(store.events, WebhookGuard(WebhookPolicy.production(), seam), http)
        with pytest.raises(Exception, match="refused"):
            await triggers.deliver_event(event_id)
        assert receiver.hits == 0
    count, error = await attempts(store, event_id)
    assert count == 1 and error is not None and error.startswith("refused: ")


async def test_a_literal_address_stored_before_the_rules_is_refused_at_delivery(store: Store) -> None:
    async with Receiver() as receiver, aiohttp.ClientSession(trace_configs=[loopback_only()]) as http:
        event_id = await stored_event(store, f"http://127.0.0.1:{receiver.port}/hooks")
        triggers = TriggerActivities(store.events, WebhookGuard(WebhookPolicy.production(allow_http=True), seam), http)
        with pytest.raises(Exception, match="loopback"):
            await triggers.deliver_event(event_id)
        assert receiver.hits == 0
        # The sandbox's rules accept the same loopback receiver.
        sandbox = TriggerActivities(store.events, WebhookGuard(WebhookPolicy.sandbox(), seam), http)
        assert await sandbox.deliver_event(event_id) == "delivered"
        assert receiver.hits == 1


async def test_the_connection_goes_to_the_vetted_address_with_the_partners_host_name(store: Store) -> None:
    async def local(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    seen: list[str] = []

    async def receive(request: web.Request) -> web.Response:
        seen.append(request.headers["Host"])
        return web.Response(status=200)

    app = web.Application()
    app.router.add_post("/hooks", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        event_id = await stored_event(store, f"http://receiver.partner.example:{port}/hooks")
        triggers = TriggerActivities(store.events, WebhookGuard(WebhookPolicy.sandbox(), local))
        assert await triggers.deliver_event(event_id) == "delivered"
    finally:
        await runner.cleanup()
    assert seen == [f"receiver.partner.example:{port}"]


async def test_redirects_are_not_followed(store: Store) -> None:
    async with Receiver() as target:
        async def bounce(request: web.Request) -> web.Response:
            raise web.HTTPFound(f"http://127.0.0.1:{target.port}/elsewhere")

        app = web.Application()
        app.router.add_post("/hooks", bounce)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        try:
            event_id = await stored_event(store, f"http://127.0.0.1:{runner.addresses[0][1]}/hooks")
            triggers = TriggerActivities(store.events, WebhookGuard(WebhookPolicy.sandbox(), seam))
            with pytest.raises(Exception, match="HTTP 302"):
                await triggers.deliver_event(event_id)
        finally:
            await runner.cleanup()
        assert target.hits == 0
