"""The gateway with tracing off (no OTEL_EXPORTER_OTLP_ENDPOINT, as in this test process): a caller's
``traceparent`` is still read, so the request's log line carries the caller's trace id; without one
the line has none. Tracing on is tests/e2e/test_traces.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace

import pytest
import structlog
from aiohttp.test_utils import TestClient

from config.logging import configure_logging
from config.settings import Settings
from config.telemetry import tracing_enabled

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest.fixture
def json_logs(settings: Settings) -> Iterator[None]:
    configure_logging(replace(settings, log_format="json"), "api")
    yield
    structlog.reset_defaults()


def _request_lines(out: str) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == "request"]


async def test_a_callers_trace_id_is_logged_even_with_tracing_off(
    gateway: TestClient, json_logs: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert not tracing_enabled()
    capsys.readouterr()
    assert (await gateway.get("/healthz", headers={"traceparent": f"00-{TRACE_ID}-00f067aa0ba902b7-01"})).status == 200
    assert (await gateway.get("/healthz")).status == 200
    assert (await gateway.get("/healthz", headers={"traceparent": "00-not-a-trace-01"})).status == 200
    traced, plain, malformed = _request_lines(capsys.readouterr().out)
    assert traced["trace_id"] == TRACE_ID
    assert "trace_id" not in plain and "trace_id" not in malformed  # a malformed one is ignored, not refused
