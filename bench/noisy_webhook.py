"""Another partner's flows and webhook deliveries while one partner's webhook hangs and it floods redeliveries.

Not a test: it prints figures (tests/api/test_noisy_partner.py checks the outcomes). Usage:

    .venv/bin/python -m bench.noisy_webhook [-n 40] [-c 8] [--noisy 60] [--redeliveries 150]
                                            [--database-url URL] [--json FILE]

Three runs, each on a stack of its own (Temporal dev server, worker and gateway as separate processes,
webhook receivers in this process):
  * alone: the quiet partner runs N automatic cancellations, C at a time, its webhook answering 204;
  * noisy: first another partner runs --noisy automatic cancellations whose webhook never answers (each
    attempt times out after 10 s), then, while the quiet partner runs its N, asks --redeliveries times
    for one of its events to be delivered again;
  * noisy, unbounded: the same with AFTERSALES_WEBHOOK_RECEIVER_CONCURRENCY=1000, i.e. without the
    per-receiver bound (what a worker did before it had one; redeliveries still coalesce).
For each: the quiet partner's cancellation latency (its POST, sync answer) and how many answered 200
(the rest 202, past the sync wait), and the delivery latency of its ``cancellation.completed`` events
(from the event's ``created_at`` to its arrival at the webhook; ``refund.posted`` goes through the outbox
dispatcher's 5 s sweep, so it is left out); and what reached the hanging webhook.

Then two more stacks (unless --burst 0): a partner stores --burst cancellations' events without a webhook,
then sets one that answers in 50 ms; the outbox dispatcher starts their deliveries (100 a sweep) and
the figure is how long until all have arrived, with the per-receiver bound and without.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bench.stack import ADMIN, arguments, book, flight, percentile, run, stack, write_figures

DELIVERED_WITHIN_S = 120.0
BURST_ANSWER_S = 0.05  # how long the burst's receiver takes to answer


class Webhook:
    """A webhook on 127.0.0.1: answers 204 (after ``answer_in_s``) and notes each event's arrival, or
    (hanging) never answers."""

    def __init__(self, hanging: bool, answer_in_s: float = 0.0) -> None:
        self.hanging = hanging
        self.answer_in_s = answer_in_s
        self.last_arrival = 0.0
        self.arrived: dict[str, float] = {}  # event id -> arrival (time.time()), first arrival
        self.requests: Counter[str] = Counter()
        self.in_flight = 0
        self.most_in_flight = 0
        self._release = asyncio.Event()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def __aenter__(self) -> Webhook:
        app = web.Application()
        app.router.add_post("/hooks", self._receive)
        self._runner = web.AppRunner(app, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/hooks"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._release.set()
        assert self._runner is not None
        await self._runner.cleanup()

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.arrived.setdefault(body["id"], time.time())
        self.last_arrival = time.time()
        self.requests[body["id"]] += 1
        async with self._changed:
            self._changed.notify_all()
        if not self.hanging:
            await asyncio.sleep(self.answer_in_s)  # the receiver's own work
            return web.Response(status=204)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await self._release.wait()
        finally:
            self.in_flight -= 1
        return web.Response(status=503)

    async def until(self, event_ids: set[str]) -> None:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: event_ids <= self.arrived.keys()), DELIVERED_WITHIN_S)


async def partner_with(http: aiohttp.ClientSession, base: str, name: str, webhook: str) -> dict[str, str]:
    async with http.post(f"{base}/v1/admin/partners", json={"name": name, "webhook_url": webhook}, headers=ADMIN) as r:
        r.raise_for_status()
        return {"Authorization": f"Bearer {(await r.json())['api_key']}"}


async def cancellations(http: aiohttp.ClientSession, base: str, partner: dict[str, str], n: int,
                        concurrency: int) -> tuple[list[float], Counter[int]]:
    """N automatic cancellations (quote, then cancel), C at a time: each POST's latency, and the statuses."""
    products = [(await book(http, base, partner, [flight(30)]))["products"][0]["product_id"] for _ in range(n)]
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    statuses: Counter[int] = Counter()

    async def one(product_id: str) -> None:
        async with gate:
            async with http.post(f"{base}/v1/products/{product_id}/cancellation-quotes", json={}, headers=partner) as r:
                quote = await r.json()
            started = time.perf_counter()
            async with http.post(f"{base}/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                                 headers=partner) as r:
                await r.read()
                latencies.append(time.perf_counter() - started)
                statuses[r.status] += 1

    await asyncio.gather(*(one(p) for p in products))
    return latencies, statuses


async def events_of(http: aiohttp.ClientSession, base: str, partner: dict[str, str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = ""
    while True:
        async with http.get(f"{base}/v1/events?limit=200{cursor}", headers=partner) as r:
            page = await r.json()
        found += page["items"]
        if page["next"] is None:
            return found
        cursor = f"&cursor={page['next']}"


async def one_run(name: str, n: int, concurrency: int, noisy_flows: int, redeliveries: int,
                  database_url: str | None, **settings: str) -> dict[str, Any]:
    async with stack(database_url, **settings) as parts, Webhook(hanging=False) as quiet_hook, \
            Webhook(hanging=True) as hanging_hook, aiohttp.ClientSession() as http:
        base = parts.base
        quiet = await partner_with(http, base, "Quiet", quiet_hook.url)
        flood: asyncio.Task[Counter[str]] | None = None
        flooded = None
        if noisy_flows:
            noisy = await partner_with(http, base, "Noisy", hanging_hook.url)
            await cancellations(http, base, noisy, noisy_flows, concurrency)
            flooded = next(e["id"] for e in await events_of(http, base, noisy) if e["type"] == "cancellation.completed")

            async def redeliver_all() -> Counter[str]:
                gate = asyncio.Semaphore(25)
                outcomes: Counter[str] = Counter()

                async def one() -> None:
                    async with gate, http.post(f"{base}/v1/events/{flooded}/redeliver", headers=noisy) as r:
                        outcomes[(await r.json()).get("redelivery", str(r.status))] += 1

                await asyncio.gather(*(one() for _ in range(redeliveries)))
                return outcomes

            flood = asyncio.create_task(redeliver_all())
        latencies, statuses = await cancellations(http, base, quiet, n, concurrency)
        outcomes = await flood if flood is not None else Counter()
        completed = [e for e in await events_of(http, base, quiet) if e["type"] == "cancellation.completed"]
        await quiet_hook.until({e["id"] for e in completed})
        delivery = [quiet_hook.arrived[e["id"]] - datetime.fromisoformat(e["created_at"]).timestamp() for e in completed]
        figures = {
            "run": name, "settings": settings,
            "cancellations": {"count": n, "p50_ms": percentile(latencies, 50) * 1000,
                              "p99_ms": percentile(latencies, 99) * 1000, "statuses": dict(statuses)},
            "deliveries": {"count": len(delivery), "p50_ms": percentile(delivery, 50) * 1000,
                           "p99_ms": percentile(delivery, 99) * 1000},
            "hanging_webhook": {"most_in_flight": hanging_hook.most_in_flight,
                                "requests": sum(hanging_hook.requests.values()),
                                "requests_for_flooded_event": hanging_hook.requests[flooded] if flooded else 0,
                                "redeliver_answers": dict(outcomes)},
        }
    c, d, h = figures["cancellations"], figures["deliveries"], figures["hanging_webhook"]
    print(f"{name:<20} cancellations p50 {c['p50_ms']:7.0f} ms  p99 {c['p99_ms']:7.0f} ms  answers {c['statuses']}"
          f"  | deliveries p50 {d['p50_ms']:7.0f} ms  p99 {d['p99_ms']:7.0f} ms"
          f"  | hanging webhook: {h['most_in_flight']} in flight at most, {h['requests']} requests"
          f" ({h['requests_for_flooded_event']} for the flooded event), redeliver answers {h['redeliver_answers']}",
          flush=True)
    return figures


async def burst_run(name: str, flows: int, concurrency: int, answer_in_s: float, database_url: str | None,
                    **settings: str) -> dict[str, Any]:
    """A partner stores ``flows`` cancellations' events without a webhook, then sets one that answers in
    ``answer_in_s``: how long until the outbox dispatcher's burst has all arrived."""
    async with stack(database_url, **settings) as parts, Webhook(hanging=False, answer_in_s=answer_in_s) as hook, \
            aiohttp.ClientSession() as http:
        base = parts.base
        async with http.post(f"{base}/v1/admin/partners", json={"name": "Late"}, headers=ADMIN) as r:
            partner = {"Authorization": f"Bearer {(await r.json())['api_key']}"}
        await cancellations(http, base, partner, flows, concurrency)
        stored = {e["id"] for e in await events_of(http, base, partner)}
        started = time.time()
        async with http.put(f"{base}/v1/partner/webhook", json={"url": hook.url}, headers=partner) as r:
            r.raise_for_status()
        await hook.until(stored)
        figures = {"run": name, "settings": settings, "events": len(stored), "answer_in_ms": answer_in_s * 1000,
                   "all_arrived_s": hook.last_arrival - started,
                   "first_to_last_s": hook.last_arrival - min(hook.arrived.values()),
                   "requests": sum(hook.requests.values())}
    print(f"{name:<20} {figures['events']} events stored without a webhook, receiver answering in "
          f"{answer_in_s * 1000:.0f} ms: all arrived {figures['all_arrived_s']:.1f} s after the webhook was set "
          f"(the dispatcher sweeps every 5 s), {figures['first_to_last_s']:.1f} s from the first to the last; "
          f"{figures['requests']} requests", flush=True)
    return figures


async def main(n: int, concurrency: int, noisy_flows: int, redeliveries: int, burst: int, database_url: str | None,
               json_path: Path | None) -> None:
    print(f"Aftersales bench: the quiet partner's {n} automatic cancellations, {concurrency} at a time; noisy partner: "
          f"{noisy_flows} cancellations to a webhook that never answers, {redeliveries} redeliver calls; "
          f"database={database_url or 'sqlite (data dir)'}; load average {os.getloadavg()[0]:.1f}", flush=True)
    runs = [
        await one_run("alone", n, concurrency, 0, 0, database_url),
        await one_run("noisy", n, concurrency, noisy_flows, redeliveries, database_url),
        await one_run("noisy, unbounded", n, concurrency, noisy_flows, redeliveries, database_url,
                      AFTERSALES_WEBHOOK_RECEIVER_CONCURRENCY="1000"),
    ]
    bursts = [
        await burst_run("burst", burst, concurrency, BURST_ANSWER_S, database_url),
        await burst_run("burst, unbounded", burst, concurrency, BURST_ANSWER_S, database_url,
                        AFTERSALES_WEBHOOK_RECEIVER_CONCURRENCY="1000"),
    ] if burst else []
    write_figures(json_path, {"bench": "noisy_webhook", "n": n, "concurrency": concurrency, "noisy_flows": noisy_flows,
                              "redeliveries": redeliveries, "database": database_url or "sqlite", "runs": runs,
                              "bursts": bursts})


if __name__ == "__main__":
    parser = arguments(__doc__)
    parser.add_argument("-n", type=int, default=40, help="the quiet partner's cancellations")
    parser.add_argument("-c", "--concurrency", type=int, default=8, help="cancellations at a time")
    parser.add_argument("--noisy", type=int, default=60, help="the noisy partner's cancellations (two events each)")
    parser.add_argument("--redeliveries", type=int, default=150, help="redeliver calls on one of its events")
    parser.add_argument("--burst", type=int, default=50,
                        help="cancellations (two events each) stored before their partner sets a webhook; 0: no burst run")
    args = parser.parse_args()
    run(main(args.n, args.concurrency, args.noisy, args.redeliveries, args.burst, args.database_url, args.json))
