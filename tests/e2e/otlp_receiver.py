"""An OpenTelemetry collector in the test process: it takes what the gateway and the worker export over
OTLP/HTTP (protobuf ``ExportTraceServiceRequest`` on ``POST /v1/traces``) and keeps every span, so a test
can read the traces the processes made. It also plays an airline at ``POST /airline/<operation>``,
keeping the headers of each call (tests.e2e.traced_supplier)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.local_server import serve_locally

PROTOBUF = "application/x-protobuf"


@dataclass(frozen=True)
class ExportedSpan:
    trace_id: str
    span_id: str
    parent_span_id: str  # "" for a root span
    name: str
    kind: int  # opentelemetry.proto.trace.v1.trace_pb2.Span.SpanKind
    service: str
    attributes: dict[str, object]


def _value(value: AnyValue) -> object:
    which = value.WhichOneof("value")
    return getattr(value, which) if which else None


@dataclass
class OtlpReceiver:
    spans: list[ExportedSpan] = field(default_factory=list)
    airline_calls: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def __aenter__(self) -> OtlpReceiver:
        app = web.Application()
        app.router.add_post("/v1/traces", self._export)
        app.router.add_post("/airline/{operation}", self._airline)
        self._runner, self.url = await serve_locally(app)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _export(self, request: web.Request) -> web.Response:
        if request.content_type != PROTOBUF:
            return web.Response(status=415)
        exported = ExportTraceServiceRequest.FromString(await request.read())
        for resource_spans in exported.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(ExportedSpan(
                        trace_id=span.trace_id.hex(), span_id=span.span_id.hex(), parent_span_id=span.parent_span_id.hex(),
                        name=span.name, kind=span.kind, service=str(resource.get("service.name")),
                        attributes={a.key: _value(a.value) for a in span.attributes},
                    ))
        async with self._arrived:
            self._arrived.notify_all()
        return web.Response(body=ExportTraceServiceResponse().SerializeToString(), content_type=PROTOBUF)

    async def _airline(self, request: web.Request) -> web.Response:
        self.airline_calls.append({"operation": request.match_info["operation"], **request.headers})
        return web.json_response({"ok": True})

    async def until(self, arrived: Callable[[], object], timeout: float) -> None:
        """Wait, at most ``timeout`` seconds, until ``arrived()`` holds of the spans received."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(arrived), timeout)

    def trace(self, trace_id: str) -> dict[str, ExportedSpan]:
        """The spans of one trace by span id."""
        return {span.span_id: span for span in self.spans if span.trace_id == trace_id}
