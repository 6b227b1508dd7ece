"""Another partner's answers while one partner floods the gateway, with request budgets and without.

Not a test: it prints figures. Usage:

    .venv/bin/python -m bench.noisy_partner [-d 20] [-c 20] [--pace 25] [--database-url URL] [--json FILE]

For each of two gateways, one with budgets out of reach (``AFTERSALES_RATE_LIMIT=100000/s``: what
the gateway did before it had any) and one with the default budget (``50/s,burst=100``), it starts
a Temporal dev server and the gateway as separate processes (reads need no worker), books one
reservation for each of two partners, then measures the quiet partner reading its reservation at
``--pace`` requests a second (an aiohttp client in this process):
  * alone, for D/2 seconds: its quiet p50 and p99;
  * for D seconds while the flooding partner reads its own reservation as fast as C keep-alive
    connections go (bench/load.py, its own process) and a client with a made-up key sends
    as fast as C/4 connections go (another bench/load.py): its p50 and p99 under the flood, every
    answer checked, and what the flood was answered.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.reads import hotel, load
from bench.stack import NO_BUDGET, arguments, book, flight, new_partner, percentile, run, stack, write_figures

DEFAULT_BUDGET = "50/s,burst=100"
# The load clients warm up this long before they measure; the quiet partner starts after it.
WARMUP_S = 1.0


async def paced_reads(http: aiohttp.ClientSession, url: str, headers: dict[str, str], expected: dict[str, Any],
                      pace: float, seconds: float) -> dict[str, Any]:
    """Read ``url`` every 1/pace seconds (each read on its own task, so a slow answer does not delay
    the next), for ``seconds``; latencies and statuses, and how many answers were not ``expected``."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    wrong = 0

    async def one() -> None:
        nonlocal wrong
        started = time.perf_counter()
        async with http.get(url, headers=headers) as response:
            body = await response.json(content_type=None)
            latencies.append(time.perf_counter() - started)
            statuses[response.status] = statuses.get(response.status, 0) + 1
            if response.status != 200 or body.get("reservation_id") != expected["reservation_id"] \
                    or body.get("products") != expected["products"]:
                wrong += 1

    tasks = []
    started = time.perf_counter()
    for i in range(int(pace * seconds)):
        await asyncio.sleep(max(0.0, started + i / pace - time.perf_counter()))
        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return {"requests": len(latencies), "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000, "max_ms": max(latencies) * 1000,
            "statuses": {str(k): v for k, v in sorted(statuses.items())}, "wrong": wrong}


async def one_gateway(budget: str, connections: int, duration: float, pace: float,
                      database_url: str | None) -> dict[str, Any]:
    async with stack(database_url, worker=False, AFTERSALES_RATE_LIMIT=budget) as parts:
        async with aiohttp.ClientSession() as http:
            flooder, quiet = await new_partner(http, parts.base), await new_partner(http, parts.base)
            flooded = await book(http, parts.base, flooder, [flight(30), hotel()])
            mine = await book(http, parts.base, quiet, [flight(30), hotel()])
            url = f"{parts.base}/v1/reservations/{mine['reservation_id']}"
            alone = await paced_reads(http, url, quiet, mine, pace, duration / 2)

            flood = asyncio.create_task(load(f"{parts.base}/v1/reservations/{flooded['reservation_id']}", flooder,
                                             connections, duration, None, parts.gateway.pid))
            made_up = {"Authorization": f"Bearer ask_{secrets.token_urlsafe(32)}"}
            strangers = asyncio.create_task(load(url, made_up, max(1, connections // 4), duration, None,
                                                 parts.gateway.pid))
            await asyncio.sleep(WARMUP_S + 0.5)
            under_flood = await paced_reads(http, url, quiet, mine, pace, duration - 1)
            flood_figures, stranger_figures = await asyncio.gather(flood, strangers)
    return {"budget": budget, "alone": alone, "under_flood": under_flood, "flood": flood_figures,
            "made_up_keys": stranger_figures}


def line(name: str, figures: dict[str, Any]) -> None:
    print(f"  {name:<30} {figures['requests']:>6} req  p50 {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:8.2f} ms"
          f"  max {figures['max_ms']:8.2f} ms  answers {figures['statuses']}  wrong {figures['wrong']}")


def flood_line(name: str, figures: dict[str, Any]) -> None:
    print(f"  {name:<30} {figures['requests']:>6} req  {figures['rate']:8.1f} req/s  answers {figures['statuses']}"
          f"  gateway CPU {figures['server_cpu_percent']:4.0f}%")


async def main(connections: int, duration: float, pace: float, database_url: str | None, json_path: Path | None) -> None:
    runs = [await one_gateway(budget, connections, duration, pace, database_url) for budget in (NO_BUDGET, DEFAULT_BUDGET)]
    print(f"\nAftersales bench: the quiet partner reads its reservation at {pace:g}/s while another floods "
          f"({connections} connections) and a made-up key floods ({max(1, connections // 4)}), {duration:g} s; "
          f"database={database_url or 'sqlite (data dir)'}")
    for figures in runs:
        print(f"AFTERSALES_RATE_LIMIT={figures['budget']}")
        line("quiet partner, alone", figures["alone"])
        line("quiet partner, under the flood", figures["under_flood"])
        flood_line("flooding partner", figures["flood"])
        flood_line("made-up key", figures["made_up_keys"])
    write_figures(json_path, {"bench": "noisy_partner", "connections": connections, "duration": duration,
                              "pace": pace, "database": database_url or "sqlite", "runs": runs})
    if any(figures["alone"]["wrong"] or figures["under_flood"]["wrong"] for figures in runs):
        print("the quiet partner got a wrong answer", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    parser = arguments(__doc__)
    parser.add_argument("-c", "--connections", type=int, default=20, help="the flooding partner's connections")
    parser.add_argument("-d", "--duration", type=float, default=20.0, help="seconds of flood")
    parser.add_argument("--pace", type=float, default=25.0, help="the quiet partner's reads a second")
    args = parser.parse_args()
    run(main(args.connections, args.duration, args.pace, args.database_url, args.json))
