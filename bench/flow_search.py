"""Finding flows among 100,000: how long the agents' search and the partners' list take per kind of query.

Not a test: it prints figures. Usage:

    .venv/bin/python -m bench.flow_search [-n 100000] [-r 200] [--database-url URL] [--json FILE]

It opens a throwaway database (SQLite in a temporary folder, or a fresh database on the PostgreSQL
server --database-url names), migrates it, and loads N flows with their reservations, products,
partners and search terms in bulk (the terms computed by the function the running code writes them
with). 200 partners share the flows unevenly (the largest has about a fifth), each reservation has
one to three travellers with made-up names, the flows were made over a year (stored oldest first,
as they arrive), about 3 % of them wait for someone (a deadline in the next three days) and the
rest are finished. It then indexes 1,000 more flows one by one through the real write path
(``FlowIndex.index``: the index row and its terms in one transaction), each next to a flow whose
row alone is inserted (what indexing cost before the terms), and times R searches of each kind
through the store (``FlowSearch``, what ``GET /v1/agent/flows`` and ``GET /v1/flows`` call; HTTP
adds the same few milliseconds to every kind), printing p50 and p99.
On PostgreSQL the tables are vacuumed and analysed after the bulk load, as autovacuum would soon.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.stack import arguments, percentile, run, throwaway_database, write_figures
from domain.codes import FlowKind, new_flow_code
from domain.flow_info import FlowRecord
from store.db import insert_once
from store.flow_search import FlowFilter, ListPosition, flow_terms, query_words
from store.repositories import Store, open_store
from store.schema import flow_search, flows, partners, products, reservations

KINDS = [(FlowKind.CANCELLATION, 50), (FlowKind.CHANGE, 20), (FlowKind.RESCHEDULING, 15), (FlowKind.SPECIAL_REQUEST, 15)]
FINISHED = {FlowKind.CANCELLATION: ["cancelled", "rejected", "expired", "no_response"],
            FlowKind.CHANGE: ["modified", "expired"], FlowKind.RESCHEDULING: ["accepted", "auto_accepted"],
            FlowKind.SPECIAL_REQUEST: ["confirmed", "declined"]}
WAITING = ["awaiting_agent_quote", "awaiting_partner_decision"]
PARTNERS = 200
BATCH = 2_000
SYLLABLES = ["an", "bel", "car", "da", "el", "fer", "gon", "ha", "is", "jo", "ka", "lu", "mar", "ni", "o", "pe",
             "qui", "ro", "sa", "ti", "u", "vi", "wen", "xa", "yo", "ze"]


def made_up_name(rng: random.Random, syllables: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(syllables)).capitalize()


class Population:
    """Made-up partners and names, drawn the same way each run (seeded)."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.partner_names = [f"{made_up_name(rng, 2)} {rng.choice(['Travel', 'Tours', 'Voyages', 'Reisen'])}"
                              for _ in range(PARTNERS)]
        self.partner_ids = [f"ptn_{i:016x}" for i in range(PARTNERS)]
        # A few partners hold most flows, as in a real agency network.
        self.partner_weights = [1 / (i + 1) for i in range(PARTNERS)]
        self.first_names = [made_up_name(rng, 2) for _ in range(300)]
        self.last_names = [made_up_name(rng, 3) for _ in range(3_000)]

    def travellers(self) -> list[dict[str, str]]:
        return [{"traveller_id": f"T{i + 1}", "name": f"{self.rng.choice(self.first_names)} {self.rng.choice(self.last_names)}"}
                for i in range(self.rng.choice([1, 1, 2, 2, 3]))]

    def partner(self) -> int:
        return self.rng.choices(range(PARTNERS), self.partner_weights)[0]


