"""Every variable of docs/configuration.md, read and validated once at start-up into one typed object.

A wrong value stops the process with one line naming the variable and what it expects
(see :func:`exit_on_bad_settings`), so an operator never meets a half-configured service.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from domain.credit_ledger import CREDIT_VALIDITY
from domain.durations import parse_duration

SANDBOX_ADMIN_KEY = "sandbox-admin-key"
TASK_QUEUE = "aftersales"


class SettingsError(ValueError):
    """A configuration value is wrong; ``str()`` is the one line an operator reads."""

    def __init__(self, variable: str, expectation: str) -> None:
        super().__init__(f"{variable}: {expectation}")
        self.variable = variable


@dataclass(frozen=True)
class RateLimit:
    """A request budget as a token bucket (docs/api.md#rate-limits): ``rate`` requests a second
    on average, at most ``burst`` at once after a quiet spell."""

    rate: int
    burst: int

    def __str__(self) -> str:
        return f"{self.rate}/s,burst={self.burst}"


# The roles whose budget an operator may set apart from AFTERSALES_RATE_LIMIT (AFTERSALES_RATE_LIMIT_AGENT, …).
RATE_LIMITED_ROLES = ("partner", "agent", "admin", "supplier")


@dataclass(frozen=True)
class Settings:
    env: str = "sandbox"
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    data_dir: Path = Path("./.data")
    database_url: str = ""
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_port: int = 7233
    # The embedded dev server's Web UI; the Temporal CLI's own default is the frontend port + 1000.
    temporal_ui_port: int = 8233
    # Where the worker serves Prometheus metrics (the SDK's and its own); 0: not served.
    worker_metrics_port: int = 0
    # How long a stopping worker lets in-flight activities finish before it cancels them.
    worker_shutdown_grace: timedelta = timedelta(seconds=30)
    admin_key: str = field(default=SANDBOX_ADMIN_KEY, repr=False)
    quote_ttl: timedelta = timedelta(minutes=15)
    agent_quote_window: timedelta = timedelta(hours=24)
    decision_window: timedelta = timedelta(hours=72)
    change_context_ttl: timedelta = timedelta(minutes=20)
    checkout_ttl: timedelta = timedelta(hours=24)
    rescheduling_window: timedelta = timedelta(hours=72)
    # How long a credit issued instead of a refund may pay for changes (docs/settlement.md#credits).
    credit_validity: timedelta = CREDIT_VALIDITY
    sandbox_supplier_delay: timedelta = timedelta(seconds=2)
    sync_wait: timedelta = timedelta(seconds=10)
    webhook_retry_for: timedelta = timedelta(hours=72)
    # Production webhooks are https; this lets an operator allow http for on-premises receivers.
    webhook_allow_http: bool = False
    # Deliveries in flight to one webhook URL, per worker: a receiver that hangs holds this many of
    # the worker's activity slots and connections, never more (docs/triggers.md#delivery).
    webhook_receiver_concurrency: int = 4
    # The worker's webhook connections, shared by every receiver (its aiohttp connector's limit).
    webhook_connections: int = 100
    # Slow clients: the request line and headers (and a kept-alive connection's next request) must
    # arrive within http_header_timeout, the body within http_body_timeout.
    http_header_timeout: timedelta = timedelta(seconds=10)
    http_body_timeout: timedelta = timedelta(seconds=30)
    supplier: str = "sandbox"
    log_format: str = "console"
    task_queue: str = TASK_QUEUE
    # PostgreSQL connections each process keeps (the gateway's and the worker's own pools), and how
    # many more it may open for a burst (closed again when returned). The pool covers the load a
    # process usually carries (bench/reads.py: 20 connections), so none is opened per request.
    db_pool_size: int = 20
    db_pool_overflow: int = 10
    # Worker capacity (docs/operations.md#worker-and-database-settings); the defaults are the SDK's.
    worker_max_cached_workflows: int = 1000
    worker_workflow_task_slots: int = 100
    worker_activity_slots: int = 100
    worker_pollers: int = 5
    # Every account's budget, and that of requests without a valid key per client address.
    rate_limit: RateLimit = RateLimit(rate=50, burst=100)
    # Budgets set apart for a role (AFTERSALES_RATE_LIMIT_<ROLE>); a role not named here has ``rate_limit``.
    role_rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    # Traces (docs/operations.md#traces): the OTLP/HTTP collector's base URL; None: nothing is traced.
    otlp_endpoint: str | None = None
    # OTEL_SERVICE_NAME; None: each process names itself (aftersales-api, aftersales-worker).
    otel_service_name: str | None = None
    # The share of traces started here that are kept; a caller's sampled traceparent is always followed.
    trace_sample_ratio: float = 1.0

    def rate_limit_for(self, role: str) -> RateLimit:
        return self.role_rate_limits.get(role, self.rate_limit)

    @property
    def sandbox(self) -> bool:
        return self.env == "sandbox"

    @property
    def deadlines_advanceable(self) -> bool:
        """Whether the flows this deployment starts let a caller make their pending deadline pass now
        (docs/flows.md#advancing-a-deadline): in the sandbox only, where partners fire every path on
        demand. The flows are given it as a capability in their input; they know no environment."""
        return self.sandbox

    @property
    def embedded_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def temporal_target(self) -> str:
        return self.temporal_address or f"127.0.0.1:{self.temporal_port}"


_DURATIONS = {
    "AFTERSALES_QUOTE_TTL": "quote_ttl",
    "AFTERSALES_AGENT_QUOTE_WINDOW": "agent_quote_window",
    "AFTERSALES_DECISION_WINDOW": "decision_window",
    "AFTERSALES_CHANGE_CONTEXT_TTL": "change_context_ttl",
    "AFTERSALES_CHECKOUT_TTL": "checkout_ttl",
    "AFTERSALES_RESCHEDULING_WINDOW": "rescheduling_window",
    "AFTERSALES_CREDIT_VALIDITY": "credit_validity",
    "AFTERSALES_SANDBOX_SUPPLIER_DELAY": "sandbox_supplier_delay",
    "AFTERSALES_SYNC_WAIT": "sync_wait",
    "AFTERSALES_WEBHOOK_RETRY_FOR": "webhook_retry_for",
    "AFTERSALES_WORKER_SHUTDOWN_GRACE": "worker_shutdown_grace",
    "AFTERSALES_HTTP_HEADER_TIMEOUT": "http_header_timeout",
    "AFTERSALES_HTTP_BODY_TIMEOUT": "http_body_timeout",
}
UI_PORT_OFFSET = 1000


def _port(environ: Mapping[str, str], name: str, default: int, lowest: int = 1) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    if not raw.isdigit() or not lowest <= int(raw) <= 65535:
        raise SettingsError(name, f"expected a TCP port between {lowest} and 65535, got {raw!r}")
    return int(raw)


def _ui_port(environ: Mapping[str, str], temporal_port: int) -> int:
    """Derived from the frontend port as the Temporal CLI does, so two stacks on different
    ``AFTERSALES_TEMPORAL_PORT`` values never fight over one UI port."""
    derived = temporal_port + UI_PORT_OFFSET
    if not environ.get("AFTERSALES_TEMPORAL_UI_PORT") and derived > 65535:
        raise SettingsError(
            "AFTERSALES_TEMPORAL_UI_PORT",
            f"defaults to AFTERSALES_TEMPORAL_PORT + {UI_PORT_OFFSET} = {derived}, which is not a TCP port; set it",
        )
    return _port(environ, "AFTERSALES_TEMPORAL_UI_PORT", derived)


def _count(environ: Mapping[str, str], name: str, default: int, lowest: int, highest: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 6 or not lowest <= int(raw) <= highest:
        raise SettingsError(name, f"expected a whole number between {lowest} and {highest}, got {raw!r}")
    return int(raw)


def _choice(environ: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    raw = environ.get(name) or default
    if raw not in choices:
        raise SettingsError(name, f"expected one of {', '.join(choices)}, got {raw!r}")
    return raw


def _flag(environ: Mapping[str, str], name: str) -> bool:
    raw = (environ.get(name) or "false").lower()
    if raw not in ("true", "false"):
        raise SettingsError(name, f"expected true or false, got {raw!r}")
    return raw == "true"


# ``<n>/s`` or ``<n>/s,burst=<m>``, ASCII digits only; bounded so no budget overflows anything.
_RATE_LIMIT = re.compile(r"([1-9][0-9]{0,5})/s(?:\s*,\s*burst=([1-9][0-9]{0,6}))?")


def _rate_limit(environ: Mapping[str, str], name: str, default: RateLimit) -> RateLimit:
    raw = (environ.get(name) or "").strip()
    if not raw:
        return default
    found = _RATE_LIMIT.fullmatch(raw)
    if found is None:
        raise SettingsError(name, f"expected <requests>/s with an optional burst, like 50/s or 50/s,burst=100, got {raw!r}")
    rate = int(found.group(1))
    # Without a burst, twice the rate: the contract's 50/s allows 100 at once.
    return RateLimit(rate=rate, burst=int(found.group(2)) if found.group(2) else 2 * rate)


def _otlp_endpoint(environ: Mapping[str, str]) -> str | None:
    """The collector's base URL (the exporter adds ``/v1/traces``), checked now so a typo stops the
    process at start-up instead of losing every span later."""
    raw = (environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
    if not raw:
        return None
    expectation = f"expected the collector's OTLP/HTTP base URL, like http://otel-collector:4318, got {raw!r}"
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 (raises on a port that is not one)
    except ValueError:
        raise SettingsError("OTEL_EXPORTER_OTLP_ENDPOINT", expectation) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise SettingsError("OTEL_EXPORTER_OTLP_ENDPOINT", expectation)
    return raw.rstrip("/")


def _sample_ratio(environ: Mapping[str, str]) -> float:
    _choice(environ, "OTEL_TRACES_SAMPLER", "parentbased_traceidratio", ("parentbased_traceidratio",))
    raw = (environ.get("OTEL_TRACES_SAMPLER_ARG") or "").strip()
    if not raw:
        return 1.0
    try:
        ratio = float(raw)
    except ValueError:
        ratio = -1.0
    if not 0.0 <= ratio <= 1.0:
        raise SettingsError("OTEL_TRACES_SAMPLER_ARG", f"expected the share of traces kept, from 0 to 1, got {raw!r}")
    return ratio


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the environment; raise :class:`SettingsError` on the first bad value."""
    environ = os.environ if environ is None else environ
    env = _choice(environ, "AFTERSALES_ENV", "sandbox", ("sandbox", "production"))

    admin_key = environ.get("AFTERSALES_ADMIN_KEY") or ""
    if env == "production":
        if not admin_key:
            raise SettingsError("AFTERSALES_ADMIN_KEY", "required when AFTERSALES_ENV=production")
        if admin_key == SANDBOX_ADMIN_KEY or len(admin_key) < 16:
            raise SettingsError(
                "AFTERSALES_ADMIN_KEY",
                "expected a secret of at least 16 characters other than the sandbox key in production",
            )
    admin_key = admin_key or SANDBOX_ADMIN_KEY

    data_dir = Path(environ.get("AFTERSALES_DATA_DIR") or "./.data")
    database_url = environ.get("AFTERSALES_DATABASE_URL") or ""
    if database_url and not database_url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        raise SettingsError(
            "AFTERSALES_DATABASE_URL",
            "expected sqlite+aiosqlite:///<path> or postgresql+asyncpg://<user>@<host>/<db>",
        )
    database_url = database_url or f"sqlite+aiosqlite:///{(data_dir / 'aftersales.db').resolve()}"

    temporal_address = environ.get("TEMPORAL_ADDRESS") or None
    if temporal_address is not None:
        host, _, port = temporal_address.rpartition(":")
        if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
            raise SettingsError("TEMPORAL_ADDRESS", f"expected host:port, got {temporal_address!r}")

    durations: dict[str, timedelta] = {}
    for name, attribute in _DURATIONS.items():
        raw = environ.get(name)
        if raw:
            try:
                durations[attribute] = parse_duration(raw)
            except ValueError as exc:
                raise SettingsError(name, str(exc)) from None

    supplier = environ.get("AFTERSALES_SUPPLIER") or "sandbox"
    if supplier != "sandbox" and ":" not in supplier:
        raise SettingsError("AFTERSALES_SUPPLIER", f"expected 'sandbox' or 'package.module:Factory', got {supplier!r}")

    temporal_port = _port(environ, "AFTERSALES_TEMPORAL_PORT", 7233)
    rate_limit = _rate_limit(environ, "AFTERSALES_RATE_LIMIT", Settings.rate_limit)
    role_rate_limits = {
        role: _rate_limit(environ, f"AFTERSALES_RATE_LIMIT_{role.upper()}", rate_limit) for role in RATE_LIMITED_ROLES
    }
    return Settings(
        env=env,
        http_host=environ.get("AFTERSALES_HTTP_HOST") or "127.0.0.1",
        http_port=_port(environ, "AFTERSALES_HTTP_PORT", 8080),
        data_dir=data_dir,
        database_url=database_url,
        temporal_address=temporal_address,
        temporal_namespace=environ.get("TEMPORAL_NAMESPACE") or "default",
        temporal_port=temporal_port,
        temporal_ui_port=_ui_port(environ, temporal_port),
        worker_metrics_port=_port(environ, "AFTERSALES_WORKER_METRICS_PORT", 0, lowest=0),
        admin_key=admin_key,
        supplier=supplier,
        log_format=_choice(
            environ, "AFTERSALES_LOG_FORMAT", "json" if env == "production" else "console", ("console", "json")
        ),
        task_queue=environ.get("AFTERSALES_TASK_QUEUE") or TASK_QUEUE,
        webhook_allow_http=_flag(environ, "AFTERSALES_WEBHOOK_ALLOW_HTTP"),
        webhook_receiver_concurrency=_count(environ, "AFTERSALES_WEBHOOK_RECEIVER_CONCURRENCY",
                                            Settings.webhook_receiver_concurrency, 1, 1000),
        webhook_connections=_count(environ, "AFTERSALES_WEBHOOK_CONNECTIONS", Settings.webhook_connections, 1, 10000),
        rate_limit=rate_limit,
        role_rate_limits=role_rate_limits,
        db_pool_size=_count(environ, "AFTERSALES_DB_POOL_SIZE", Settings.db_pool_size, 1, 1000),
        db_pool_overflow=_count(environ, "AFTERSALES_DB_POOL_OVERFLOW", Settings.db_pool_overflow, 0, 1000),
        worker_max_cached_workflows=_count(
            environ, "AFTERSALES_WORKER_MAX_CACHED_WORKFLOWS", Settings.worker_max_cached_workflows, 0, 1_000_000),
        worker_workflow_task_slots=_count(
            environ, "AFTERSALES_WORKER_WORKFLOW_TASK_SLOTS", Settings.worker_workflow_task_slots, 2, 10_000),
        worker_activity_slots=_count(environ, "AFTERSALES_WORKER_ACTIVITY_SLOTS", Settings.worker_activity_slots, 1, 10_000),
        worker_pollers=_count(environ, "AFTERSALES_WORKER_POLLERS", Settings.worker_pollers, 2, 100),
        otlp_endpoint=_otlp_endpoint(environ),
        otel_service_name=(environ.get("OTEL_SERVICE_NAME") or "").strip() or None,
        trace_sample_ratio=_sample_ratio(environ),
        **durations,
    )


def exit_on_bad_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """For process entry points: load settings or exit 2 with the one-line reason on stderr."""
    try:
        return load_settings(environ)
    except SettingsError as exc:
        print(f"aftersales: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
