"""Request budgets over real HTTP (docs/api.md#rate-limits), on SQLite and PostgreSQL: one partner's
flood is refused with 429 and the headers while another partner, at the same time, is served in full;
made-up keys are refused per address before they are looked up; the monitoring endpoints have a
budget of their own; a budget refills with time, moved by the gateway's clock seam, never by sleeping."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.rate_limits import RateLimiter
from config.settings import Settings
from store.accounts import Accounts, Principal
from store.repositories import Store
from tests.api.conftest import ADMIN, Actor, new_partner, reservation_body
from tests.conftest import GatewayTestServer, make_settings

# Four a second, eight at once: quarter seconds are exact in binary, so the clock's arithmetic is too.
RATE, BURST = 4, 8
POLICY = f'"account";q={RATE};w=1;aftersales-burst={BURST}'


class Clock:
    """The budgets' monotonic clock, standing still until a test moves it; the pauses the gateway
    takes before a refusal are noted, not waited for."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.pauses: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    async def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"AFTERSALES_RATE_LIMIT": f"{RATE}/s,burst={BURST}"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest_asyncio.fixture
async def http(settings: Settings, store: Store, temporal_env: WorkflowEnvironment, worker: Worker,
               clock: Clock) -> AsyncIterator[TestClient]:
    app = create_app(settings, store=store, temporal=temporal_env.client,
                     rate_limiter=RateLimiter(settings, clock, clock.pause))
    async with TestClient(GatewayTestServer(app)) as client:
        yield client


async def book(http: TestClient, who: Actor) -> dict[str, Any]:
    response = await http.post("/v1/sandbox/reservations", json=reservation_body(), headers=who.headers)
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def assert_refused(response: ClientResponse, policy: str = "account") -> None:
    assert response.status == 429, await response.text()
    assert response.content_type == "application/problem+json"
    assert (await response.json())["code"] == "rate_limited"
    # Whole seconds until the next request may go: a quarter of a second, rounded up.
    assert response.headers["Retry-After"] == "1"
    assert response.headers["RateLimit-Policy"] == f'"{policy}";q={RATE};w=1;aftersales-burst={BURST}'
    assert response.headers["RateLimit"] == f'"{policy}";r=0;t=1'


async def test_a_flooding_partner_is_refused_while_another_is_served_in_full(http: TestClient, clock: Clock) -> None:
    flooder, other = await new_partner(http, "Flood Travel"), await new_partner(http, "Quiet Travel")
    flooder_reservation, other_reservation = await book(http, flooder), await book(http, other)

    async def read(who: Actor, reservation: dict[str, Any]) -> tuple[str, ClientResponse, dict[str, Any]]:
        response = await http.get(f"/v1/reservations/{reservation['reservation_id']}", headers=who.headers)
        return who.id, response, await response.json()

    # One request of each budget went to booking; the other partner's next seven are interleaved
    # with sixty of the flooder's, all in flight at once.
    calls: list[Awaitable[tuple[str, ClientResponse, dict[str, Any]]]] = []
    for i in range(60):
        calls.append(read(flooder, flooder_reservation))
        if i % 9 == 0:
            calls.append(read(other, other_reservation))
    answers = await asyncio.gather(*calls)

    others = [(response, body) for who, response, body in answers if who == other.id]
    assert len(others) == 8 - 1
    for response, body in others:
        assert response.status == 200
        assert body["reservation_id"] == other_reservation["reservation_id"]
        assert body["products"] == other_reservation["products"]
        assert response.headers["RateLimit-Policy"] == POLICY
    floods = [(response, body) for who, response, body in answers if who == flooder.id]
    served = [response for response, _body in floods if response.status == 200]
    refused = [response for response, _body in floods if response.status != 200]
    assert len(served) == BURST - 1 and len(refused) == 60 - (BURST - 1)
    for response in refused:
        await assert_refused(response)
    # Each refusal was answered once its Retry-After had passed, and nothing else waited.
    assert clock.pauses == [1] * len(refused)
    # What was left after each served request, counting down to nothing.
    assert sorted(response.headers["RateLimit"] for response in served) == sorted(
        f'"account";r={left};t={-(-(BURST - left) // RATE)}' for left in range(BURST - 2, -1, -1))


async def test_the_budget_refills_with_time(http: TestClient, clock: Clock) -> None:
    partner = await new_partner(http)
    reservation = await book(http, partner)
    path = f"/v1/reservations/{reservation['reservation_id']}"
    for _ in range(BURST - 1):
        assert (await http.get(path, headers=partner.headers)).status == 200
    await assert_refused(await http.get(path, headers=partner.headers))

    clock.advance(1 / RATE / 2)  # half a request's worth: still nothing to spend
    await assert_refused(await http.get(path, headers=partner.headers))
    clock.advance(1 / RATE / 2)  # one request's worth
    served = await http.get(path, headers=partner.headers)
    assert served.status == 200 and served.headers["RateLimit"] == f'"account";r=0;t={BURST // RATE}'
    await assert_refused(await http.get(path, headers=partner.headers))

    clock.advance(3600)  # a quiet hour refills the bucket to its burst, no more
    answers = [await http.get(path, headers=partner.headers) for _ in range(BURST + 1)]
    assert [a.status for a in answers] == [200] * BURST + [429]
    assert answers[0].headers["RateLimit"] == f'"account";r={BURST - 1};t=1'


