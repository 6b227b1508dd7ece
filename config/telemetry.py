"""Traces (docs/operations.md#traces): the OpenTelemetry SDK, set up once per process, and the few
helpers every layer uses to carry a trace across a boundary.

With ``OTEL_EXPORTER_OTLP_ENDPOINT`` unset nothing is set up: the OpenTelemetry API stays its no-op
self (no span is recorded or exported, no Temporal interceptor is added, the SDK is never imported). A caller's W3C
``traceparent`` is still read by the gateway, so its log lines carry the caller's ``trace_id`` either way.

Only W3C trace context crosses our boundaries (``traceparent``/``tracestate``): a caller's ``baggage``
is never read, so nothing a partner sends travels on to the supplier or into Temporal.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING

from opentelemetry import context, trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from temporalio.client import Interceptor

from config.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

W3C = TraceContextTextMapPropagator()
TRACEPARENT = "traceparent"
# Our own attributes; the rest follow OpenTelemetry's semantic conventions (http.*, server.*).
PARTNER_ID = "aftersales.partner_id"
FLOW_CODE = "aftersales.flow_code"
PRODUCT_ID = "aftersales.product_id"
EVENT_ID = "aftersales.event_id"
# A proxy until configure_tracing sets the provider (a no-op one for good when tracing is off).
TRACER = trace.get_tracer("aftersales")


_ENABLED = False
# How long one batch may take to reach the collector, retries included (the SDK's default is 10 s): a
# collector that is down then delays a stopping process by this much at most, within its stop grace.
EXPORT_TIMEOUT_S = 3.0


def tracing_enabled() -> bool:
    """Whether :func:`configure_tracing` set an exporter up in this process."""
    return _ENABLED


def configure_tracing(settings: Settings, process: str) -> TracerProvider | None:
    """Export this process's spans to ``settings.otlp_endpoint`` over OTLP/HTTP (protobuf), in batches
    from a background thread; None (and nothing set up) without an endpoint. The provider flushes
    what it holds when the process exits."""
    if settings.otlp_endpoint is None:
        return None
    # Imported here: a process that traces nothing never loads the SDK or the exporter.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(
        resource=Resource.create({
            "service.name": settings.otel_service_name or f"aftersales-{process}",
            "service.namespace": "aftersales",
            "deployment.environment.name": settings.env,
        }),
        # A caller's sampling decision is followed; traces started here are kept at the configured ratio.
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
    )
    exporter = OTLPSpanExporter(endpoint=f"{settings.otlp_endpoint}/v1/traces", timeout=EXPORT_TIMEOUT_S)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    global _ENABLED
    _ENABLED = True
    return provider


def temporal_interceptors(settings: Settings) -> list[Interceptor]:
    """For ``Client.connect``: a workflow start, update or signal carries the caller's trace, and a worker
    on that client continues it in workflow and activity spans. None when tracing is off."""
    if settings.otlp_endpoint is None:
        return []
    from temporalio.contrib.opentelemetry import TracingInterceptor

    return [TracingInterceptor()]


def incoming(headers: Mapping[str, str]) -> context.Context:
    """The trace context a caller sent (``traceparent``); an empty context when it sent none or a malformed one."""
    return W3C.extract(headers)


def outgoing_headers() -> dict[str, str]:
    """The ``traceparent`` (and ``tracestate``) of the current span, for an outgoing request; empty
    when no trace is current. Supplier adapters that speak HTTP add these to their requests."""
    carrier: dict[str, str] = {}
    W3C.inject(carrier)
    return carrier


def current_traceparent() -> str | None:
    """The current span as a ``traceparent`` value, to be stored with what is done later on its behalf."""
    return outgoing_headers().get(TRACEPARENT)


@contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Make a stored ``traceparent`` the current trace context for the block (nothing when None)."""
    if not traceparent:
        yield
        return
    token = context.attach(W3C.extract({TRACEPARENT: traceparent}))
    try:
        yield
    finally:
        context.detach(token)


def trace_ids() -> dict[str, str]:
    """``trace_id`` and ``span_id`` of the current span, as hex, for a log line; empty outside any trace."""
    found = trace.get_current_span().get_span_context()
    if not found.is_valid:
        return {}
    return {"trace_id": format(found.trace_id, "032x"), "span_id": format(found.span_id, "016x")}
