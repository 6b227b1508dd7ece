"""The gateway's Prometheus metrics (docs/operations.md#metrics): ``GET /metrics``, no auth.

- Requests by route *template* (``/v1/cancellations/{code}``, never a raw id: a label per flow
  code would grow without bound), method and status, with a latency histogram. Each gateway
  process counts its own requests; Prometheus adds them up across gateways.
- Flows started and ended by kind and outcome, the agent's queue and trigger deliveries by
  outcome are read from the database at scrape time (``store.metric_counts``): several gateways and
  workers write those rows, and only the database has the whole count. Every gateway reports
  the same figures, so aggregate them across gateways with ``max``, not ``sum``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from api.app_keys import DEPS
from domain.codes import FlowKind
from domain.flow_info import is_terminal
from store.metric_counts import Tallies, Tally

log = structlog.get_logger("api.metrics")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# Anything else a client sends as a method is one label, so a scanner cannot add series at will.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
# A scrape never waits longer than this for the database; the counts are then left out.
TALLY_TIMEOUT_S = 5.0
DELIVERY_OUTCOMES = ("delivered", "failed")

class StoreCounts(Collector):
    """The database's counts as metric families, from the last :class:`~store.metric_counts.Tally` read."""

    def __init__(self) -> None:
        self.tally: Tally | None = None

    def collect(self) -> Iterator[Metric]:
        readable = GaugeMetricFamily("aftersales_store_counts_up", "1 when the flow and delivery counts below were read from the database")
        readable.add_metric([], 0 if self.tally is None else 1)
        yield readable
        if self.tally is None:
            return
        yield from _flow_families(self.tally)
        yield from _delivery_families(self.tally)


def _flow_families(tally: Tally) -> Iterator[Metric]:
    started = CounterMetricFamily("aftersales_flows_started", "Flows started, by kind", labels=["kind"])
    ended = CounterMetricFamily("aftersales_flows_ended", "Flows that reached a terminal status, by kind and outcome",
                                labels=["kind", "outcome"])
    running = GaugeMetricFamily("aftersales_flows_in_progress", "Flows not yet ended, by kind and status",
                                labels=["kind", "status"])
    by_kind = {str(kind): 0 for kind in FlowKind}
    for (kind, status), count in sorted(tally.flows.items()):
        by_kind[kind] = by_kind.get(kind, 0) + count
        (ended if is_terminal(status) else running).add_metric([kind, status], count)
    for kind, count in sorted(by_kind.items()):
        started.add_metric([kind], count)
    parked = GaugeMetricFamily("aftersales_flows_record_refused",
                               "Flows parked on a transition the store refused for good, by kind: each waits for an operator",
                               labels=["kind"])
    for kind in sorted(by_kind):
        parked.add_metric([kind], tally.records_refused.get(kind, 0))
    depth = GaugeMetricFamily("aftersales_agent_queue_depth", "Manual cancellations awaiting an agent's quote")
    depth.add_metric([], tally.agent_queue_depth)
    oldest = GaugeMetricFamily("aftersales_agent_queue_oldest_seconds", "Age of the oldest cancellation awaiting a quote (0: none)")
    oldest.add_metric([], tally.agent_queue_oldest_s)
    late = GaugeMetricFamily("aftersales_flows_past_deadline",
                             "Flows still waiting for someone after their deadline passed (its outcome not recorded yet), by kind",
                             labels=["kind"])
    for kind in sorted(by_kind):
        late.add_metric([kind], tally.past_deadline.get(kind, 0))
    latest = GaugeMetricFamily("aftersales_flows_past_deadline_oldest_seconds",
                               "How far past its deadline the most overdue waiting flow is (0: none)")
    latest.add_metric([], tally.past_deadline_oldest_s)
    yield from (started, ended, running, parked, depth, oldest, late, latest)


def _delivery_families(tally: Tally) -> Iterator[Metric]:
    finished = CounterMetricFamily("aftersales_trigger_deliveries", "Trigger deliveries that ended, by outcome",
                                   labels=["outcome"])
    for outcome in DELIVERY_OUTCOMES:
        finished.add_metric([outcome], tally.deliveries.get(outcome, 0))
    pending = GaugeMetricFamily("aftersales_trigger_deliveries_pending", "Events not yet delivered, still being retried")
    pending.add_metric([], tally.deliveries.get("pending", 0))
    attempts = CounterMetricFamily("aftersales_trigger_delivery_attempts", "POSTs made to partners' webhooks")
    attempts.add_metric([], tally.delivery_attempts)
    yield from (finished, pending, attempts)


class GatewayMetrics:
    """One registry per application, so that several apps in one process (tests) never share series."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "aftersales_http_requests", "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "aftersales_http_request_duration_seconds", "Time to answer an HTTP request, by route template and method",
            ["route", "method"], buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.counts = StoreCounts()
        self.registry.register(self.counts)
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        """One answered request (``api.tracing.observe_requests``). The series of each route, method and
        status are looked up once and kept: ``labels()`` takes a lock and builds its key every time.
        Bounded: routes are templates, methods and statuses few (anything else a client sends as a
        method is ``OTHER``)."""
        if method not in METHODS:
            method = "OTHER"
        series = self._series.get((route, method, status))
        if series is None:
            series = self._series[(route, method, status)] = (
                self.requests.labels(route, method, str(status)), self.latency.labels(route, method))
        series[0].inc()
        series[1].observe(seconds)

    async def refresh(self, tallies: Tallies) -> None:
        """Read the database's counts (a few grouped counts, once per scrape); on failure they are left out."""
        try:
            self.counts.tally = await asyncio.wait_for(tallies.count(), TALLY_TIMEOUT_S)
        except Exception as exc:  # a scrape answers whatever it can; the database's health is /healthz's
            log.warning("metrics_counts_unavailable", error=type(exc).__name__)
            self.counts.tally = None

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


METRICS = web.AppKey("metrics", GatewayMetrics)


def route_template(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else UNMATCHED


async def metrics(request: web.Request) -> web.Response:
    gateway = request.app[METRICS]
    await gateway.refresh(Tallies(request.app[DEPS].store.engine))
    return web.Response(body=gateway.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def add_metrics(app: web.Application) -> None:
    app[METRICS] = GatewayMetrics()
    app.router.add_get("/metrics", metrics)
