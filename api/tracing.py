"""The gateway's outermost middleware: each request timed for the metrics (api/metrics.py) and, when
there is a trace, wrapped in its server span (docs/operations.md#traces), named by its route template.

A caller's W3C ``traceparent`` makes the request a child of the caller's span, so a partner's trace
goes on through the gateway, Temporal, the activities, the supplier call and the webhook. With
tracing off the span is OpenTelemetry's no-op one, which still carries the caller's trace id: the
request's log lines have it either way. Without either there is no span at all.

One middleware for both, as both need the answer's status whether the handler returned or raised:
the request is caught once, not twice (a middleware is a coroutine frame per request).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

from aiohttp import web
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from api.endpoints import principal
from api.metrics import METHODS, METRICS, route_template
from config.telemetry import FLOW_CODE, PARTNER_ID, TRACEPARENT, TRACER, incoming, tracing_enabled

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_NO_SPAN: AbstractContextManager[None] = nullcontext()


@web.middleware
async def observe_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outermost: times the whole answer, error handling included; outside the request log, so its
    line is written inside the span and carries its ids."""
    started = time.perf_counter()
    traced = tracing_enabled() or TRACEPARENT in request.headers
    status = 500
    scope: AbstractContextManager[Any] = _server_span(request) if traced else _NO_SPAN
    with scope as span:
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            if span is not None:
                _close_span(span, request, status)
            request.app[METRICS].observe(route_template(request), request.method, status, time.perf_counter() - started)


def _server_span(request: web.Request) -> AbstractContextManager[Span]:
    method = request.method if request.method in METHODS else "_OTHER"
    route = route_template(request)
    # The route template, never the raw path: one span name per endpoint, not one per flow code.
    return TRACER.start_as_current_span(
        f"{method} {route}", context=incoming(request.headers), kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "http.route": route, "url.path": request.path[:300]},
        record_exception=False, set_status_on_exception=False,
    )


def _close_span(span: Span, request: web.Request, status: int) -> None:
    if "code" in request.match_info:  # a flow's route: /v1/cancellations/{code}, …
        span.set_attribute(FLOW_CODE, request.match_info["code"][:40])
    span.set_attribute("http.response.status_code", status)
    who = principal(request)
    if who is not None and who.role == "partner":
        span.set_attribute(PARTNER_ID, who.principal_id)
    if status >= 500:
        span.set_status(Status(StatusCode.ERROR))
