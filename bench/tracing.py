"""What tracing costs a gateway request (docs/operations.md#traces): the outermost middleware
(``api.tracing.observe_requests``: the request's metrics and its server span) around a handler that does nothing, called directly (no socket), in
microseconds per request. Figures, not a test. Usage:

    .venv/bin/python -m bench.tracing [-n 20000]

Three rows: tracing off (OpenTelemetry's no-op API, what runs without OTEL_EXPORTER_OTLP_ENDPOINT),
off with a caller's traceparent (read even then, for the log's trace_id), and on (the SDK, every
span sampled and handed to the batch processor, whose exporter here drops them: export runs on
its own thread, off the request's path). The handler alone is the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from api.metrics import add_metrics
from api.tracing import observe_requests
from config import telemetry

TRACEPARENT = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}


class _Drop(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


async def _per_request_us(n: int, headers: dict[str, str], traced: bool) -> float:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=200)

    app = web.Application()
    add_metrics(app)
    app.router.add_get("/v1/cancellations/{code}", handler)
    request = make_mocked_request("GET", "/v1/cancellations/CXL-ABC123", headers=headers, app=app)
    request._match_info = await app.router.resolve(request)  # as the server does before the middlewares
    request._match_info.add_app(app)
    call = (lambda: observe_requests(request, handler)) if traced else (lambda: handler(request))
    for _ in range(min(n, 1000)):  # warm up
        await call()
    started = time.perf_counter()
    for _ in range(n):
        await call()
    return (time.perf_counter() - started) / n * 1e6


async def main(n: int) -> None:
    rows = [("handler alone", await _per_request_us(n, {}, traced=False))]
    rows.append(("tracing off", await _per_request_us(n, {}, traced=True)))
    rows.append(("tracing off, caller's traceparent", await _per_request_us(n, TRACEPARENT, traced=True)))
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(_Drop()))
    trace.set_tracer_provider(provider)
    telemetry._ENABLED = True  # what configure_tracing does, with this exporter instead of OTLP's
    rows.append(("tracing on", await _per_request_us(n, {}, traced=True)))
    rows.append(("tracing on, caller's traceparent", await _per_request_us(n, TRACEPARENT, traced=True)))
    provider.shutdown()
    for what, us in rows:
        print(f"{what:36} {us:8.1f} µs/request")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=20000)
    asyncio.run(main(parser.parse_args().n))
