"""The reservation read's statements (store.db.HotRead): on PostgreSQL they run on the driver's
prepared statements, and must give exactly the rows SQLAlchemy gives for the same statement; a
connection lost under them answers as any lost connection does (a disconnection, then fresh ones)."""

from __future__ import annotations

import asyncio
import random
import secrets
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from domain.codes import FlowKind, new_flow_code
from domain.products import ReservationSpec
from store.repositories import Store
from store.reservation_records import _RESERVATION_FLOWS, _RESERVATION_WITH_PRODUCTS
from store.schema import flows

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


async def a_reservation(store: Store) -> tuple[str, list[str]]:
    """A reservation of two products with two flows on the first; its id and the flows' codes, oldest first."""
    partner, _ = await store.accounts.create_partner("Acme", None)
    reservation_id = await store.reservations.create(partner.partner_id, ids=random.Random(), spec=ReservationSpec.model_validate({
        "travellers": [{"traveller_id": "T1", "name": "Ada"}, {"traveller_id": "T2", "name": "Grace"}],
        "products": [{"kind": "other", "name": f"Transfer {n}", "starts_at": "2031-01-01T10:00:00+01:00",
                      "ends_at": "2031-01-01T11:00:00+01:00", "price": {"amount": "240.00", "currency": "EUR"},
                      "vat_rate": "0.10", "cancellation_policy": {"mode": "automatic"}} for n in (1, 2)],
    }))
    [product, _] = await store.reservations.products_of(reservation_id)
    codes = [new_flow_code(FlowKind.CANCELLATION, secrets.SystemRandom()) for _ in range(2)]
    async with store.engine.begin() as conn:
        await conn.execute(flows.insert(), [
            {"code": codes[n - 1], "kind": "cancellation", "product_id": product.product_id,
             "reservation_id": reservation_id, "partner_id": partner.partner_id, "status": "processing",
             "info": {}, "created_at": NOW + timedelta(minutes=n), "updated_at": NOW + timedelta(minutes=n)}
            for n in (1, 2)])
    return reservation_id, codes


async def test_hot_reads_give_the_rows_sqlalchemy_gives(store: Store) -> None:
    reservation_id, codes = await a_reservation(store)
    for read in (_RESERVATION_WITH_PRODUCTS, _RESERVATION_FLOWS):
        async with store.engine.connect() as conn:
            expected = [dict(row) for row in (await conn.execute(read.statement, {"reservation_id": reservation_id})).mappings()]
        async with store.reservations._hot_reading() as hot:
            got = [dict(row.items()) for row in await hot.rows(read, reservation_id=reservation_id)]
        assert got == expected and len(got) == 2
        for row in got:
            assert all(value.tzinfo == timezone.utc for value in row.values() if isinstance(value, datetime))
    view = await store.reservations.view(reservation_id)
    assert view is not None and [f["code"] for f in view["flows"]] == codes[::-1]
    assert view["products"][0]["start"] == "2031-01-01T09:00:00+00:00"


async def test_a_connection_lost_under_a_hot_read_is_a_disconnection_then_reads_go_on(store: Store, database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("the driver's own statements run on PostgreSQL only")
    reservation_id, _ = await a_reservation(store)
    async with store.reservations._hot_reading() as hot:
        server_pid = hot._driver.get_server_pid()
        closed = asyncio.Event()
        hot._driver.add_termination_listener(lambda _connection: closed.set())
        async with store.engine.connect() as other:
            await other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": server_pid})
        await asyncio.wait_for(closed.wait(), 10)  # until the driver has seen the server close it
        with pytest.raises(sa.exc.DisconnectionError):
            await hot.rows(_RESERVATION_FLOWS, reservation_id=reservation_id)
    view = await store.reservations.view(reservation_id)
    assert view is not None and len(view["flows"]) == 2
