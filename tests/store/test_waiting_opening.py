"""A flow that waits its turn for the product opens with one record (``FlowIndex.open_waiting``), on SQLite and
PostgreSQL: with the product free, its waiting status, the lock and the offered status with its event land in one
transaction, once however often it is retried; with the product busy, only the waiting status."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from domain.codes import EVENT_ID, FlowKind
from domain.flow_info import FlowRecord, HistoryEntry
from domain.products import ReservationSpec
from domain.rescheduling_flow import RESCHEDULING_DETECTED, ReschedulingInfo, ScheduleChange, new_rescheduling
from store.repositories import Store
from store.schema import events, product_locks
from tests.workflows.rescheduling_fakes import FLIGHT

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)


async def a_flight_product(store: Store) -> tuple[str, str, str]:
    """A booked flight product: its id, reservation and partner."""
    partner, _ = await store.accounts.create_partner("Acme", None)
    reservation_id = await store.reservations.create(partner.partner_id, ids=random.Random(), spec=ReservationSpec.model_validate({
        "travellers": [{"traveller_id": "T1", "name": "Ada"}], "products": [FLIGHT.model_dump(mode="json")],
    }))
    [product] = await store.reservations.products_of(reservation_id)
    return product.product_id, reservation_id, partner.partner_id


def opening(product_id: str, reservation_id: str, partner_id: str, code: str) -> tuple[FlowRecord, FlowRecord, FlowRecord]:
    """The flow as indexed, as waiting for the product, and as offering its alternatives (with its event)."""
    change = ScheduleChange(change_id=f"chg-{code}", product_id=product_id, kind="flight_cancelled")
    initial = new_rescheduling(change, FLIGHT, reservation_id, partner_id).model_copy(update={"code": code})

    def moved(info: ReschedulingInfo, status: str, **changes: object) -> ReschedulingInfo:
        return info.model_copy(update={**changes, "status": status, "history": [*info.history, HistoryEntry(at=NOW, event=status)]})

    waiting = moved(initial, "waiting_for_product")
    offered = moved(waiting, "awaiting_partner_action", decision_deadline=NOW + timedelta(hours=72))
    return (FlowRecord.of(initial, FlowKind.RESCHEDULING, NOW), FlowRecord.of(waiting, FlowKind.RESCHEDULING, NOW),
            FlowRecord.of(offered, FlowKind.RESCHEDULING, NOW,
                          EVENT_ID.secure(), RESCHEDULING_DETECTED))


async def test_a_free_product_is_taken_and_offered_in_one_record_once(store: Store) -> None:
    product_id, reservation_id, partner_id = await a_flight_product(store)
    indexed, waiting, offered = opening(product_id, reservation_id, partner_id, "RS-OPEN0001")
    await store.flows.index(indexed, {"code": indexed.code})
    assert await store.flows.open_waiting(waiting, offered) == ("acquired", False)  # no webhook: the feed has it
    # Retried (the worker died before the workflow heard): the same lock, the same one event.
    assert await store.flows.open_waiting(waiting, offered) == ("acquired", False)
    flow = await store.flows.flow(indexed.code)
    assert flow is not None and flow.status == "awaiting_partner_action"
    assert await store.flows.lock_holder(product_id) == indexed.code
    async with store.engine.connect() as conn:
        stored = (await conn.execute(sa.select(events.c.event_id).where(events.c.flow_code == indexed.code))).scalars().all()
    assert stored == [offered.event_id]


async def test_a_busy_product_leaves_the_flow_waiting(store: Store) -> None:
    product_id, reservation_id, partner_id = await a_flight_product(store)
    indexed, waiting, offered = opening(product_id, reservation_id, partner_id, "RS-OPEN0002")
    await store.flows.index(indexed, {"code": indexed.code})
    async with store.engine.begin() as conn:
        await conn.execute(product_locks.insert().values(product_id=product_id, flow_code="CAN-HOLDER01", acquired_at=NOW))
    assert await store.flows.open_waiting(waiting, offered) == ("busy", False)
    flow = await store.flows.flow(indexed.code)
    assert flow is not None and flow.status == "waiting_for_product"
    async with store.engine.connect() as conn:
        assert (await conn.execute(sa.select(events.c.event_id).where(events.c.flow_code == indexed.code))).first() is None
