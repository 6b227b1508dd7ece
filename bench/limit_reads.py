"""The second reference of bench/reads.py on PostgreSQL: the least a server can do for the same read.

Plain aiohttp and asyncpg, no ORM, no middleware, no access log. For every request it does the
gateway's work on the database: it finds the caller's key by its hash (kept in memory once found
valid, as the gateway keeps it), runs the gateway's own two statements (the reservation with its
products, then its flows: the SQL text is compiled from store/reservation_records.py, so the
database does exactly the same work), checks that the reservation is the caller's, and answers the
bytes the gateway answered. What it leaves out is the rest of the gateway: SQLAlchemy's per-statement
work, the middleware chain, rendering and the request log line. Usage:

    .venv/bin/python -m bench.limit_reads --port PORT --body FILE --database-url postgresql+asyncpg://…
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

import asyncpg
from aiohttp import web

from store.reservation_records import _RESERVATION_FLOWS, _RESERVATION_WITH_PRODUCTS
from store.schema import api_keys

POOL = 20  # as many connections as the load client has, so none waits for one


# The SQL the gateway's driver runs ($1 for its one parameter), as store/ compiled it.
RESERVATION = _RESERVATION_WITH_PRODUCTS.sql
FLOWS = _RESERVATION_FLOWS.sql
KEY = f"SELECT principal_id, revoked_at FROM {api_keys.name} WHERE key_hash = $1"


def app(body: bytes, dsn: str) -> web.Application:
    known: dict[str, str] = {}

    async def open_pool(served: web.Application) -> None:
        served["pool"] = await asyncpg.create_pool(dsn, min_size=POOL, max_size=POOL)

    async def close_pool(served: web.Application) -> None:
        await served["pool"].close()

    async def answer(request: web.Request) -> web.Response:
        pool: asyncpg.Pool = request.app["pool"]
        key_hash = hashlib.sha256(request.headers.get("Authorization", "").removeprefix("Bearer ").encode()).hexdigest()
        partner_id = known.get(key_hash)
        if partner_id is None:
            row = await pool.fetchrow(KEY, key_hash)
            if row is None or row["revoked_at"] is not None:
                raise web.HTTPUnauthorized()
            partner_id = known[key_hash] = row["principal_id"]
        reservation_id = request.match_info["reservation_id"]
        async with pool.acquire() as conn:
            products = await conn.fetch(RESERVATION, reservation_id)
            if not products or products[0]["partner_id"] != partner_id:
                raise web.HTTPNotFound()
            await conn.fetch(FLOWS, reservation_id)
        return web.Response(body=body, content_type="application/json")

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    served = web.Application()
    served.on_startup.append(open_pool)
    served.on_cleanup.append(close_pool)
    served.router.add_get("/healthz", healthz)
    served.router.add_get("/v1/reservations/{reservation_id}", answer)
    return served


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--body", type=Path, required=True)
    parser.add_argument("--database-url", required=True)
    args = parser.parse_args()
    dsn = args.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
    web.run_app(app(args.body.read_bytes(), dsn), host="127.0.0.1", port=args.port, access_log=None, print=None)
