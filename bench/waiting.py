"""Manual cancellations waiting for an agent's quote until their deadlines fire, versus bare
workflows waiting on a timer of the same length, on one dev server.

Not a test: it prints figures. Usage:

    .venv/bin/python -m bench.waiting [-n 1000] [-c 20] [--window SECONDS] [--skip-reference]
                                      [--database-url URL] [--json FILE]

It starts a Temporal dev server, the worker and the gateway as separate processes, the gateway
with AFTERSALES_AGENT_QUOTE_WINDOW = the window (default 30 s + N/25 s: the starts should be over
before the first deadline), books N+10 products with a manual cancellation policy and quotes them.
Then, one after the other:
  * the project: 10 warm-up flows, then N manual cancellations started over HTTP
    (POST /v1/products/{id}/cancellations, 202 awaiting_agent_quote) at concurrency C. It reads
    each process's RSS (/proc/<pid>/status) before and after the starts, the CPU they use while
    every flow waits, then waits (bounded) until every flow is `expired` in the store: the lag of
    a flow is the time its `expired` transition was recorded minus its `quote_deadline`; the lag
    seen in the store is when the bench's poll (every 0.5 s) first saw it expired;
  * the reference: 10 + N bare workflows (bench/bare.py) waiting on a timer of the window's length,
    started through the Temporal client at concurrency C, run by a worker process of their own
    (bench/bare_worker.py): the same figures, the lag being how late each woke.
Prints the start rate, RSS per flow (and the worker's RSS extrapolated to 10 000 flows), idle CPU,
how many deadlines fired and the lag p50/p99 of each, and the ratios. Both workers keep the SDK's
default cache of 1000 workflows: beyond it a waiting flow is evicted (and replayed when its timer
fires), so below 10 000 flows the worker's RSS there is given twice, extrapolated linearly (an
upper bound) and with the cache full (nearer: -n 10000 measures it). A PostgreSQL --database-url
names the server: the bench runs on a throwaway database there and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import math
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from temporalio.client import WorkflowHandle

from bench.bare import BareWaitingWorkflow
from bench.stack import (
    Stack,
    arguments,
    cpu_seconds,
    flight,
    measure,
    new_partner,
    percentile,
    rss_mb,
    run,
    stack,
    summary,
    wait_for_line,
    write_figures,
)
from store.schema import flows

WARMUP = 10
PER_RESERVATION = 20  # the most products a reservation may have
ASSUMED_START_RATE = 25  # flows/s over HTTP on a small machine: what the default window allows for
QUIET_CPU_S = 0.05  # a process using less than 5 % of a core for a second has no work left
QUIET_BOUND_S = 60.0
GRACE_S = 60.0  # beyond the last deadline, how long the bench waits for the flows to fire
POLL_S = 0.5
AT_SCALE = 10_000
# The SDK's default max_cached_workflows, which neither `python -m worker` nor bench/bare_worker.py
# changes: a worker holds at most this many workflows in memory and evicts the rest.
CACHED = 1000
MANUAL = {"mode": "manual"}


def default_window(n: int) -> int:
    return 30 + math.ceil((n + WARMUP) / ASSUMED_START_RATE)


# --- processes' figures -------------------------------------------------------------------


async def quiet(pid: int, bound_s: float = QUIET_BOUND_S) -> bool:
    """Until ``pid`` has used less than QUIET_CPU_S of CPU over one second (its backlog done); at most ``bound_s``."""
    deadline = time.monotonic() + bound_s
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        await asyncio.sleep(1)
        if cpu_seconds(pid) - before < QUIET_CPU_S:
            return True
    print(f"note: process {pid} still busy after {bound_s:.0f}s; measuring anyway")
    return False


def rss(pids: dict[str, int]) -> dict[str, float]:
    return {name: rss_mb(pid) for name, pid in pids.items()}


class CpuMeter:
    """CPU used by each process between two readings, as a share of one core."""

    def __init__(self, pids: dict[str, int]) -> None:
        self._pids = pids
        self._start = time.monotonic()
        self._cpu = {name: cpu_seconds(pid) for name, pid in pids.items()}

    def percent(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._start
        return {name: 100 * (cpu_seconds(pid) - self._cpu[name]) / elapsed for name, pid in self._pids.items()}


async def idle_until(first_deadline: datetime, pids: dict[str, int]) -> dict[str, float] | None:
    """The CPU each process uses while every flow waits: from now until a second before the first deadline."""
    idle_s = (first_deadline - datetime.now(timezone.utc)).total_seconds() - 1
    if idle_s < 2:
        print("note: the starts ended too close to the first deadline to measure idle CPU (raise --window)")
        return None
    meter = CpuMeter(pids)
    await asyncio.sleep(idle_s)
    return meter.percent()


def memory(before: dict[str, float], after: dict[str, float], n: int) -> dict[str, Any]:
    """RSS before and after the starts, per flow, and the worker's at 10 000 flows: measured when
    n reaches it, else extrapolated twice: linearly (as if every flow stayed in memory) and with the
    cache full (what the worker holds once more than CACHED flows wait: the linear figure's cap)."""
    worker_per_flow_kb = (after["worker"] - before["worker"]) * 1024 / n
    linear = before["worker"] + worker_per_flow_kb * AT_SCALE / 1024
    cache_full = after["worker"] if n + WARMUP >= CACHED else before["worker"] + worker_per_flow_kb * CACHED / 1024
    return {
        "rss_mb": {name: {"before": before[name], "after": after[name]} for name in before},
        "rss_per_flow_kb": {name: (after[name] - before[name]) * 1024 / n for name in before},
        "worker_rss_per_flow_kb": worker_per_flow_kb,
        "worker_rss_at_10k_mb": after["worker"] if n >= AT_SCALE else linear,
        "worker_rss_at_10k_cache_full_mb": after["worker"] if n >= AT_SCALE else cache_full,
    }


def lags(values: list[float]) -> dict[str, float]:
    return {"p50_s": percentile(values, 50), "p99_s": percentile(values, 99), "max_s": max(values, default=float("nan"))}


# --- the project: manual cancellations over HTTP ------------------------------------------


async def prepare(http: aiohttp.ClientSession, base: str, count: int, concurrency: int) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """A partner and ``count`` manual products, each with a quote: (product id, quote id) pairs."""
    partner = await new_partner(http, base)
    product_ids: list[str] = []
    body = {"travellers": [{"traveller_id": "T1", "name": "Bench"}]}
    sizes = [min(PER_RESERVATION, count - at) for at in range(0, count, PER_RESERVATION)]

    async def reservation(i: int) -> None:
        products = [flight(30, MANUAL) for _ in range(sizes[i])]
        async with http.post(f"{base}/v1/sandbox/reservations", json={**body, "products": products}, headers=partner) as r:
            r.raise_for_status()
            product_ids.extend(p["product_id"] for p in (await r.json())["products"])

    await measure(len(sizes), concurrency, reservation)
    quotes: list[tuple[str, str]] = []

    async def quote(i: int) -> None:
        async with http.post(f"{base}/v1/products/{product_ids[i]}/cancellation-quotes", json={}, headers=partner) as r:
            r.raise_for_status()
            quotes.append((product_ids[i], (await r.json())["quote_id"]))

    await measure(count, concurrency, quote)
    return partner, quotes


async def count_recorded(store: AsyncEngine) -> int:
    """Cancellations whose workflow has recorded its first step (awaiting_agent_quote with its deadline)."""
    async with store.connect() as conn:
        return (await conn.execute(
            sa.select(sa.func.count()).select_from(flows).where(flows.c.kind == "cancellation", flows.c.version >= 1)
        )).scalar_one()


async def until_recorded(store: AsyncEngine, count: int, bound_s: float) -> int:
    """Until ``count`` flows have recorded their first step; at most ``bound_s``. How many have."""
    deadline = time.monotonic() + bound_s
    while (done := await count_recorded(store)) < count and time.monotonic() < deadline:
        await asyncio.sleep(POLL_S)
    if done < count:
        print(f"note: only {done} of {count} flows recorded their first step within {bound_s:.0f}s "
              "(the worker is behind: see TMPRL1104 in its log); measuring anyway")
    return done


async def deadlines(store: AsyncEngine) -> dict[str, datetime]:
    """Each recorded flow's quote deadline (a flow not recorded yet has none)."""
    async with store.connect() as conn:
        rows = (await conn.execute(sa.select(flows.c.code, flows.c.info).where(flows.c.kind == "cancellation"))).all()
    return {row.code: datetime.fromisoformat(row.info["quote_deadline"]) for row in rows if row.info.get("quote_deadline")}


async def watch_expiry(store: AsyncEngine, total: int, bound: datetime) -> dict[str, datetime]:
    """When the bench first saw each flow `expired` in the store; polls until ``total`` are or ``bound`` passes."""
    seen: dict[str, datetime] = {}
    while len(seen) < total and datetime.now(timezone.utc) < bound:
        async with store.connect() as conn:
            codes = (await conn.execute(
                sa.select(flows.c.code).where(flows.c.kind == "cancellation", flows.c.status == "expired")
            )).scalars().all()
        now = datetime.now(timezone.utc)
        for code in codes:
            seen.setdefault(code, now)
        await asyncio.sleep(POLL_S)
    return seen


async def recorded_lags(store: AsyncEngine) -> list[float]:
    """For each expired flow: when its `expired` transition was recorded minus its quote deadline (s)."""
    async with store.connect() as conn:
        infos = (await conn.execute(
            sa.select(flows.c.info).where(flows.c.kind == "cancellation", flows.c.status == "expired")
        )).scalars().all()
    found = []
    for info in infos:
        expired = next(entry["at"] for entry in info["history"] if entry["event"] == "expired")
        found.append((datetime.fromisoformat(expired) - datetime.fromisoformat(info["quote_deadline"])).total_seconds())
    return found


async def project(parts: Stack, n: int, concurrency: int, window: int) -> dict[str, Any]:
    pids = parts.pids()
    store = create_async_engine(parts.database_url)
    try:
        async with aiohttp.ClientSession() as http:
            prepared = time.perf_counter()
            partner, quotes = await prepare(http, parts.base, n + WARMUP, concurrency)
            print(f"booked and quoted {n + WARMUP} manual products in {time.perf_counter() - prepared:.1f}s")
            statuses: dict[int, int] = {}

            async def start(i: int) -> None:
                product_id, quote_id = quotes[i]
                async with http.post(f"{parts.base}/v1/products/{product_id}/cancellations", json={"quote_id": quote_id},
                                     headers=partner) as r:
                    statuses[r.status] = statuses.get(r.status, 0) + 1
                    await r.read()

            await measure(WARMUP, 1, start)
            await until_recorded(store, WARMUP, GRACE_S)
            await quiet(pids["worker"])
            before = rss(pids)
            during_starts = CpuMeter(pids)
            elapsed, latencies = await measure(n, concurrency, lambda i: start(WARMUP + i))
            starting_cpu = during_starts.percent()
            starts = summary("manual cancellation/HTTP", n, elapsed, latencies)
        accepted = statuses.get(202, 0)
        recorded_all = await until_recorded(store, accepted, GRACE_S + n / 50) == accepted
        await quiet(pids["worker"])
        after = rss(pids)
        due = await deadlines(store)
        idle = await idle_until(min(due.values()), pids)
        firing = CpuMeter(pids)
        # A flow recorded late has a later deadline: at least a window from when the bench saw it unrecorded.
        last = max(due.values()) if recorded_all else datetime.now(timezone.utc) + timedelta(seconds=window)
        seen = await watch_expiry(store, accepted, last + timedelta(seconds=GRACE_S + n / 100))
        firing_cpu = firing.percent()
        recorded = await recorded_lags(store)
    finally:
        await store.dispose()
    return {
        "starts": starts,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "flows": accepted, "fired": len(recorded),
        "lag": lags(recorded),
        "seen_lag": lags([(seen[code] - due[code]).total_seconds() for code in seen if code in due]),
        **memory(before, after, n),
        "cpu_percent": {"starts": starting_cpu, "idle": idle, "firing": firing_cpu},
    }


# --- the reference: bare workflows on a timer ---------------------------------------------


async def reference(parts: Stack, n: int, concurrency: int, window: int) -> dict[str, Any]:
    queue = f"bench-wait-{uuid.uuid4().hex[:6]}"
    worker = parts.start("bare-worker", [sys.executable, "-m", "bench.bare_worker",
                                         parts.env.client.service_client.config.target_host, queue])
    await wait_for_line(parts.data / "bare-worker.log", "bare_worker_started")
    pids = {"worker": worker.pid, **({"temporal": parts.temporal_pid} if parts.temporal_pid else {})}
    client = parts.env.client
    handles: list[WorkflowHandle[Any, float]] = []
    due: list[datetime] = []

    async def start(i: int) -> None:
        due.append(datetime.now(timezone.utc) + timedelta(seconds=window))
        handles.append(await client.start_workflow(BareWaitingWorkflow.run, float(window), id=f"{queue}-{i}",
                                                   task_queue=queue))

    await measure(WARMUP, 1, start)
    await quiet(worker.pid)
    before = rss(pids)
    during_starts = CpuMeter(pids)
    elapsed, latencies = await measure(n, concurrency, lambda i: start(WARMUP + i))
    starting_cpu = during_starts.percent()
    starts = summary("bare waiting workflow", n, elapsed, latencies)
    await quiet(worker.pid)
    after = rss(pids)
    idle = await idle_until(min(due), pids)
    firing = CpuMeter(pids)
    woke = await results(handles, max(due) + timedelta(seconds=GRACE_S + n / 100))
    return {
        "starts": starts,
        "flows": len(handles), "fired": len(woke), "lag": lags(woke),
        **memory(before, after, n),
        "cpu_percent": {"starts": starting_cpu, "idle": idle, "firing": firing.percent()},
    }


async def results(handles: list[WorkflowHandle[Any, float]], bound: datetime) -> list[float]:
    """How late each bare workflow woke, for those that finished before ``bound``."""
    gate = asyncio.Semaphore(100)

    async def one(handle: WorkflowHandle[Any, float]) -> float:
        async with gate:
            return await handle.result()

    tasks = [asyncio.create_task(one(handle)) for handle in handles]
    done, pending = await asyncio.wait(tasks, timeout=max(1.0, (bound - datetime.now(timezone.utc)).total_seconds()))
    for task in pending:
        task.cancel()
    return [task.result() for task in done if task.exception() is None]


# --- report -------------------------------------------------------------------------------


def report(n: int, concurrency: int, window: int, database: str, mine: dict[str, Any], ref: dict[str, Any] | None) -> dict[str, Any]:
    print(f"\nAftersales bench: waiting, n={n} (+{WARMUP} warm-up), concurrency {concurrency}, window {window}s, "
          f"database={database}")
    print(f"HTTP answers to the starts: {mine['statuses']}")
    for name, figures in (("project", mine), ("reference", ref)):
        if figures is None:
            continue
        print(f"{name}:")
        for part, kb in figures["rss_per_flow_kb"].items():
            held = figures["rss_mb"][part]
            print(f"  RSS {part:<9} {held['before']:7.1f} → {held['after']:7.1f} MB   {kb:6.1f} KB/flow")
        if n >= AT_SCALE:
            print(f"  worker RSS at {n + WARMUP} flows: {figures['worker_rss_at_10k_mb']:.0f} MB (measured)")
        else:
            print(f"  worker RSS at {AT_SCALE} flows ≈ {figures['worker_rss_at_10k_mb']:.0f} MB extrapolated linearly, "
                  f"≈ {figures['worker_rss_at_10k_cache_full_mb']:.0f} MB with its cache of {CACHED} workflows full")
        for phase, cpu in figures["cpu_percent"].items():
            shown = "not measured" if cpu is None else ", ".join(f"{part} {pct:.1f}%" for part, pct in cpu.items())
            print(f"  CPU while {phase:<7} {shown}")
        print(f"  deadlines fired: {figures['fired']}/{figures['flows']}   lag p50 {figures['lag']['p50_s']:.3f} s  "
              f"p99 {figures['lag']['p99_s']:.3f} s  max {figures['lag']['max_s']:.3f} s")
        if "seen_lag" in figures:
            seen = figures["seen_lag"]
            print(f"  lag seen in the store (poll every {POLL_S}s): p50 {seen['p50_s']:.3f} s  p99 {seen['p99_s']:.3f} s")
    ratios: dict[str, float] = {}
    if ref is not None:
        ratios = {"start_rate": mine["starts"]["rate"] / ref["starts"]["rate"],
                  "worker_rss_per_flow": mine["worker_rss_per_flow_kb"] / ref["worker_rss_per_flow_kb"]
                  if ref["worker_rss_per_flow_kb"] > 0 else float("nan")}
        print(f"ratio start rate project / reference: {ratios['start_rate']:.2f}x; "
              f"worker RSS per flow: {ratios['worker_rss_per_flow']:.2f}x")
    return {"bench": "waiting", "n": n, "warmup": WARMUP, "concurrency": concurrency, "window_s": window,
            "database": database, "project": mine, "reference": ref, "ratio": ratios}


async def main(n: int, concurrency: int, window: int | None, skip_reference: bool, database_url: str | None,
               json_path: Path | None) -> None:
    window = window or default_window(n)
    settings = {"AFTERSALES_AGENT_QUOTE_WINDOW": f"{window}s", "AFTERSALES_QUOTE_TTL": "2h"}
    async with stack(database_url, **settings) as parts:
        mine = await project(parts, n, concurrency, window)
        ref = None if skip_reference else await reference(parts, n, concurrency, window)
        print(f"logs of the worker and the gateway: {parts.data}")
    write_figures(json_path, report(n, concurrency, window, database_url or "sqlite", mine, ref))


if __name__ == "__main__":
    parser = arguments(__doc__)
    parser.add_argument("-n", type=int, default=1000, help="flows of each kind (plus 10 warm-up flows)")
    parser.add_argument("-c", "--concurrency", type=int, default=20)
    parser.add_argument("--window", type=int, default=None,
                        help="the agent quote window and the bare timer, in seconds (default 30 + N/25)")
    parser.add_argument("--skip-reference", action="store_true", help="the project only (e.g. a long run at 10 000)")
    args = parser.parse_args()
    run(main(args.n, args.concurrency, args.window, args.skip_reference, args.database_url, args.json))