async def load(store: Store, people: Population, n: int, now: datetime) -> list[dict[str, Any]]:
    """N flows with their reservations, products and terms, in bulk; the flows as loaded."""
    rng = people.rng
    async with store.engine.begin() as conn:
        await conn.execute(partners.insert(), [
            {"partner_id": pid, "name": name, "webhook_secret": "whsec_bench", "created_at": now}
            for pid, name in zip(people.partner_ids, people.partner_names, strict=True)])
    loaded: list[dict[str, Any]] = []
    for start in range(0, n, BATCH):
        batch_reservations, batch_products, batch_flows, batch_terms = [], [], [], []
        for i in range(start, min(start + BATCH, n)):
            owner = people.partner()
            kind = rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0]
            code = new_flow_code(kind, rng)
            reservation_id, product_id = f"RES-{i:010d}", f"PRD-{i:010d}"
            travellers = people.travellers()
            created = now - timedelta(days=365) * (1 - i / n)  # loaded as they arrive: oldest first
            waiting = kind == FlowKind.CANCELLATION and rng.random() < 0.06
            status = rng.choice(WAITING) if waiting else rng.choice(FINISHED[kind])
            deadline = now + timedelta(seconds=rng.uniform(0, 3 * 86_400)) if waiting else None
            batch_reservations.append({"reservation_id": reservation_id, "partner_id": people.partner_ids[owner],
                                       "status": "confirmed", "travellers": travellers, "created_at": created})
            batch_products.append({"product_id": product_id, "reservation_id": reservation_id, "position": 0,
                                   "kind": rng.choice(["flight", "hotel", "other"]), "status": "confirmed",
                                   "start_at": created + timedelta(days=30), "end_at": created + timedelta(days=33),
                                   "details": {}, "updated_at": created})
            batch_flows.append({"code": code, "kind": str(kind), "product_id": product_id, "reservation_id": reservation_id,
                                "partner_id": people.partner_ids[owner], "status": status, "info": {"code": code},
                                "created_at": created, "updated_at": created, "version": 1, "deadline": deadline})
            terms = flow_terms(code, reservation_id, product_id, people.partner_names[owner], [t["name"] for t in travellers])
            batch_terms += [{"term": term, "code": code} for term in terms]
            loaded.append({"code": code, "reservation_id": reservation_id, "product_id": product_id, "owner": owner,
                           "traveller": travellers[0]["name"]})
        async with store.engine.begin() as conn:
            await conn.execute(reservations.insert(), batch_reservations)
            await conn.execute(products.insert(), batch_products)
            await conn.execute(flows.insert(), batch_flows)
            await conn.execute(flow_search.insert(), batch_terms)
    if store.engine.dialect.name == "postgresql":
        async with store.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            for table in ("partners", "reservations", "products", "flows", "flow_search"):
                await conn.execute(sa.text(f"VACUUM ANALYZE {table}"))
    return loaded


async def index_one_by_one(store: Store, people: Population, count: int, now: datetime) -> dict[str, list[float]]:
    """``count`` more flows through FlowIndex.index (the index row and its terms in one transaction), each
    after a flow whose row alone is inserted the same way (what indexing cost before the terms): each one's seconds."""
    rng = people.rng
    async with store.engine.begin() as conn:
        await conn.execute(reservations.insert(), [
            {"reservation_id": f"RES-W{i:09d}", "partner_id": people.partner_ids[people.partner()], "status": "confirmed",
             "travellers": people.travellers(), "created_at": now} for i in range(count)])
    took: dict[str, list[float]] = {"with terms": [], "row alone": []}
    for i in range(count):
        code = new_flow_code(FlowKind.RESCHEDULING, rng)
        record = FlowRecord(code=code, kind=FlowKind.RESCHEDULING, product_id=f"PRD-W{i:09d}", reservation_id=f"RES-W{i:09d}",
                            partner_id=people.partner_ids[people.partner()], status="waiting_for_product", terminal=False,
                            info={"code": code}, at=now)
        started = time.perf_counter()
        await store.flows.index(record, {})
        took["with terms"].append(time.perf_counter() - started)
        bare = new_flow_code(FlowKind.RESCHEDULING, rng)
        started = time.perf_counter()
        async with store.engine.begin() as conn:
            await insert_once(conn, flows, {"code": bare, "kind": "rescheduling", "product_id": f"PRD-B{i:09d}",
                                            "reservation_id": f"RES-W{i:09d}", "partner_id": record.partner_id,
                                            "status": "waiting_for_product", "info": {"code": bare}, "created_at": now,
                                            "updated_at": now, "version": 1, "start_input": {}, "opened_by": None,
                                            "deadline": None})
        took["row alone"].append(time.perf_counter() - started)
    return took


Search = Callable[[], Awaitable[Any]]


async def timed(runs: int, search: Callable[[int], Search]) -> dict[str, float]:
    took = []
    for i in range(runs):
        one = search(i)
        started = time.perf_counter()
        await one()
        took.append(time.perf_counter() - started)
    return {"p50_ms": percentile(took, 50) * 1000, "p99_ms": percentile(took, 99) * 1000}


