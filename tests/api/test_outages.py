"""A dependency that is down answers 503 with Retry-After, never 500 (docs/api.md#errors): the gateway
pointed at a Temporal address nobody listens on, and at a PostgreSQL port nobody listens on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp.test_utils import TestClient
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from config.settings import Settings
from store.db import create_engine
from store.repositories import Store, store_over
from tests.api.conftest import ADMIN, flight, reservation_body
from tests.api.test_foundation import problem
from tests.conftest import GatewayTestServer, make_settings

NOBODY = "127.0.0.1:1"  # a port nobody listens on


async def unavailable(response, code: str) -> None:  # type: ignore[no-untyped-def]
    await problem(response, 503, code)
    assert int(response.headers["Retry-After"]) > 0


@pytest_asyncio.fixture
async def without_temporal(settings: Settings, store: Store) -> AsyncIterator[TestClient]:
    temporal = await Client.connect(NOBODY, lazy=True, data_converter=pydantic_data_converter)
    async with TestClient(GatewayTestServer(create_app(settings, store=store, temporal=temporal))) as client:
        yield client


async def test_temporal_down_is_503_temporal_unavailable(without_temporal: TestClient) -> None:
    http = without_temporal
    created = await (await http.post("/v1/admin/partners", json={"name": "Outage"}, headers=ADMIN)).json()
    headers = {"Authorization": f"Bearer {created['api_key']}"}
    reservation = await (await http.post("/v1/sandbox/reservations", json=reservation_body(flight()),
                                         headers=headers)).json()
    product_id = reservation["products"][0]["product_id"]
    quote = await (await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={}, headers=headers)).json()
    for _ in range(2):  # the failed start gave the product back: the retry is 503 again, not 409
        cancel = await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                                 headers={**headers, "Idempotency-Key": "cancel-during-outage"})
        await unavailable(cancel, "temporal_unavailable")
    health = await http.get("/healthz")
    assert health.status == 503 and (await health.json())["temporal"] == "unavailable"


@pytest_asyncio.fixture
async def without_database(temporal_env: WorkflowEnvironment) -> AsyncIterator[TestClient]:
    settings = make_settings(f"postgresql+asyncpg://aftersales@{NOBODY}/aftersales")
    engine = create_engine(settings.database_url)
    # Not open_store: it would migrate first, and there is no database to migrate.
    store = store_over(engine)
    async with TestClient(GatewayTestServer(create_app(settings, store=store, temporal=temporal_env.client))) as client:
        yield client
    await engine.dispose()


async def test_database_down_is_503_database_unavailable(without_database: TestClient) -> None:
    http = without_database
    await unavailable(await http.post("/v1/admin/partners", json={"name": "Outage"}, headers=ADMIN),
                      "database_unavailable")
    # Authenticating a partner's key needs the database: 503 too, never 401 nor 500.
    await unavailable(await http.get("/v1/events", headers={"Authorization": "Bearer ask_somekey"}),
                      "database_unavailable")
    await unavailable(await http.post("/v1/admin/agents", json={"name": "x"},
                                      headers={**ADMIN, "Idempotency-Key": "during-outage"}), "database_unavailable")
    health = await http.get("/healthz")
    assert health.status == 503 and (await health.json())["database"] == "unavailable"
