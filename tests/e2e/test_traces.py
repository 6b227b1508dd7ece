"""Traces as an operator gets them (docs/operations.md#traces): ``python -m api`` and ``python -m worker``
export to a collector (an OTLP/HTTP receiver in this process), and one automatic cancellation sent with a
partner's ``traceparent`` is one trace, from the gateway through Temporal, the activities and the supplier
call to the webhook delivery, with the request's log line carrying its trace id."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import aiohttp
import pytest
import pytest_asyncio
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings
from tests.api.conftest import flight, new_partner, reservation_body
from tests.e2e.conftest import AppProcess, free_ports
from tests.e2e.otlp_receiver import ExportedSpan, OtlpReceiver
from tests.workflows.receiver import WebhookReceiver

if TYPE_CHECKING:
    from tests.e2e.conftest import StartApp

pytestmark = pytest.mark.e2e
BOUND_S = 90
CANCELLATIONS = "/v1/products/{product_id}/cancellations"
FLOW_START = "StartWorkflow:CancellationWorkflow"
DELIVERY_START = "StartChildWorkflow:TriggerDeliveryWorkflow"
# The spans of the one trace, from the gateway's (the other processes' names are the Temporal
# interceptor's: Start* where a workflow or activity is started, Run* where it runs).
EXPECTED = {
    f"POST {CANCELLATIONS}", "GET /v1/cancellations/{code}", FLOW_START, "RunWorkflow:CancellationWorkflow", "StartActivity:cancel_at_supplier",
    "RunActivity:cancel_at_supplier", "supplier cancel_product", DELIVERY_START, "RunWorkflow:TriggerDeliveryWorkflow",
    "StartActivity:deliver_event", "RunActivity:deliver_event", "webhook POST",
}


@pytest_asyncio.fixture
async def collector() -> AsyncIterator[OtlpReceiver]:
    async with OtlpReceiver() as receiver:
        yield receiver


def _wait_for_line(app: AppProcess, text: str) -> None:
    assert app.wait_for_line(text, BOUND_S), f"{app.name} never printed {text}:\n{app.output()}"


@pytest_asyncio.fixture
async def traced_stack(
    settings: Settings, temporal_env: WorkflowEnvironment, app_processes: StartApp, collector: OtlpReceiver
) -> AsyncIterator[TracedStack]:
    """The worker and the gateway as processes, exporting to ``collector``; a session on the gateway."""
    [port] = free_ports(1)
    env = {
        "TEMPORAL_ADDRESS": temporal_env.client.service_client.config.target_host,
        "AFTERSALES_DATABASE_URL": settings.database_url,
        "AFTERSALES_TASK_QUEUE": settings.task_queue,
        "AFTERSALES_HTTP_PORT": str(port),
        "AFTERSALES_LOG_FORMAT": "json",
        "AFTERSALES_RATE_LIMIT": "100000/s",
        "AFTERSALES_SUPPLIER": "tests.e2e.traced_supplier:build",
        "AFTERSALES_TEST_AIRLINE_URL": collector.url,
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        # Export every 100 ms instead of every 5 s: the test waits on the spans, not on the batch.
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    worker = app_processes("worker", env)
    # One after the other: each migrates the database at start.
    await asyncio.to_thread(_wait_for_line, worker, "worker_started")
    gateway = app_processes("api", env)
    await asyncio.to_thread(_wait_for_line, gateway, "gateway_listening")
    async with aiohttp.ClientSession(base_url=f"http://127.0.0.1:{port}") as session:
        yield TracedStack(session, gateway, worker)
    gateway.process.terminate()
    assert await asyncio.to_thread(gateway.wait_for_exit, BOUND_S) is not None


@dataclass
class TracedStack:
    http: aiohttp.ClientSession
    gateway: AppProcess
    worker: AppProcess


def _json_lines(app: AppProcess) -> list[dict[str, object]]:
    return [json.loads(line) for line in app.lines() if line.startswith("{")]


def _ancestors(span: ExportedSpan, trace: dict[str, ExportedSpan]) -> list[ExportedSpan]:
    """``span``'s parents up to the trace's first span we received, nearest first."""
    found = []
    while span.parent_span_id in trace:
        span = trace[span.parent_span_id]
        found.append(span)
    return found


def _one(trace: dict[str, ExportedSpan], name: str) -> ExportedSpan:
    named = [span for span in trace.values() if span.name == name]
    assert len(named) == 1, f"expected one {name!r} span, got {sorted(s.name for s in trace.values())}"
    return named[0]


async def test_a_partners_traceparent_is_followed_through_the_flow_to_its_webhook(
    traced_stack: TracedStack, collector: OtlpReceiver
) -> None:
    http = traced_stack.http
    partner = await new_partner(http, "Traced")  # type: ignore[arg-type]
    trace_id, partner_span = secrets.token_hex(16), secrets.token_hex(8)
    async with WebhookReceiver(secret=partner.body["webhook_secret"]) as webhook:
        assert (await http.put("/v1/partner/webhook", json={"url": webhook.url}, headers=partner.headers)).status == 200
        booked = await http.post("/v1/sandbox/reservations", json=reservation_body(flight()), headers=partner.headers)
        assert booked.status == 201, await booked.text()
        product_id = (await booked.json())["products"][0]["product_id"]
        quote = await (await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={},
                                       headers=partner.headers)).json()
        cancelled = await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                                    headers={**partner.headers, "traceparent": f"00-{trace_id}-{partner_span}-01"})
        assert cancelled.status == 200, await cancelled.text()
        code = (await cancelled.json())["code"]
        assert (await cancelled.json())["status"] == "cancelled"
        # The partner reads the flow in the same trace of its own.
        read = await http.get(f"/v1/cancellations/{code}",
                              headers={**partner.headers, "traceparent": f"00-{trace_id}-{partner_span}-01"})
        assert read.status == 200
        await webhook.until(lambda: webhook.received, BOUND_S)

        # Exported in batches by two processes, each span when it ends: wait until all have arrived.
        await collector.until(lambda: EXPECTED <= {span.name for span in collector.trace(trace_id).values()}, BOUND_S)
    trace = collector.trace(trace_id)

    # The gateway's span continues the partner's: named by the route template, never the raw path.
    request = _one(trace, f"POST {CANCELLATIONS}")
    assert request.parent_span_id == partner_span and request.kind == Span.SPAN_KIND_SERVER
    assert request.service == "aftersales-api"
    assert request.attributes["http.route"] == CANCELLATIONS and request.attributes["http.response.status_code"] == 200
    assert request.attributes["aftersales.partner_id"] == partner.id
    flow_read = _one(trace, "GET /v1/cancellations/{code}")
    assert flow_read.parent_span_id == partner_span and flow_read.attributes["aftersales.flow_code"] == code
    assert flow_read.attributes["url.path"] == f"/v1/cancellations/{code}"

    # The supplier call: in its activity, in the flow's workflow, started by that request; its HTTP
    # call to the airline carries the supplier span's traceparent.
    supplier = _one(trace, "supplier cancel_product")
    assert supplier.kind == Span.SPAN_KIND_CLIENT and supplier.service == "aftersales-worker"
    assert supplier.attributes["aftersales.product_id"] == product_id
    assert [span.name for span in _ancestors(supplier, trace)] == [
        "RunActivity:cancel_at_supplier", "StartActivity:cancel_at_supplier", FLOW_START, request.name]
    # The workflow's own span hangs from its start too (Temporal's interceptor ends it at once).
    assert trace[_one(trace, "RunWorkflow:CancellationWorkflow").parent_span_id].name == FLOW_START
    [airline_call] = collector.airline_calls
    assert airline_call["traceparent"] == f"00-{trace_id}-{supplier.span_id}-01"

    # The webhook delivery: its POST is in the delivery's activity, whose workflow the flow started,
    # and the partner receives the POST span's traceparent.
    delivery = _one(trace, "webhook POST")
    assert delivery.kind == Span.SPAN_KIND_CLIENT and delivery.attributes["http.response.status_code"] == 200
    assert [span.name for span in _ancestors(delivery, trace)] == [
        "RunActivity:deliver_event", "StartActivity:deliver_event", DELIVERY_START, FLOW_START, request.name]
    assert trace[_one(trace, "RunWorkflow:TriggerDeliveryWorkflow").parent_span_id].name == DELIVERY_START
    assert {r.headers.get("traceparent") for r in webhook.received} == {f"00-{trace_id}-{delivery.span_id}-01"}

    # Every span hangs from a request: nothing of the flow started a trace of its own.
    assert all(span in (request, flow_read) or request in _ancestors(span, trace) for span in trace.values())

    # The request's log line carries the trace (and the request's own span).
    [logged] = [line for line in _json_lines(traced_stack.gateway)
                if line.get("event") == "request" and str(line.get("path", "")).endswith("/cancellations")]
    assert logged["trace_id"] == trace_id and logged["span_id"] == request.span_id
    # And so does each of the flow's transitions in the worker's log, next to its flow code and partner.
    # (This stack's one flow: its last transition's line is the one that says cancelled.)
    assert await asyncio.to_thread(traced_stack.worker.wait_for_line, '"status": "cancelled"', BOUND_S)
    transitions = [line for line in _json_lines(traced_stack.worker)
                   if line.get("event") == "flow_transition" and line.get("flow_code") == code]
    recorded = {span.span_id for span in trace.values() if span.name == "RunActivity:record_flow"}
    assert transitions and all(line["partner_id"] == partner.id and line["trace_id"] == trace_id for line in transitions)
    assert {line["span_id"] for line in transitions} == recorded


def _delivered_in_trace(trace: dict[str, ExportedSpan], deliveries: int) -> bool:
    """Whether ``deliveries`` webhook POSTs have arrived with every span between them and the request."""
    posts = [span for span in trace.values() if span.name == "webhook POST"]
    return len(posts) == deliveries and all(
        any(span.name == f"POST {CANCELLATIONS}" for span in _ancestors(post, trace)) for post in posts)


async def test_a_delivery_started_later_by_the_outbox_dispatcher_joins_its_flows_trace(
    traced_stack: TracedStack, collector: OtlpReceiver
) -> None:
    """The partner had no webhook when its flow ended: the events keep the trace they were written in,
    and the worker's outbox dispatcher starts their deliveries in it once the partner sets one."""
    http = traced_stack.http
    partner = await new_partner(http, "Late hook")  # type: ignore[arg-type]
    trace_id = secrets.token_hex(16)
    booked = await http.post("/v1/sandbox/reservations", json=reservation_body(flight()), headers=partner.headers)
    product_id = (await booked.json())["products"][0]["product_id"]
    quote = await (await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={},
                                   headers=partner.headers)).json()
    cancelled = await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                                headers={**partner.headers, "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"})
    assert cancelled.status == 200 and (await cancelled.json())["status"] == "cancelled", await cancelled.text()
    stored = (await (await http.get("/v1/events", headers=partner.headers)).json())["items"]
    assert stored and all(event["delivery"]["status"] == "pending" for event in stored)

    async with WebhookReceiver(secret=partner.body["webhook_secret"]) as webhook:
        assert (await http.put("/v1/partner/webhook", json={"url": webhook.url}, headers=partner.headers)).status == 200
        # The dispatcher sweeps every few seconds; each delivery's POST span ends before its answer is recorded.
        await webhook.until(lambda: len(webhook.received) >= len(stored), BOUND_S)
        await collector.until(lambda: _delivered_in_trace(collector.trace(trace_id), len(stored)), BOUND_S)
    trace = collector.trace(trace_id)
    request = _one(trace, f"POST {CANCELLATIONS}")
    posts = [span for span in trace.values() if span.name == "webhook POST"]
    for post in posts:
        # Started by the dispatcher's client (StartWorkflow, not the flow's StartChildWorkflow), under the
        # activity that wrote the event, under the flow the partner's request started.
        assert [span.name for span in _ancestors(post, trace)] == [
            "RunActivity:deliver_event", "StartActivity:deliver_event", "StartWorkflow:TriggerDeliveryWorkflow",
            "RunActivity:record_flow", "StartActivity:record_flow", FLOW_START, request.name]
    assert {r.headers.get("traceparent") for r in webhook.received} == {f"00-{trace_id}-{p.span_id}-01" for p in posts}
