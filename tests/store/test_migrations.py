"""The migrations create exactly ``store.schema`` (so the two cannot drift), and each one can be undone."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from store.db import _alembic_config
from store.repositories import Store
from store.schema import metadata


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
