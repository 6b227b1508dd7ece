"""Testing a migration on rows stored as an earlier revision stored them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from alembic import command
from sqlalchemy.ext.asyncio import AsyncConnection

from store.db import _alembic_config
from store.repositories import Store


@asynccontextmanager
async def from_revision(store: Store, revision: str) -> AsyncIterator[AsyncConnection]:
    """A transaction on ``store`` whose schema is first taken back to ``revision``: what the block writes is
    stored as that revision stored it; when the block ends the schema is migrated to head, in the same
    transaction, and the test reads what the migrations made of it."""
    async with store.engine.begin() as conn:
        await conn.run_sync(lambda sync: command.downgrade(_alembic_config(sync), revision))
        yield conn
        await conn.run_sync(lambda sync: command.upgrade(_alembic_config(sync), "head"))
