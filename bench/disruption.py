"""A flight-level disruption at scale: one supplier push affecting N products of 2 partners whose decision
windows all close at the same instant, versus N bare workflows that each wait on a timer to one instant and
then run one activity, on one dev server, in the same run.

Not a test: it prints figures. Usage:

    .venv/bin/python -m bench.disruption [-n 1000] [-c 20] [--window SECONDS] [--database-url URL] [--json FILE]

It starts a Temporal dev server, the worker and the gateway as separate processes, books N flight products on
one flight (reservations of 20, alternating between two partners), registers a supplier, then, one after the
other:
  * the project: the supplier pushes a time change of that flight with an ``action_time_limit`` ``window``
    seconds ahead (default 30 + N/20 s: the fan-out should be over before it), so every product's decision
    deadline is that instant. It prints the intake's answer time; the flows started per second (N over the time
    from the push until the fan-out workflow has started every flow) and offered per second (until every flow
    is recorded ``awaiting_partner_action``, its trigger stored); then, past the deadline, the drain
    rate of the defaults (N over the time from the deadline until the last flow is recorded ``auto_accepted``)
    and each flow's lag (its ``auto_accepted`` transition minus its deadline); the worker's and the server's RSS;
    and whether every product ended ``auto_accepted`` exactly once (one flow per product, one
    ``rescheduling.auto_accepted`` event per flow);
  * the reference: N bare workflows (bench/bare.py ``BareDeadlineWorkflow``) started through the Temporal client
    at concurrency C, each waiting on a timer to one instant ``window`` seconds ahead and then running one
    no-op activity, on a worker process of their own (bench/bare_worker.py): starts per second, drain rate and lag.
A PostgreSQL --database-url names the server: the bench runs on a throwaway database there and drops it.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from temporalio.client import WorkflowHandle

from bench.bare import BareDeadlineWorkflow
from bench.stack import ADMIN, Stack, arguments, measure, new_partner, rss_mb, run, stack, summary, wait_for_line, write_figures
from bench.waiting import POLL_S, lags, quiet, results, rss
from domain.rescheduling_flow import RESCHEDULING_AUTO_ACCEPTED
from domain.signature import sign
from store.schema import events, flows

PER_RESERVATION = 20
ASSUMED_START_RATE = 20  # flows/s a small machine's fan-out reaches: what the default window allows for
GRACE_S = 120.0
TARGETS = {"start_rate": 0.5, "drain_rate": 0.7, "worker_rss_mb": 300.0}


def default_window(n: int) -> int:
    return 30 + math.ceil(n / ASSUMED_START_RATE)


def on_flight(number: str, departure: datetime) -> dict[str, Any]:
    return {
        "kind": "flight", "carrier": "ZZ",
        "segments": [{"origin": "MAD", "destination": "CDG", "departure": departure.isoformat(),
                      "arrival": (departure + timedelta(hours=2)).isoformat(), "flight_number": number}],
        "price": {"amount": "240.00", "currency": "EUR"}, "vat_rate": "0.081",
        "cancellation_policy": {"mode": "automatic", "tiers": [{"hours_before_start": 168, "penalty_percent": "50"}]},
    }


async def count(store: AsyncEngine, disruption_id: str, status: str) -> int:
    async with store.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(flows).where(
            flows.c.disruption_id == disruption_id, flows.c.status == status))).scalar_one())


async def until_count(store: AsyncEngine, disruption_id: str, status: str, n: int, bound: float) -> float | None:
    """Seconds (monotonic) at which ``n`` flows of the disruption were first seen in ``status``; None past ``bound``."""
    while time.monotonic() < bound:
        if await count(store, disruption_id, status) >= n:
            return time.monotonic()
        await asyncio.sleep(POLL_S)
    return None


async def auto_accepted(store: AsyncEngine, disruption_id: str) -> tuple[list[float], list[datetime], dict[str, int]]:
    """Each auto-accepted flow's lag (its transition minus its deadline), its transition time, and how many
    flows each product has and how many auto-accepted events each flow sent (both must be 1)."""
    async with store.connect() as conn:
        rows = (await conn.execute(sa.select(flows.c.code, flows.c.product_id, flows.c.status, flows.c.info)
                                   .where(flows.c.disruption_id == disruption_id))).all()
        sent = Counter((await conn.execute(sa.select(events.c.flow_code).join(flows, flows.c.code == events.c.flow_code)
                                           .where(flows.c.disruption_id == disruption_id,
                                                  events.c.type == RESCHEDULING_AUTO_ACCEPTED))).scalars())
    lag, at = [], []
    for row in rows:
        if row.status != "auto_accepted":
            continue
        done = datetime.fromisoformat(next(e["at"] for e in row.info["history"] if e["event"] == "auto_accepted"))
        lag.append((done - datetime.fromisoformat(row.info["decision_deadline"])).total_seconds())
        at.append(done)
    per_product = Counter(row.product_id for row in rows)
    once = {"products": len(per_product), "one_flow_each": sum(1 for v in per_product.values() if v == 1),
            "auto_accepted": sum(1 for row in rows if row.status == "auto_accepted"),
            "one_event_each": sum(1 for row in rows if sent[row.code] == 1)}
    return lag, at, once


async def project(parts: Stack, n: int, concurrency: int, window: int) -> dict[str, Any]:
    pids = parts.pids()
    store = create_async_engine(parts.database_url)
    try:
        async with aiohttp.ClientSession() as http:
            base = parts.base
            partners = [await new_partner(http, base) for _ in range(2)]
            async with http.post(f"{base}/v1/admin/suppliers", json={"name": "Bench Air", "carriers": ["ZZ"]},
                                 headers=ADMIN) as r:
                r.raise_for_status()
                supplier = await r.json()
            number = f"ZZ{random.randrange(1000, 10000)}"
            departure = (datetime.now(timezone.utc) + timedelta(days=30)).replace(microsecond=0)
            sizes = [min(PER_RESERVATION, n - at) for at in range(0, n, PER_RESERVATION)]

            async def reservation(i: int) -> None:
                body = {"travellers": [{"traveller_id": "T1", "name": "Bench"}],
                        "products": [on_flight(number, departure)] * sizes[i]}
                async with http.post(f"{base}/v1/sandbox/reservations", json=body, headers=partners[i % 2]) as r:
                    r.raise_for_status()

            booked = time.perf_counter()
            await measure(len(sizes), concurrency, reservation)
            print(f"booked {n} products on {number} for 2 partners in {time.perf_counter() - booked:.1f}s")
            await quiet(pids["worker"])
            before = rss(pids)

            deadline = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=window)
            new = departure + timedelta(hours=3)
            raw = json.dumps({
                "change_id": f"bench-{number}", "kind": "time_change", "action_time_limit": deadline.isoformat(),
                "flight": {"carrier": "ZZ", "flight_number": number, "departure_date": departure.date().isoformat()},
                "proposed_segments": [{"origin": "MAD", "destination": "CDG", "departure": new.isoformat(),
                                       "arrival": (new + timedelta(hours=2)).isoformat(), "flight_number": number}],
            }).encode()
            headers = {"Authorization": f"Bearer {supplier['api_key']}", "Content-Type": "application/json",
                       "Aftersales-Signature": sign(supplier["signing_secret"], int(time.time()), raw)}
            pushed = time.monotonic()
            async with http.post(f"{base}/v1/supplier/schedule-changes", data=raw, headers=headers) as r:
                answer = await r.json()
                intake_s = time.monotonic() - pushed
                assert r.status == 202, answer
        disruption_id = answer["disruption_id"]
        print(f"push answered in {intake_s * 1000:.0f} ms: {answer}")
        fan_out: WorkflowHandle[Any, int] = parts.env.client.get_workflow_handle(disruption_id)
        bound = time.monotonic() + window + GRACE_S
        await asyncio.wait_for(fan_out.result(), window + GRACE_S)
        fanned_out_s = time.monotonic() - pushed
        started_at = await until_count(store, disruption_id, "awaiting_partner_action", n, bound)
        started_s = (started_at or time.monotonic()) - pushed
        await quiet(pids["worker"])
        waiting = rss(pids)
        print(f"{n} flows started in {started_s:.1f}s (fan-out workflow done in {fanned_out_s:.1f}s); "
              f"all windows close at {deadline.isoformat()}")
        left_s = (deadline - datetime.now(timezone.utc)).total_seconds()
        drained = await until_count(store, disruption_id, "auto_accepted", n, time.monotonic() + max(left_s, 0) + GRACE_S + n / 20)
        lag, at, once = await auto_accepted(store, disruption_id)
        after = rss(pids)
    finally:
        await store.dispose()
    drain_s = (max(at) - deadline).total_seconds() if at else float("nan")
    return {
        "answer": answer, "intake_ms": intake_s * 1000,
        # Started: every workflow started (the fan-out finished), as the bare starts count a start; offered:
        # every flow has also run to its decision point (awaiting_partner_action, rescheduling.detected stored).
        "started": {"rate": n / fanned_out_s, "elapsed_s": fanned_out_s},
        "offered": {"rate": n / started_s, "elapsed_s": started_s, "all": started_at is not None},
        "drain": {"rate": len(at) / drain_s if drain_s > 0 else float("nan"), "elapsed_s": drain_s, "all": drained is not None},
        "lag": lags(lag), "once": once,
        "rss_mb": {name: {"before": before[name], "waiting": waiting[name], "after": after[name]} for name in before},
    }


async def reference(parts: Stack, n: int, concurrency: int, window: int) -> dict[str, Any]:
    queue = f"bench-deadline-{uuid.uuid4().hex[:6]}"
    worker = parts.start("bare-worker", [sys.executable, "-m", "bench.bare_worker",
                                         parts.env.client.service_client.config.target_host, queue])
    await wait_for_line(parts.data / "bare-worker.log", "bare_worker_started")
    pids = {"worker": worker.pid, **({"temporal": parts.temporal_pid} if parts.temporal_pid else {})}
    client = parts.env.client
    deadline = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=window)
    handles: list[WorkflowHandle[Any, float]] = []

    async def start(i: int) -> None:
        handles.append(await client.start_workflow(BareDeadlineWorkflow.run, deadline.isoformat(), id=f"{queue}-{i}",
                                                   task_queue=queue))

    before = rss(pids)
    elapsed, latencies = await measure(n, concurrency, start)
    starts = summary("bare deadline workflow", n, elapsed, latencies)
    await quiet(worker.pid)
    waiting = rss(pids)
    woke = await results(handles, deadline + timedelta(seconds=GRACE_S + n / 20))
    after = {name: rss_mb(pid) for name, pid in pids.items()}
    drain_s = max(woke) if woke else float("nan")
    return {
        "started": {"rate": starts["rate"], "elapsed_s": elapsed},
        "drain": {"rate": len(woke) / drain_s if drain_s > 0 else float("nan"), "elapsed_s": drain_s, "all": len(woke) == n},
        "lag": lags(woke), "finished": len(woke),
        "rss_mb": {name: {"before": before[name], "waiting": waiting[name], "after": after[name]} for name in before},
    }


def report(n: int, concurrency: int, window: int, database: str, mine: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    print(f"\nAftersales bench: disruption, n={n}, concurrency {concurrency} (the bare starts), window {window}s, "
          f"database={database}")
    print(f"intake answer: {mine['intake_ms']:.0f} ms for {mine['answer']['affected']} affected products")
    for name, figures in (("project", mine), ("reference", ref)):
        print(f"{name}:")
        print(f"  started: {figures['started']['rate']:.1f} flows/s ({figures['started']['elapsed_s']:.1f} s)")
        if "offered" in figures:
            print(f"  offered (awaiting_partner_action): {figures['offered']['rate']:.1f} flows/s "
                  f"({figures['offered']['elapsed_s']:.1f} s)")
        print(f"  drain after the deadline: {figures['drain']['rate']:.1f} flows/s ({figures['drain']['elapsed_s']:.1f} s)")
        print(f"  lag p50 {figures['lag']['p50_s']:.2f} s  p99 {figures['lag']['p99_s']:.2f} s  max {figures['lag']['max_s']:.2f} s")
        for part, held in figures["rss_mb"].items():
            print(f"  RSS {part:<9} {held['before']:7.1f} → {held['waiting']:7.1f} (all waiting) → {held['after']:7.1f} MB")
    once = mine["once"]
    exactly_once = once["products"] == once["one_flow_each"] == once["auto_accepted"] == once["one_event_each"] == n
    print(f"every product auto_accepted exactly once: {'yes' if exactly_once else 'NO'} ({once})")
    ratio = {"start_rate": mine["started"]["rate"] / ref["started"]["rate"],
             "drain_rate": mine["drain"]["rate"] / ref["drain"]["rate"]}
    worker_rss = mine["rss_mb"]["worker"]["after"]
    print(f"ratios project / bare: started {ratio['start_rate']:.2f}x (target >= {TARGETS['start_rate']}x), "
          f"drain {ratio['drain_rate']:.2f}x (target >= {TARGETS['drain_rate']}x); worker RSS {worker_rss:.0f} MB "
          f"(target <= {TARGETS['worker_rss_mb']:.0f} MB at 10,000)")
    return {"bench": "disruption", "n": n, "concurrency": concurrency, "window_s": window, "database": database,
            "project": mine, "reference": ref, "ratio": ratio, "exactly_once": exactly_once}


async def main(n: int, concurrency: int, window: int | None, database_url: str | None, json_path: Path | None) -> None:
    window = window or default_window(n)
    # A window far beyond the airline's limit: every deadline is the push's action_time_limit.
    async with stack(database_url, AFTERSALES_RESCHEDULING_WINDOW="24h") as parts:
        mine = await project(parts, n, concurrency, window)
        ref = await reference(parts, n, concurrency, window)
        print(f"logs of the worker and the gateway: {parts.data}")
    write_figures(json_path, report(n, concurrency, window, database_url or "sqlite", mine, ref))


if __name__ == "__main__":
    parser = arguments(__doc__)
    parser.add_argument("-n", type=int, default=1000, help="products on the flight, and bare workflows")
    parser.add_argument("-c", "--concurrency", type=int, default=20, help="the bare workflows' starts at a time")
    parser.add_argument("--window", type=int, default=None,
                        help="seconds from the push to the shared deadline (default 30 + N/20)")
    args = parser.parse_args()
    run(main(args.n, args.concurrency, args.window, args.database_url, args.json))
