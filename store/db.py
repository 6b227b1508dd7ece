"""Engine creation and start-up migrations (Alembic, run programmatically on the async engine)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            # WAL lets the worker and the gateway read while the other writes; foreign keys are off by default.
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()
            # The driver's own transaction handling never emits BEGIN before a SAVEPOINT, so a
            # savepoint's RELEASE would commit half a transaction (a product lock without its
            # flow row). Take transactions over: no implicit BEGIN, ours on every begin().
            dbapi_connection.isolation_level = None

        @sa.event.listens_for(engine.sync_engine, "begin")
        def _sqlite_begin(connection):  # type: ignore[no-untyped-def]
            # IMMEDIATE: take the write lock up front. A deferred transaction that reads and then
            # writes fails at once with "database is locked" when another process wrote in
            # between (no busy wait applies); IMMEDIATE waits its turn under busy_timeout instead.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _alembic_config(connection: sa.Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: sa.Connection) -> None:
    if connection.dialect.name == "postgresql":
        # The worker and the gateway both migrate at start-up: one waits for the other.
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(7233001)"))
    command.upgrade(_alembic_config(connection), "head")


async def migrate(engine: AsyncEngine, attempts: int = 5) -> None:
    """Bring the schema to the newest revision; a no-op when it is already there.

    SQLite has no advisory lock: when the worker and the gateway start together one of them
    may lose the race and fail on a table the other just created; it tries again and then
    finds the schema at head.
    """
    for attempt in range(1, attempts + 1):
        try:
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade)
            return
        except sa.exc.DBAPIError:
            if attempt == attempts:
                raise


async def current_revision(connection: AsyncConnection) -> str | None:
    return await connection.run_sync(lambda sync: MigrationContext.configure(sync).get_current_revision())


def head_revision() -> str | None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(config).get_current_head()
