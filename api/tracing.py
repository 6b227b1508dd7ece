"""The gateway's server span (docs/operations.md#traces): one per request, named by its route template.

A caller's W3C ``traceparent`` makes the request a child of the caller's span, so a partner's trace
goes on through the gateway, Temporal, the activities, the supplier call and the webhook. With
tracing off the span is OpenTelemetry's no-op one, which still carries the caller's trace id: the
request's log lines have it either way.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from opentelemetry.trace import SpanKind, Status, StatusCode

from api.endpoints import principal
from api.metrics import METHODS, route_template
from config.telemetry import FLOW_CODE, PARTNER_ID, TRACEPARENT, TRACER, incoming, tracing_enabled

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def trace_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outside the request log, so its line is written inside the span and carries its ids."""
    if not tracing_enabled() and TRACEPARENT not in request.headers:
        return await handler(request)  # nothing to record and no trace id to log: no span at all
    method = request.method if request.method in METHODS else "_OTHER"
    route = route_template(request)
    # The route template, never the raw path: one span name per endpoint, not one per flow code.
    with TRACER.start_as_current_span(
        f"{method} {route}", context=incoming(request.headers), kind=SpanKind.SERVER,
        attributes={"http.request.method": method, "http.route": route, "url.path": request.path[:300]},
        record_exception=False, set_status_on_exception=False,
    ) as span:
        if "code" in request.match_info:  # a flow's route: /v1/cancellations/{code}, …
            span.set_attribute(FLOW_CODE, request.match_info["code"][:40])
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            span.set_attribute("http.response.status_code", status)
            who = principal(request)
            if who is not None and who.role == "partner":
                span.set_attribute(PARTNER_ID, who.principal_id)
            if status >= 500:
                span.set_status(Status(StatusCode.ERROR))
