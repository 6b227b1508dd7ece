"""What the gateway's gauge of parked flows (``aftersales_flows_record_refused``) adds to a scrape: its
count over the flows, of which a handful are parked on a refused record (docs/operations.md#a-refused-record).

Not a test: it prints figures. Usage:

    .venv/bin/python -m bench.parked [-n 50000] [-p 3] [-r 100]

It opens a throwaway SQLite database in a temporary folder, migrates it, inserts N finished flows
rows (P of them marked parked), and times R runs of the gauge's count (through the partial index
``ix_flows_record_refused``) next to the count by kind and status every scrape already makes; it
prints SQLite's plan of the gauge's count too.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from store.repositories import open_store
from store.schema import flows

PARKED = sa.select(flows.c.kind, sa.func.count()).where(flows.c.record_refused_at.is_not(None)).group_by(flows.c.kind)
BY_STATUS = sa.select(flows.c.kind, flows.c.status, sa.func.count()).group_by(flows.c.kind, flows.c.status)


def _rows(count: int, parked: int) -> list[dict[str, Any]]:
    now = datetime.now(timezone.utc)
    every = max(1, count // max(parked, 1))
    return [{"code": f"CAN-{n:08d}", "kind": "cancellation", "product_id": f"prd_{n}", "reservation_id": f"res_{n}",
             "partner_id": "ptn_bench", "status": "cancelled", "info": {}, "created_at": now, "updated_at": now,
             "version": 2, "record_refused": "DataError: bench" if parked and n % every == 0 and n // every < parked else None,
             "record_refused_at": now if parked and n % every == 0 and n // every < parked else None}
            for n in range(count)]


async def _ms_per_run(conn: Any, query: sa.Select[Any], runs: int) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        (await conn.execute(query)).all()
    return (time.perf_counter() - started) / runs * 1000


async def main(count: int, parked: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        store = await open_store(f"sqlite+aiosqlite:///{folder}/bench.db")
        try:
            async with store.engine.begin() as conn:
                await conn.execute(flows.insert(), _rows(count, parked))
            async with store.engine.connect() as conn:
                literal = str(PARKED.compile(store.engine, compile_kwargs={"literal_binds": True}))
                plan = [row[-1] for row in (await conn.execute(sa.text(f"EXPLAIN QUERY PLAN {literal}"))).all()]
                found = (await conn.execute(PARKED)).all()
                print(f"{count} flows, {parked} parked: the gauge counts {dict((k, v) for k, v in found)}; plan {plan}")
                print(f"gauge's count: {await _ms_per_run(conn, PARKED, runs):.3f} ms per run "
                      f"(the count by kind and status: {await _ms_per_run(conn, BY_STATUS, max(1, runs // 10)):.3f} ms)")
        finally:
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=50_000)
    parser.add_argument("-p", type=int, default=3)
    parser.add_argument("-r", type=int, default=100)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.n, arguments.p, arguments.r))
