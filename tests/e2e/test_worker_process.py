"""``python -m worker`` as operators run it (docs/operations.md): its Prometheus metrics, and a SIGTERM that
lets in-flight activities finish before the process exits."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request
from collections import defaultdict
from typing import TYPE_CHECKING

import pytest
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings
from store.repositories import Store
from store.schema import payments
from tests.api.conftest import Actor, flight, new_partner, reservation_body
from tests.e2e.conftest import free_ports
from tests.e2e.slow_supplier import CANCEL_FINISHED, CANCEL_STARTED

if TYPE_CHECKING:
    from tests.e2e.conftest import StartApp

pytestmark = pytest.mark.e2e
BOUND_S = 90


@pytest.fixture(params=["sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """Processes, not the store, are under test here: one database is enough."""
    return f"sqlite+aiosqlite:///{tmp_path / 'aftersales.db'}"


def worker_env(settings: Settings, temporal_env: WorkflowEnvironment, **extra: str) -> dict[str, str]:
    return {
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "AFTERSALES_DATABASE_URL": settings.database_url,
        "AFTERSALES_TASK_QUEUE": settings.task_queue,
        "AFTERSALES_LOG_FORMAT": "json",
        **extra,
    }


async def book_flight(gateway: TestClient, partner: Actor) -> str:
    booked = await gateway.post("/v1/sandbox/reservations", json=reservation_body(flight()), headers=partner.headers)
    assert booked.status == 201, await booked.text()
    return str((await booked.json())["products"][0]["product_id"])


async def start_cancellation(gateway: TestClient, partner: Actor, product_id: str) -> str:
    quote = await (await gateway.post(f"/v1/products/{product_id}/cancellation-quotes", json={},
                                      headers=partner.headers)).json()
    # With a 1 s sync wait the answer comes while a slow supplier call is still in flight (202).
    response = await gateway.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                                  headers=partner.headers)
    assert response.status in (200, 202), await response.text()
    return str((await response.json())["code"])


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"AFTERSALES_SYNC_WAIT": "1s"}


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        text = answer.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return samples


async def test_worker_exports_sdk_metrics_and_activity_outcomes(
    gateway: TestClient, settings: Settings, temporal_env: WorkflowEnvironment, app_processes: StartApp
) -> None:
    [port] = free_ports(1)
    worker = app_processes("worker", worker_env(settings, temporal_env, AFTERSALES_WORKER_METRICS_PORT=str(port)))
    assert worker.wait_for_line("worker_started", BOUND_S), worker.output()
    partner = await new_partner(gateway, "Measured")
    code = await start_cancellation(gateway, partner, await book_flight(gateway, partner))
    final = await asyncio.wait_for(temporal_env.client.get_workflow_handle(code).result(), BOUND_S)
    assert final["status"] == "cancelled"

    samples = await asyncio.to_thread(scrape, port)
    # The Temporal SDK's own metrics...
    assert samples["temporal_worker_task_slots_available"], sorted(samples)
    assert any(dict(key).get("activity_type") == "cancel_at_supplier"
               for key in samples["temporal_activity_execution_latency_count"])
    # ...and ours: activities by outcome, local activities included.
    outcomes = {(dict(key)["activity"], dict(key)["outcome"]): v for key, v in samples["aftersales_activity_executions_total"].items()}
    assert outcomes[("cancel_at_supplier", "completed")] >= 1
    # An automatic cancellation's workflow records once (cancelled): the gateway recorded processing as it
    # opened the flow (workflows.patches.PROCESSING_RECORDED_AT_OPENING).
    assert outcomes[("record_flow", "completed")] >= 1

    worker.process.send_signal(signal.SIGTERM)
    assert worker.wait_for_exit(BOUND_S) == 0, worker.output()


async def test_sigterm_lets_an_in_flight_supplier_call_finish(
    gateway: TestClient, settings: Settings, temporal_env: WorkflowEnvironment, app_processes: StartApp
) -> None:
    slow = worker_env(settings, temporal_env, AFTERSALES_SUPPLIER="tests.e2e.slow_supplier:build",
                      AFTERSALES_SANDBOX_SUPPLIER_DELAY="5s", AFTERSALES_WORKER_SHUTDOWN_GRACE="60s")
    first = app_processes("worker", slow)
    assert first.wait_for_line("worker_started", BOUND_S), first.output()
    partner = await new_partner(gateway, "Draining")
    product_id = await book_flight(gateway, partner)
    code = await start_cancellation(gateway, partner, product_id)

    assert first.wait_for_line(f"{CANCEL_STARTED} {code}", BOUND_S), first.output()
    first.process.send_signal(signal.SIGTERM)
    assert first.wait_for_exit(BOUND_S) == 0, first.output()
    lines = first.lines()
    finished = next(i for i, line in enumerate(lines) if f"{CANCEL_FINISHED} {code}" in line)
    stopping = next(i for i, line in enumerate(lines) if "worker_stopping" in line)
    stopped = next(i for i, line in enumerate(lines) if "worker_stopped" in line)
    # The call went on after the signal and ended before the process did.
    assert stopping < finished < stopped, first.output()

    # The next workflow task needs a worker: another one ends the flow.
    second = app_processes("worker", worker_env(settings, temporal_env))
    assert second.wait_for_line("worker_started", BOUND_S), second.output()
    handle = temporal_env.client.get_workflow_handle(code)
    final = await asyncio.wait_for(handle.result(), BOUND_S)
    assert final["status"] == "cancelled"
    # One attempt, completed: not cut off and retried elsewhere.
    history = await handle.fetch_history()
    activity_events = [(e.event_type, e.activity_task_started_event_attributes.attempt) for e in history.events
                       if e.event_type in (EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED, EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED,
                                           EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT)]
    assert [kind for kind, _ in activity_events] == [EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED,
                                                     EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED], activity_events
    assert activity_events[0][1] == 1
    second.process.send_signal(signal.SIGTERM)
    assert second.wait_for_exit(BOUND_S) == 0, second.output()


async def test_a_refused_record_is_counted_and_logged_by_the_worker(
    gateway: TestClient, settings: Settings, temporal_env: WorkflowEnvironment, app_processes: StartApp, store: Store
) -> None:
    """The issue's reservation (two fares stored before the input bounds) parks its cancellation: the worker
    process counts the refusal and logs it once as an ERROR line naming the flow (docs/operations.md#a-refused-record)."""
    [port] = free_ports(1)
    worker = app_processes("worker", worker_env(settings, temporal_env, AFTERSALES_WORKER_METRICS_PORT=str(port)))
    assert worker.wait_for_line("worker_started", BOUND_S), worker.output()
    partner = await new_partner(gateway, "Refused")
    booked = await gateway.post("/v1/sandbox/reservations", json=reservation_body(flight(), flight()), headers=partner.headers)
    assert booked.status == 201, await booked.text()
    reservation = await booked.json()
    async with store.engine.begin() as conn:  # two fares of the amount, as stored before the bounds
        await conn.execute(payments.update().where(payments.c.reservation_id == reservation["reservation_id"],
                                                   payments.c.category == "fare").values(amount="999999999999999999.99"))

    code = await start_cancellation(gateway, partner, reservation["products"][0]["product_id"])

    assert worker.wait_for_line('"record_refused"', BOUND_S), worker.output()
    [line] = [json.loads(text) for text in worker.lines() if '"record_refused"' in text]
    assert (line["level"], line["flow_code"], line["partner_id"], line["status"]) == ("error", code, partner.id, "cancelled")
    samples = await asyncio.to_thread(scrape, port)
    # The activity's meter adds its own labels (activity_type, namespace, task_queue).
    refused = {dict(key)["kind"]: v for key, v in samples["aftersales_records_refused_total"].items()}
    assert refused == {"cancellation": 1}
    outcomes = {(dict(key)["activity"], dict(key)["outcome"], dict(key)["error"]): v
                for key, v in samples["aftersales_activity_executions_total"].items()}
    assert outcomes[("record_flow", "refused", "record_refused")] == 1
    handle = temporal_env.client.get_workflow_handle(code)
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING  # parked: neither failed nor retried

    await handle.terminate("test over")
    worker.process.send_signal(signal.SIGTERM)
    assert worker.wait_for_exit(BOUND_S) == 0, worker.output()
