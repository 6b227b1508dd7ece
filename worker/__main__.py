"""The worker process: ``python -m worker``. Runs every workflow and activity on the task queue."""

from __future__ import annotations

import asyncio
import signal
from datetime import timedelta

import aiohttp
import structlog
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Worker

from config.logging import configure_logging
from config.settings import Settings, exit_on_bad_settings
from store.facade import open_store
from worker.outbox_dispatcher import OutboxDispatcher
from worker.registry import WORKFLOWS, build_activities

log = structlog.get_logger("worker")
CONNECT_FOR_S = 60


async def connect(settings: Settings) -> Client:
    """Wait (bounded) for Temporal: in compose and in the launcher it may still be starting."""
    deadline = asyncio.get_running_loop().time() + CONNECT_FOR_S
    while True:
        try:
            return await Client.connect(
                settings.temporal_target, namespace=settings.temporal_namespace, data_converter=pydantic_data_converter
            )
        except RuntimeError as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise SystemExit(f"aftersales: cannot reach Temporal at {settings.temporal_target}: {exc}") from None
            await asyncio.sleep(1)


async def run(settings: Settings) -> None:
    store = await open_store(settings.database_url)
    client = await connect(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with aiohttp.ClientSession() as http:
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=WORKFLOWS,
            activities=build_activities(settings, store, http),
            graceful_shutdown_timeout=timedelta(seconds=5),
        )
        log.info("worker_started", task_queue=settings.task_queue, temporal=settings.temporal_target)
        async with worker:
            # Deliveries of events no flow pushed (no webhook then, or written by other code).
            dispatcher = asyncio.create_task(OutboxDispatcher(store.events, client, settings).run(stop))
            await stop.wait()
            log.info("worker_stopping")
            await dispatcher
    await store.close()


def main() -> None:
    settings = exit_on_bad_settings()
    configure_logging(settings, "worker")
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
