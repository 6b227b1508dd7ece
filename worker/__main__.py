"""The worker process: ``python -m worker``. Runs every workflow and activity on the task queue."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import structlog
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.worker import Interceptor

from config.logging import configure_logging
from config.settings import Settings, exit_on_bad_settings
from config.telemetry import configure_tracing, temporal_interceptors
from services.sweeps import sweep_forever
from store.repositories import open_store
from worker.activity_outcomes import ActivityOutcomes
from worker.outbox_dispatcher import BATCH, SWEEP_EVERY, OutboxDispatcher
from worker.registry import build_activities, workflow_worker

log = structlog.get_logger("worker")
CONNECT_FOR_S = 60


def metrics_runtime(settings: Settings) -> Runtime | None:
    """A Temporal runtime serving the SDK's metrics (and ours, through its meter) for Prometheus on
    ``AFTERSALES_HTTP_HOST:AFTERSALES_WORKER_METRICS_PORT``; None when the port is 0."""
    if not settings.worker_metrics_port:
        return None
    address = f"{settings.http_host}:{settings.worker_metrics_port}"
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
    except Exception as exc:  # the port is taken, or the host is not ours
        raise SystemExit(f"aftersales: cannot serve worker metrics on {address}: {exc}") from None


async def connect(settings: Settings, runtime: Runtime | None = None) -> Client:
    """Wait (bounded) for Temporal: in compose and in the launcher it may still be starting."""
    deadline = asyncio.get_running_loop().time() + CONNECT_FOR_S
    while True:
        try:
            return await Client.connect(
                settings.temporal_target, namespace=settings.temporal_namespace, data_converter=pydantic_data_converter,
                runtime=runtime, interceptors=temporal_interceptors(settings),
            )
        except RuntimeError as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise SystemExit(f"aftersales: cannot reach Temporal at {settings.temporal_target}: {exc}") from None
            await asyncio.sleep(1)


async def run(settings: Settings) -> None:
    runtime = metrics_runtime(settings)
    store = await open_store(settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_pool_overflow)
    client = await connect(settings, runtime)
    interceptors: list[Interceptor] = [ActivityOutcomes(runtime.metric_meter)] if runtime is not None else []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # One pool of webhook connections for every receiver; no receiver takes more than its
    # AFTERSALES_WEBHOOK_RECEIVER_CONCURRENCY of them (activities.webhooks).
    connector = aiohttp.TCPConnector(limit=settings.webhook_connections)
    async with aiohttp.ClientSession(connector=connector) as http:
        worker = workflow_worker(
            client,
            settings.task_queue,
            build_activities(settings, store, http),
            interceptors=interceptors,
            # On SIGTERM in-flight activities get this long to finish before they are cancelled
            # (and retried elsewhere): a supplier call is not cut in the middle by a deploy.
            graceful_shutdown_timeout=settings.worker_shutdown_grace,
            # Capacity (docs/operations.md#worker-and-database-settings).
            max_cached_workflows=settings.worker_max_cached_workflows,
            max_concurrent_workflow_tasks=settings.worker_workflow_task_slots,
            max_concurrent_activities=settings.worker_activity_slots,
            max_concurrent_workflow_task_polls=settings.worker_pollers,
            max_concurrent_activity_task_polls=settings.worker_pollers,
        )
        log.info("worker_started", task_queue=settings.task_queue, temporal=settings.temporal_target,
                 metrics_port=settings.worker_metrics_port or None)
        async with worker:
            # Deliveries of events no flow pushed (no webhook then, or written by other code).
            dispatcher = asyncio.create_task(sweep_forever(
                OutboxDispatcher(store.events, client, settings).sweep, name="outbox_dispatcher", every=SWEEP_EVERY,
                stop=stop, full_batch=BATCH,
            ))
            await stop.wait()
            log.info("worker_stopping", grace_s=settings.worker_shutdown_grace.total_seconds())
            await dispatcher
    await store.close()
    log.info("worker_stopped")


def main() -> None:
    settings = exit_on_bad_settings()
    configure_logging(settings, "worker")
    configure_tracing(settings, "worker")
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
