"""The store on SQLite and PostgreSQL: migrations, the product lock, the outbox write."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from domain.cancellation_flow import CancellationInfo
from domain.codes import EVENT_ID, FlowKind
from domain.flow_info import FlowRecord
from domain.money import Money
from store.db import current_revision, head_revision, migrate
from store.flow_index import FlowInProgress
from store.repositories import Store
from store.schema import events, product_locks
from tests.waits import eventually

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def record(code: str, status: str = "processing", *, terminal: bool = False, product_id: str = "PRD-1") -> FlowRecord:
    return FlowRecord(
        code=code, kind=FlowKind.CANCELLATION, product_id=product_id, reservation_id="RES-1", partner_id="ptn_1",
        status=status, terminal=terminal, info={"code": code, "status": status},
        at=NOW,
    )


async def test_migrations_reach_head_and_are_idempotent(store: Store) -> None:
    await migrate(store.engine)  # a second start finds the schema at head
    async with store.engine.connect() as conn:
        assert await current_revision(conn) == head_revision()


async def test_one_active_flow_per_product(store: Store) -> None:
    await store.flows.open(record("CAN-AAAAAAAA"), {})
    with pytest.raises(FlowInProgress) as busy:
        await store.flows.open(record("CAN-BBBBBBBB"), {})
    assert busy.value.holder == "CAN-AAAAAAAA"
    assert await store.flows.lock_holder("PRD-1") == "CAN-AAAAAAAA"
    await store.flows.record_flow(record("CAN-AAAAAAAA", "cancelled", terminal=True))
    assert await store.flows.lock_holder("PRD-1") is None
    await store.flows.open(record("CAN-BBBBBBBB"), {})


async def test_a_terminal_record_releases_only_its_own_lock(store: Store) -> None:
    await store.flows.open(record("CAN-CCCCCCCC", product_id="PRD-2"), {})
    await store.flows.record_flow(record("CAN-DDDDDDDD", "failed", terminal=True, product_id="PRD-2"))
    assert await store.flows.lock_holder("PRD-2") == "CAN-CCCCCCCC"


async def test_outbox_write_is_idempotent_per_event(store: Store) -> None:
    await store.flows.open(record("CAN-EEEEEEEE", product_id="PRD-3"), {})
    # Recorded as the workflow records it (a whole CancellationInfo, a real event id): the event is one we send.
    event_id = EVENT_ID.secure()
    info = CancellationInfo(code="CAN-EEEEEEEE", product_id="PRD-3", reservation_id="RES-1", partner_id="ptn_1",
                            status="failed", resolution="automatic", paid=Money.of("100", "EUR"))
    final = FlowRecord.of(info, FlowKind.CANCELLATION, NOW, event_id, "cancellation.completed")
    await store.flows.record_flow(final)
    await store.flows.record_flow(final)  # a retried activity
    async with store.engine.connect() as conn:
        count = (await conn.execute(
            sa.select(sa.func.count()).select_from(events).where(events.c.flow_code == "CAN-EEEEEEEE"))).scalar_one()
        locks = (await conn.execute(
            sa.select(sa.func.count()).select_from(product_locks).where(product_locks.c.product_id == "PRD-3"))).scalar_one()
    assert count == 1 and locks == 0
    flow = await store.flows.flow("CAN-EEEEEEEE")
    assert flow is not None and flow.status == "failed" and flow.created_at == NOW
    # On PostgreSQL the feed shows an event once every older writing transaction on the server is over
    # (docs/triggers.md#the-feeds-order): wait, bounded, for it to show.
    async def shown() -> list[dict[str, Any]] | None:
        return [e for e in await store.events.feed("ptn_1", None, 10) if e["id"] == event_id] or None
    feed = await eventually(shown, 30, f"{event_id} in the feed")
    assert len(feed) == 1 and feed[0]["delivery"] == {"status": "pending", "attempts": 0}
    await store.events.record_attempt(event_id, delivered=False, detail="HTTP 500")
    await store.events.record_attempt(event_id, delivered=True, detail="HTTP 200")
    await store.events.mark_failed(event_id)  # too late: delivered stays delivered
    assert [e for e in await store.events.feed("ptn_1", None, 10) if e["id"] == event_id][0]["delivery"] == {"status": "delivered", "attempts": 2}
    assert await store.events.feed("ptn_other", None, 10) == []


async def test_times_come_back_aware_in_utc(store: Store) -> None:
    await store.flows.open(record("CAN-FFFFFFFF", product_id="PRD-4").model_copy(
        update={"at": NOW.astimezone(timezone(timedelta(hours=5)))}), {})
    flow = await store.flows.flow("CAN-FFFFFFFF")
    assert flow is not None and flow.created_at == NOW and flow.created_at.tzinfo is not None


async def test_api_keys_are_stored_hashed(store: Store) -> None:
    partner, key = await store.accounts.create_partner("Acme", None)
    async with store.engine.connect() as conn:
        stored = (await conn.execute(sa.text("SELECT key_hash FROM api_keys"))).scalars().all()
    assert key not in stored and all(len(h) == 64 for h in stored)
    found = await store.accounts.principal_for(key)
    assert found is not None and found.principal_id == partner.partner_id and found.role == "partner"
    assert await store.accounts.principal_for(key + "x") is None
