"""Reading a reservation over HTTP versus an aiohttp hello-world serving the same bytes.

Not a test: it prints figures. Usage:

    .venv/bin/python -m bench.reads [-c 20] [-d 10 | -r 50000] [--worker] [--database-url URL] [--json FILE]

It starts a Temporal dev server and the gateway as separate processes (the gateway's /healthz
needs Temporal; reads need no worker, so none runs unless --worker), books one sandbox
reservation (a flight and a hotel) as a partner, reads it once, then measures one after the other
with the same load client (bench/load.py, its own process) and the same C connections:
  * GET /v1/reservations/{id} with the partner's key, for D seconds (or R requests), and
  * an aiohttp hello-world (bench/hello.py, its own process) answering exactly the bytes the
    gateway answered, as application/json,
and, on PostgreSQL, a third:
  * bench/limit_reads.py, aiohttp + asyncpg doing the same key lookup and the same two statements
    on the same tables and answering the same bytes: what this read costs at the least, with a
    database (issue 21: reads at >= 0.5x of it),
and prints req/s, p50 and p99 of each, the ratios, and the CPU each server and the client used.
A PostgreSQL --database-url names the server: the bench runs on a throwaway database there.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import aiohttp

from bench.stack import (
    REPO,
    Stack,
    arguments,
    book,
    cpu_seconds,
    flight,
    free_port,
    new_partner,
    run,
    stack,
    wait_healthy,
    write_figures,
)

LOAD_SLACK_S = 60.0


def hotel() -> dict[str, Any]:
    return {"kind": "hotel", "hotel": "Hotel Lutetia", "check_in": "2030-03-20", "check_out": "2030-03-23",
            "price": {"amount": "600.00", "currency": "EUR"}, "vat_rate": "0.10",
            "cancellation_policy": {"mode": "manual"}}


async def load(url: str, headers: dict[str, str], connections: int, duration: float, requests: int | None,
               server_pid: int) -> dict[str, Any]:
    """Run bench/load.py against ``url`` and return its figures, with the CPU the server used meanwhile."""
    argv = [sys.executable, "-m", "bench.load", url, "-c", str(connections), "-d", str(duration)]
    if requests is not None:
        argv += ["-r", str(requests)]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    client = await asyncio.create_subprocess_exec(*argv, cwd=REPO, stdout=asyncio.subprocess.PIPE)
    assert client.stdout is not None
    # A count of requests has no known length: bounded by a generous rate floor of 50 req/s.
    bound = (duration if requests is None else requests / 50) + LOAD_SLACK_S
    try:
        async with asyncio.timeout(bound):
            # The server's CPU over the client's measured span: it says when that starts and ends.
            await expect(client.stdout, b"measuring")
            server_cpu = cpu_seconds(server_pid)
            await expect(client.stdout, b"measured")
            server_cpu = cpu_seconds(server_pid) - server_cpu
            out = await client.stdout.read()
            await client.wait()
    except TimeoutError:
        client.kill()
        raise SystemExit(f"the load client did not finish within {bound:.0f}s") from None
    figures: dict[str, Any] = json.loads(out)
    figures["server_cpu_percent"] = 100 * server_cpu / figures["seconds"]
    return figures


async def expect(stream: asyncio.StreamReader, word: bytes) -> None:
    said = (await stream.readline()).strip()
    if said != word:
        raise SystemExit(f"the load client said {said!r}, not {word!r}")

def line(name: str, figures: dict[str, Any]) -> None:
    print(f"{name:<30} {figures['requests']:>7} req  {figures['rate']:8.1f} req/s  p50 {figures['p50_ms']:6.2f} ms  "
          f"p99 {figures['p99_ms']:6.2f} ms  server CPU {figures['server_cpu_percent']:4.0f}%  "
          f"client CPU {figures['client_cpu_percent']:4.0f}%  answers {figures['statuses']} errors {figures['errors']}")


async def hello_world(parts: Stack, body: bytes) -> tuple[int, str]:
    """The reference server, its own process, answering ``body``; its pid and base URL once it answers."""
    (parts.data / "reservation.json").write_bytes(body)
    port = free_port()
    process = parts.start("hello", [sys.executable, "-m", "bench.hello", "--port", str(port),
                                    "--body", str(parts.data / "reservation.json")])
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        await wait_healthy(http, f"{base}/healthz")
    return process.pid, base


async def limit_server(parts: Stack, body: bytes) -> tuple[int, str]:
    """The PostgreSQL limit (bench/limit_reads.py), its own process, on the stack's database; its pid and base URL."""
    port = free_port()
    process = parts.start("limit", [sys.executable, "-m", "bench.limit_reads", "--port", str(port),
                                    "--body", str(parts.data / "reservation.json"), "--database-url", parts.database_url])
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        await wait_healthy(http, f"{base}/healthz")
    return process.pid, base


async def main(connections: int, duration: float, requests: int | None, worker: bool, database_url: str | None,
               json_path: Path | None) -> None:
    async with stack(database_url, worker=worker) as parts:
        async with aiohttp.ClientSession() as http:
            partner = await new_partner(http, parts.base)
            reservation_id = (await book(http, parts.base, partner, [flight(30), hotel()]))["reservation_id"]
            path = f"/v1/reservations/{reservation_id}"
            async with http.get(f"{parts.base}{path}", headers=partner) as r:
                if r.status != 200 or r.content_type != "application/json":
                    raise SystemExit(f"GET {path} answered {r.status} {r.content_type}")
                body = await r.read()

        project = await load(f"{parts.base}{path}", partner, connections, duration, requests, parts.gateway.pid)
        hello_pid, hello_base = await hello_world(parts, body)
        reference = await load(f"{hello_base}{path}", partner, connections, duration, requests, hello_pid)
        limit = None
        if parts.database_url.startswith("postgresql"):
            limit_pid, limit_base = await limit_server(parts, body)
            limit = await load(f"{limit_base}{path}", partner, connections, duration, requests, limit_pid)

    ratio = project["rate"] / reference["rate"]
    print(f"\nAftersales bench: reads, {connections} connections, "
          f"{f'{requests} requests' if requests else f'{duration:g} s'} each, body {len(body)} bytes, "
          f"worker {'running' if worker else 'not running'}, database={database_url or 'sqlite (data dir)'}")
    line("GET /v1/reservations/{id}", project)
    line("aiohttp hello-world", reference)
    if limit is not None:
        line("aiohttp + asyncpg, same work", limit)
    print(f"ratio reads / hello-world: {ratio:.3f}x")
    if limit is not None:
        print(f"ratio reads / aiohttp + asyncpg: {project['rate'] / limit['rate']:.3f}x")
    print(f"logs of the gateway: {parts.data}")
    write_figures(json_path, {
        "bench": "reads", "connections": connections, "duration": duration, "requests": requests,
        "body_bytes": len(body), "worker": worker, "database": database_url or "sqlite",
        "project": project, "reference": reference, "ratio": ratio,
        "limit": limit, "limit_ratio": None if limit is None else project["rate"] / limit["rate"],
    })


if __name__ == "__main__":
    parser = arguments(__doc__)
    parser.add_argument("-c", "--connections", type=int, default=20)
    parser.add_argument("-d", "--duration", type=float, default=10.0, help="seconds of each measurement")
    parser.add_argument("-r", "--requests", type=int, default=None, help="a count of requests instead of a duration")
    parser.add_argument("--worker", action="store_true", help="run the worker too (reads do not need it)")
    args = parser.parse_args()
    run(main(args.connections, args.duration, args.requests, args.worker, args.database_url, args.json))
