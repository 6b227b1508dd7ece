"""The pull feed under concurrent writers, on SQLite and PostgreSQL (docs/triggers.md#the-feeds-order): a
follower paging with ``after=<last id>`` while 32 writers record cancellations sees every event exactly
once, in one stable order that keeps each writer's own order.

The writers record what a cancellation's workflow records when it ends (``cancellation.completed`` and the
``refund.posted`` of the refund it posts, in one transaction that waits for the refund counters' lock):
the transaction in which PostgreSQL draws an event's ``seq`` early and commits it late.
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import defaultdict

import sqlalchemy as sa

from domain.codes import FlowKind, new_flow_code
from store.repositories import Store, open_store
from store.schema import events
from tests.store.test_settlement_store import cancelled, spec

WRITERS = 32
FLOWS_PER_WRITER = 3
EVENTS_PER_FLOW = 2  # cancellation.completed, refund.posted
PAGE = 7  # small pages: the follower asks often, and its cursor lands between a flow's two events
BOUND_S = 60
RNG = secrets.SystemRandom()


async def test_a_follower_sees_every_event_once_in_a_stable_order_while_writers_record(
    store: Store, database_url: str
) -> None:
    partner, _ = await store.accounts.create_partner("Follower", None)
    writers: list[list[tuple[str, str, str]]] = []  # per writer: (flow code, reservation, product) in its order
    for _ in range(WRITERS):
        reservation_id = await store.reservations.create(
            partner.partner_id, spec(*["240.00"] * FLOWS_PER_WRITER), random.Random()
        )
        products = [p.product_id for p in await store.reservations.products_of(reservation_id)]
        writers.append([(new_flow_code(FlowKind.CANCELLATION, RNG), reservation_id, p) for p in products])
    expected = WRITERS * FLOWS_PER_WRITER * EVENTS_PER_FLOW

    async def write(flows: list[tuple[str, str, str]]) -> None:
        for code, reservation_id, product_id in flows:  # one after another, as one workflow's transitions
            await store.flows.record_flow(cancelled(code, partner.partner_id, reservation_id, product_id))

    # The follower is another process (the gateway): an engine of its own.
    follower = await open_store(database_url)
    seen: list[str] = []

    async def follow() -> None:
        after: str | None = None
        while len(seen) < expected:
            page = await follower.events.feed(partner.partner_id, after, PAGE)
            seen.extend(item["id"] for item in page)
            if page:
                after = page[-1]["id"]

    try:
        following = asyncio.create_task(follow())
        await asyncio.gather(*(write(flows) for flows in writers))
        await asyncio.wait_for(following, BOUND_S)
        assert await follower.events.feed(partner.partner_id, seen[-1], PAGE) == []  # nothing more, nothing again
        reread = [item["id"] for item in await follower.events.feed(partner.partner_id, None, expected + 1)]
    finally:
        await follower.close()

    async with store.engine.connect() as conn:
        stored = (await conn.execute(
            sa.select(events.c.event_id, events.c.flow_code, events.c.type).where(events.c.partner_id == partner.partner_id)
        )).all()
    assert len(stored) == expected
    assert len(seen) == len(set(seen)) == expected  # none twice
    assert set(seen) == {row.event_id for row in stored}  # none skipped
    assert reread == seen  # the order a follower saw is the feed's order, not a moment's

    flow_of = {row.event_id: row.flow_code for row in stored}
    type_of = {row.event_id: row.type for row in stored}
    by_flow: dict[str, list[str]] = defaultdict(list)
    for event_id in seen:
        by_flow[flow_of[event_id]].append(type_of[event_id])
    assert all(types == ["cancellation.completed", "refund.posted"] for types in by_flow.values())
    position = {flow_of[event_id]: index for index, event_id in enumerate(seen)}
    for flows in writers:  # each writer's flows in the order it recorded them
        codes = [code for code, _, _ in flows]
        assert sorted(codes, key=position.__getitem__) == codes
