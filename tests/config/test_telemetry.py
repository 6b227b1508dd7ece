"""Trace set-up (docs/operations.md#traces): nothing without an endpoint, a clear start-up error for a
malformed one, the exporter and sampler it builds with one, and the ids every log line gets in a span.

``configure_tracing`` sets OpenTelemetry's process-wide provider (once per process), so what it builds
is looked at in a fresh interpreter, never in the test process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from config.logging import add_trace_ids, configure_logging
from config.settings import SettingsError, load_settings
from config.telemetry import continued, current_traceparent, incoming, outgoing_headers, temporal_interceptors

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
SPAN_ID = 0x00F067AA0BA902B7
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def _in_fresh_interpreter(code: str, environ: dict[str, str]) -> dict[str, object]:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env={"PATH": "", **environ},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


SET_UP = """
    import json, sys
    from config.settings import load_settings
    from config.telemetry import configure_tracing, temporal_interceptors
    import api.app, worker.__main__  # everything both processes import
    settings = load_settings()
    provider = configure_tracing(settings, "worker")
    found = {"provider": provider is not None, "interceptors": [type(i).__name__ for i in temporal_interceptors(settings)],
             "sdk_loaded": "opentelemetry.sdk" in sys.modules}
    if provider is not None:
        [processor] = provider._active_span_processor._span_processors
        exporter = processor._batch_processor._exporter
        found.update(endpoint=exporter._endpoint, sampler=provider.sampler.get_description(),
                     service=provider.resource.attributes["service.name"])
    print(json.dumps(found))
"""


def test_no_endpoint_means_no_exporter_no_interceptor_and_no_sdk() -> None:
    found = _in_fresh_interpreter(SET_UP, {})
    assert found == {"provider": False, "interceptors": [], "sdk_loaded": False}


def test_an_endpoint_exports_over_otlp_http_with_parent_based_sampling() -> None:
    found = _in_fresh_interpreter(SET_UP, {
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318/", "OTEL_TRACES_SAMPLER_ARG": "0.25"})
    assert found["provider"] and found["interceptors"] == ["TracingInterceptor"]
    assert found["endpoint"] == "http://collector:4318/v1/traces"
    # Traces started here are kept at the ratio; a caller's decision is followed, whichever it was.
    sampler = str(found["sampler"])
    assert sampler.startswith("ParentBased{root:TraceIdRatioBased{0.25},")
    assert "remoteParentSampled:AlwaysOnSampler," in sampler and "remoteParentNotSampled:AlwaysOffSampler," in sampler
    assert found["service"] == "aftersales-worker"
    named = _in_fresh_interpreter(SET_UP, {"OTEL_EXPORTER_OTLP_ENDPOINT": "https://c", "OTEL_SERVICE_NAME": "as-eu"})
    assert named["service"] == "as-eu" and named["sampler"].startswith("ParentBased{root:TraceIdRatioBased{1.0}")  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "grpc://collector:4317"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:99999"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318?x=1"}, "OTEL_EXPORTER_OTLP_ENDPOINT"),
        ({"OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER_ARG": "nan"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER_ARG": "ten percent"}, "OTEL_TRACES_SAMPLER_ARG"),
        ({"OTEL_TRACES_SAMPLER": "always_on"}, "OTEL_TRACES_SAMPLER"),
    ],
)
def test_bad_trace_settings_name_the_variable(environ: dict[str, str], variable: str) -> None:
    with pytest.raises(SettingsError) as error:
        load_settings(environ)
    assert error.value.variable == variable and "\n" not in str(error.value)


@pytest.mark.parametrize("module", ["api", "worker"])
def test_a_malformed_endpoint_stops_the_process_at_start(module: str) -> None:
    result = subprocess.run([sys.executable, "-m", module], env={"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318", "PATH": ""},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    [line] = result.stderr.strip().splitlines()
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in line and "http://otel-collector:4318" in line


def _remote_span() -> NonRecordingSpan:
    return NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED)))


def test_log_lines_carry_the_ids_of_the_span_they_are_written_in(capsys: pytest.CaptureFixture[str]) -> None:
    assert add_trace_ids(None, "info", {"event": "outside"}) == {"event": "outside"}
    configure_logging(load_settings({"AFTERSALES_LOG_FORMAT": "json"}), "test")
    try:
        with trace.use_span(_remote_span()):
            structlog.get_logger().info("inside")
        structlog.get_logger().info("outside")
    finally:
        structlog.reset_defaults()
    inside, outside = (json.loads(line) for line in capsys.readouterr().out.strip().splitlines())
    assert inside["trace_id"] == "4bf92f3577b34da6a3ce929d0e0e4736" and inside["span_id"] == "00f067aa0ba902b7"
    assert "trace_id" not in outside and "span_id" not in outside


def test_only_w3c_trace_context_crosses_a_boundary() -> None:
    # A partner's baggage is not taken in, so it can never be sent on to a supplier or into Temporal.
    taken = incoming({"traceparent": TRACEPARENT, "baggage": "tenant=other"})
    with trace.use_span(trace.get_current_span(taken)):
        assert outgoing_headers() == {"traceparent": TRACEPARENT}
    assert trace.get_current_span(incoming({"traceparent": "00-zz-yy-01"})).get_span_context().is_valid is False
    assert current_traceparent() is None and outgoing_headers() == {}
    with continued(TRACEPARENT):
        assert current_traceparent() == TRACEPARENT
    assert current_traceparent() is None
    with continued(None):
        assert current_traceparent() is None
    assert temporal_interceptors(load_settings({})) == []