async def test_made_up_keys_are_refused_per_address_before_any_lookup(
    http: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This gateway trusts what it looked up for no time at all: every request of a key it has seen
    # valid is looked up again, at the expense of the key's account, not of its address.
    monkeypatch.setattr("store.accounts.AUTH_CACHE_TTL", timedelta(0))
    partner = await new_partner(http)  # the admin's key is known without a lookup: the address spends nothing
    assert (await http.get("/v1/me", headers=partner.headers)).status == 200  # never seen: one of the address's
    lookups: list[str] = []
    looked_up = Accounts.principal_for

    async def counted(accounts: Accounts, api_key: str) -> Principal | None:
        lookups.append(api_key)
        return await looked_up(accounts, api_key)

    monkeypatch.setattr(Accounts, "principal_for", counted)
    answers = [await http.get("/v1/me", headers={"Authorization": f"Bearer ask_{secrets.token_urlsafe(32)}"})
               for _ in range(BURST + 4)]
    assert [a.status for a in answers] == [401] * (BURST - 1) + [429] * 5
    await assert_refused(answers[-1], "address")
    assert len(lookups) == BURST - 1  # the refused ones never reached the database
    # Requests without a key, or with a malformed one, spend from the same budget.
    await assert_refused(await http.get("/v1/openapi.json"), "address")
    await assert_refused(await http.get("/v1/me", headers={"Authorization": "Basic x"}), "address")

    # A key this gateway has seen valid, and the monitoring endpoints, go by budgets of their own.
    served = await http.get("/v1/me", headers=partner.headers)
    assert served.status == 200 and served.headers["RateLimit"].startswith('"account";')
    assert lookups[-1] == partner.key
    assert (await http.get("/healthz")).status == 200


async def test_the_monitoring_endpoints_have_a_budget_of_their_own(http: TestClient, clock: Clock) -> None:
    partner = await new_partner(http)
    polls = [await http.get(path) for path in ["/healthz", "/metrics"] * (BURST // 2)]
    assert [p.status for p in polls] == [200] * BURST
    assert polls[0].headers["RateLimit"] == f'"monitoring";r={BURST - 1};t=1'
    await assert_refused(await http.get("/healthz"), "monitoring")
    await assert_refused(await http.get("/metrics"), "monitoring")
    # Nobody else is slowed: the API and the public documents are served as before.
    assert (await http.get("/v1/me", headers=partner.headers)).status == 200
    assert (await http.get("/v1/openapi.json")).status == 200
    clock.advance(1 / RATE)
    assert (await http.get("/healthz")).status == 200


async def test_a_role_may_have_a_budget_of_its_own(
    database_url: str, store: Store, temporal_env: WorkflowEnvironment, clock: Clock
) -> None:
    roomy = make_settings(database_url, AFTERSALES_RATE_LIMIT=f"{RATE}/s,burst={BURST}",
                          AFTERSALES_RATE_LIMIT_ADMIN="100/s,burst=300")
    app = create_app(roomy, store=store, temporal=temporal_env.client, rate_limiter=RateLimiter(roomy, clock, clock.pause))
    async with TestClient(GatewayTestServer(app)) as client:
        answers = [await client.get("/v1/me", headers=ADMIN) for _ in range(BURST * 2)]
        assert [a.status for a in answers] == [200] * (BURST * 2)
        assert answers[-1].headers["RateLimit-Policy"] == '"account";q=100;w=1;aftersales-burst=300'
        partner = await new_partner(client)
        answers = [await client.get("/v1/me", headers=partner.headers) for _ in range(BURST + 1)]
        assert [a.status for a in answers] == [200] * BURST + [429]



async def test_refusals_held_back_at_once_are_bounded(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past MAX_PAUSED refusals held at once, the next is answered without a pause: a client opening
    connection after connection cannot make the gateway hold an unbounded number of them."""
    import api.rate_limits as rate_limits

    monkeypatch.setattr(rate_limits, "MAX_PAUSED", 3)
    release = asyncio.Event()
    held: list[float] = []
    three_held = asyncio.Event()

    async def pause(seconds: float) -> None:
        held.append(seconds)
        if len(held) == 3:
            three_held.set()
        await release.wait()

    limiter = RateLimiter(settings, pause=pause)
    waiting = [asyncio.create_task(limiter.hold(1.0)) for _ in range(3)]
    await asyncio.wait_for(three_held.wait(), 5)
    # The fourth is not held: it returns at once although the three are still paused.
    await asyncio.wait_for(limiter.hold(1.0), 5)
    assert len(held) == 3
    release.set()
    await asyncio.wait_for(asyncio.gather(*waiting), 5)
    # Once they are answered, a refusal is held back again.
    await asyncio.wait_for(limiter.hold(1.0), 5)
    assert len(held) == 4