async def measure(database_url: str | None, n: int, runs: int) -> dict[str, Any]:
    rng = random.Random(23)
    with tempfile.TemporaryDirectory() as folder:
        async with throwaway_database(database_url or f"sqlite+aiosqlite:///{Path(folder) / 'flows.db'}") as url:
            assert url is not None
            store = await open_store(url)
            try:
                now = datetime.now(timezone.utc)
                people = Population(rng)
                started = time.perf_counter()
                loaded = await load(store, people, n, now)
                print(f"loaded {n:,} flows in {time.perf_counter() - started:.0f} s ({store.engine.dialect.name})")
                writes = await index_one_by_one(store, people, 1_000, now)
                figures: dict[str, Any] = {
                    "database": store.engine.dialect.name, "flows": n, "runs": runs, "queries": {},
                    "indexing": {how: {"p50_ms": percentile(took, 50) * 1000, "p99_ms": percentile(took, 99) * 1000}
                                 for how, took in writes.items()},
                }
                search = store.flow_search

                def agents(words: str = "", limit: int = 50, **narrow: Any) -> Search:
                    where = FlowFilter(words=query_words(words), **narrow)
                    return lambda: search.agents_page(where, limit, None)

                def pick(i: int) -> dict[str, Any]:
                    return loaded[(i * 7919) % len(loaded)]

                biggest = people.partner_names[0].split()[0]
                deep: dict[str, ListPosition | None] = {}

                async def second_page(words: str) -> None:
                    _, end = await search.agents_page(FlowFilter(words=query_words(words)), 50, None)
                    deep[words] = end

                kinds: dict[str, Callable[[int], Search]] = {
                    "code": lambda i: agents(pick(i)["code"]),
                    "code, 4 characters after the prefix": lambda i: agents(pick(i)["code"].split("-")[1][:4]),
                    "reservation id": lambda i: agents(pick(i)["reservation_id"].lower()),
                    "product id": lambda i: agents(pick(i)["product_id"]),
                    "traveller, full name": lambda i: agents(pick(i)["traveller"]),
                    "traveller, 3 letters of the last name": lambda i: agents(pick(i)["traveller"].split()[1][:3]),
                    "partner name, the largest partner (~20 % of flows)": lambda i: agents(biggest),
                    "partner name, a small partner": lambda i: agents(people.partner_names[100 + i % 100].split()[0]),
                    "one letter (matches most flows)": lambda i: agents("abcdefghijklmnopqrstuvwxyz"[i % 26]),
                    "largest partner + traveller first name": lambda i: agents(f"{biggest} {pick(i)['traveller'].split()[0]}"),
                    "no words, status awaiting_agent_quote": lambda i: agents(status="awaiting_agent_quote"),
                    "no words, kind rescheduling": lambda i: agents(kind="rescheduling"),
                    "no words, one small partner": lambda i: agents(partner_id=people.partner_ids[100 + i % 100]),
                    "no words, due in the next 24 h": lambda i: agents(deadline_before=now + timedelta(hours=24)),
                    "no words, one product (the console's other flows)": lambda i: agents(product_id=pick(i)["product_id"]),
                    "partner's own list, largest partner, newest first": lambda i: (
                        lambda: search.partners_page(people.partner_ids[0], FlowFilter(), 50, None)),
                    "partner's own list, one reservation": lambda i: (
                        lambda: search.partners_page(people.partner_ids[pick(i)["owner"]],
                                                     FlowFilter(reservation_id=pick(i)["reservation_id"]), 50, None)),
                }
                for name, make in kinds.items():
                    figures["queries"][name] = await timed(runs, make)
                await second_page(biggest)
                end = deep[biggest]
                figures["queries"]["largest partner, second page (cursor)"] = await timed(
                    runs, lambda i: lambda: search.agents_page(FlowFilter(words=query_words(biggest)), 50, end))
            finally:
                await store.close()
    return figures


def report(figures: dict[str, Any]) -> None:
    print(f"\n{figures['flows']:,} flows on {figures['database']}, {figures['runs']} runs of each query (page of 50):")
    print(f"  {'query':<56} {'p50':>9} {'p99':>9}")
    for name, f in figures["queries"].items():
        print(f"  {name:<56} {f['p50_ms']:7.2f} ms {f['p99_ms']:7.2f} ms")
    for how, w in figures["indexing"].items():
        print(f"  {'indexing one flow, ' + how:<56} {w['p50_ms']:7.2f} ms {w['p99_ms']:7.2f} ms")


async def main() -> None:
    parser = arguments(__doc__ or "")
    parser.add_argument("-n", type=int, default=100_000, help="flows to load (default 100,000)")
    parser.add_argument("-r", "--runs", type=int, default=200, help="searches of each kind (default 200)")
    options = parser.parse_args()
    figures = await measure(options.database_url, options.n, options.runs)
    report(figures)
    write_figures(options.json, figures)


if __name__ == "__main__":
    run(main())
