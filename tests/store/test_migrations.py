"""The migrations create exactly ``store.schema`` (so the two cannot drift), and each one can be undone."""

from __future__ import annotations

import random

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from domain.products import ReservationSpec
from store.db import _alembic_config
from store.repositories import Store
from store.schema import metadata, products


def _differences(connection: sa.Connection) -> list[object]:
    return compare_metadata(MigrationContext.configure(connection), metadata)


async def test_migrated_database_matches_the_schema(store: Store) -> None:
    async with store.engine.connect() as conn:
        assert await conn.run_sync(_differences) == []


async def test_newest_migration_downgrades_and_upgrades_again(store: Store) -> None:
    def down_and_up(connection: sa.Connection) -> list[object]:
        config = _alembic_config(connection)
        command.downgrade(config, "-1")
        command.upgrade(config, "head")
        return _differences(connection)

    async with store.engine.begin() as conn:
        assert await conn.run_sync(down_and_up) == []


async def test_products_sold_before_travellers_were_named_are_backfilled(store: Store) -> None:
    """Revision 0014 gives every product stored before it the defaults a product sold now without
    them gets: every traveller of the reservation, the price split equally, the remainder's minor
    units to the first travellers (100.00 EUR for three: 33.34, 33.33, 33.33)."""
    partner, _ = await store.accounts.create_partner("Acme", None)
    product = {"kind": "other", "name": "Transfer", "starts_at": "2031-06-01T09:00:00+00:00",
               "ends_at": "2031-06-01T10:00:00+00:00", "vat_rate": "0.10", "cancellation_policy": {"mode": "automatic"}}
    spec = ReservationSpec.model_validate({
        "travellers": [{"traveller_id": f"T{n}", "name": f"Traveller {n}"} for n in (1, 2, 3)],
        "products": [{**product, "price": {"amount": "100.00", "currency": "EUR"}},
                     {**product, "price": {"amount": "1000", "currency": "JPY"}},
                     {**product, "price": {"amount": "0.100", "currency": "KWD"}, "traveller_ids": ["T3", "T1"]}],
    })
    reservation_id = await store.reservations.create(partner.partner_id, spec, random.Random())

    def back_and_forth(connection: sa.Connection) -> None:
        config = _alembic_config(connection)
        command.downgrade(config, "0013")
        rows = connection.execute(sa.select(products.c.product_id, products.c.details)).all()
        for row in rows:  # as a product was stored before revision 0014
            details = {k: v for k, v in row.details.items() if k != "fares"}
            details["cancellation_policy"] = {"mode": "automatic", "tiers": []}
            if details["price"]["currency"] != "KWD":
                details.pop("traveller_ids")
            connection.execute(products.update().where(products.c.product_id == row.product_id).values(details=details))
        command.upgrade(config, "head")

    async with store.engine.begin() as conn:
        await conn.run_sync(back_and_forth)
    sold = await store.reservations.products_of(reservation_id)
    assert [[(f.traveller_id, str(f.amount.amount)) for f in p.spec.fares or []] for p in sold] == [
        [("T1", "33.34"), ("T2", "33.33"), ("T3", "33.33")],
        [("T1", "334"), ("T2", "333"), ("T3", "333")],
        [("T3", "0.050"), ("T1", "0.050")],
    ]
    assert [p.spec.traveller_ids for p in sold] == [["T1", "T2", "T3"], ["T1", "T2", "T3"], ["T3", "T1"]]
    assert [p.details["cancellation_policy"]["partial"] for p in sold] == [True, True, True]
