"""Schemathesis against ``/v1/openapi.json`` (docs/api.md#get-v1openapijson): every operation, with the
partner's, the agent's and the admin's keys, valid and invalid data, a bounded number of examples.
No answer may be a server error, and every answer must match the schema the gateway publishes.

The gateway and a worker run in this process on SQLite; the fuzzer is the schemathesis CLI in a
subprocess. Deliveries of fuzzed webhooks go to 127.0.0.1 or nowhere: the worker's webhook guard
here refuses every other address, so no fuzzed URL is ever contacted.

``AFTERSALES_FUZZ_EXAMPLES`` raises the number of examples per operation for a larger run.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import xml.etree.ElementTree as ElementTree
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from config.settings import Settings
from domain.webhook_urls import WebhookPolicy
from ports.webhook_guard import Destination, WebhookGuard, WebhookRefused
from store.repositories import Store, open_store
from tests.api.conftest import ADMIN, flight, hotel, reservation_body
from tests.conftest import GatewayTestServer, make_settings
from worker.registry import build_activities, workflow_worker

EXAMPLES = int(os.environ.get("AFTERSALES_FUZZ_EXAMPLES", "8"))
CHECKS = "not_a_server_error,response_schema_conformance,content_type_conformance,status_code_conformance"
RUN_BOUND_S = 1800


class LoopbackOnly(WebhookGuard):
    """The sandbox's rules, and nothing but 127.0.0.1 / ::1 besides: a fuzzed URL is never contacted."""

    async def destination(self, url: str) -> Destination:
        found = await super().destination(url)
        if found.address not in ("127.0.0.1", "::1"):
            raise WebhookRefused("the fuzz test sends to loopback only")
        return found


async def offline(host: str, port: int) -> list[str]:
    raise OSError("names do not resolve in the fuzz test")


@pytest_asyncio.fixture
async def fuzzed(tmp_path: Path, temporal_env: WorkflowEnvironment) -> AsyncIterator[tuple[TestClient, Settings]]:
    # Deliveries to fuzzed webhooks are refused and would retry for days on the session's dev server
    # (thousands of them in a large run, enough to slow its health check): give up after seconds.
    settings = make_settings(f"sqlite+aiosqlite:///{tmp_path / 'fuzz.db'}", AFTERSALES_SYNC_WAIT="2s",
                             AFTERSALES_SANDBOX_SUPPLIER_DELAY="1s", AFTERSALES_WEBHOOK_RETRY_FOR="3s")
    store: Store = await open_store(settings.database_url)
    guard = LoopbackOnly(WebhookPolicy.sandbox(), offline)
    worker = workflow_worker(temporal_env.client, settings.task_queue, build_activities(settings, store, guard=guard))
    app = create_app(settings, store=store, temporal=temporal_env.client, webhook_resolver=offline)
    async with worker, TestClient(GatewayTestServer(app)) as client:
        yield client, settings
    await store.close()


def operations_for(spec: dict[str, Any], role: str) -> list[str]:
    """The operation ids a role may call (and the public ones): calling others only tests the 403."""
    found = []
    for operations in spec["paths"].values():
        for operation in operations.values():
            roles = operation.get("description", "")
            if not roles or role in roles:
                found.append(operation["operationId"])
    return found


async def seeded_ids(http: TestClient, partner: dict[str, str], agent: dict[str, str]) -> dict[str, str]:
    """Objects for the fuzzer to reach past 404: a reservation with a flight and a hotel, a manual
    cancellation the agent has quoted (and its event), and a special request."""
    flight_product, hotel_product = flight(), hotel()
    reservation = await (await http.post("/v1/sandbox/reservations", json=reservation_body(flight_product, hotel_product),
                                         headers=partner)).json()
    flight_id, hotel_id = (p["product_id"] for p in reservation["products"])
    quote = await (await http.post(f"/v1/products/{hotel_id}/cancellation-quotes", json={}, headers=partner)).json()
    code = (await (await http.post(f"/v1/products/{hotel_id}/cancellations", json={"quote_id": quote["quote_id"]},
                                   headers=partner)).json())["code"]
    quoted = await http.post(f"/v1/agent/cancellations/{code}/quote", headers=agent, json={
        "penalty": {"amount": "100.00", "currency": "EUR"}, "refund": {"amount": "500.00", "currency": "EUR"}})
    assert quoted.status == 200, await quoted.text()
    request = await (await http.post(f"/v1/products/{flight_id}/special-requests",
                                     json={"code": "WCHR", "traveller_id": "T1"}, headers=partner)).json()
    event = (await (await http.get("/v1/events", headers=partner)).json())["items"][0]["id"]
    return {"path.product_id": flight_id, "path.reservation_id": reservation["reservation_id"], "path.code": code,
            "path.request_id": request["request_id"], "path.event_id": event}


def config_file(path: Path, ids: dict[str, str]) -> Path:
    path.write_text("[parameters]\n" + "".join(f'"{name}" = "{value}"\n' for name, value in ids.items()))
    return path


async def schemathesis(base: str, key: str, operations: list[str], report: Path, config: Path) -> tuple[int, str]:
    command = [
        str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config), "run", f"{base}/v1/openapi.json",
        "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", "14", "--workers", "1",
        "--header", f"Authorization: Bearer {key}", "--request-timeout", "30", "--suppress-health-check", "all",
        "--report", "junit", "--report-junit-path", str(report), "--output-sanitize", "true", "--no-color",
    ]
    for operation in operations:
        command += ["--include-operation-id", operation]
    # Run in the report's folder: schemathesis keeps a cache (.schemathesis/) in its working directory.
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE,
                                                   stderr=asyncio.subprocess.STDOUT, cwd=report.parent)
    output, _ = await asyncio.wait_for(process.communicate(), RUN_BOUND_S)
    assert process.returncode is not None
    return process.returncode, output.decode(errors="replace")


def failures(report: Path) -> list[str]:
    root = ElementTree.parse(report).getroot()
    return [f"{case.get('name')}: {(problem.get('message') or problem.text or '')[:500]}"
            for case in root.iter("testcase") for problem in (*case.iter("failure"), *case.iter("error"))]


@pytest.mark.parametrize("role", ["partner", "agent", "admin"])
async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    fuzzed: tuple[TestClient, Settings], tmp_path: Path, role: str
) -> None:
    http, _settings = fuzzed
    keys = {"admin": ADMIN["Authorization"].removeprefix("Bearer ")}
    for kind, path in (("partner", "/v1/admin/partners"), ("agent", "/v1/admin/agents")):
        created = await (await http.post(path, json={"name": f"Fuzz {kind}"}, headers=ADMIN)).json()
        keys[kind] = created["api_key"]
    spec = await (await http.get("/v1/openapi.json")).json()
    base = str(http.make_url("")).rstrip("/")
    ids = await seeded_ids(http, {"Authorization": f"Bearer {keys['partner']}"},
                           {"Authorization": f"Bearer {keys['agent']}"})

    report = tmp_path / f"{role}.xml"
    config = config_file(tmp_path / "schemathesis.toml", ids)
    code, output = await schemathesis(base, keys[role], operations_for(spec, role), report, config)
    found = failures(report) if report.exists() else []
    assert code == 0 and not found, "\n".join(found) or output[-4000:]
    tested = re.search(r"(\d+) generated, (\d+) passed", output)
    assert tested is not None and tested.group(1) == tested.group(2) and int(tested.group(1)) > 0, output[-2000:]
    print(f"schemathesis, {role} key: {tested.group(0)}")
