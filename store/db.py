"""Engine creation, start-up migrations (Alembic, run programmatically on the async engine), and
the one way repositories read and write (:class:`Repository`)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

MIGRATIONS = Path(__file__).parent / "migrations"

# Marks the connections of :meth:`Repository._reading`: on SQLite they begin no transaction.
READS_ONLY = "aftersales_reads_only"


class Repository:
    """Queries over one engine, each either a read or a write.

    ``_reading()`` is for what only reads: autocommit on both databases, no BEGIN and no write
    lock. Each statement reads its own snapshot (a WAL snapshot on SQLite, as under PostgreSQL's
    READ COMMITTED, where a transaction would not give one snapshot either), and no round trip
    is spent on BEGIN and ROLLBACK. ``_writing()`` is a transaction that may write:
    ``BEGIN IMMEDIATE`` on SQLite, so concurrent writers queue instead of failing, and one winner
    among them is decided by the database. A read that must see what it is about to change
    belongs in the writing transaction.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._readers = reader(engine)
        self._one_writer = engine.dialect.name == "sqlite"

    def _reading(self) -> AsyncConnection:
        return self._readers.connect()

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncConnection]:
        if not self._one_writer:
            async with self._engine.begin() as conn:
                yield conn
            return
        # SQLite has one writer at a time. Writers of this process take turns here, in order,
        # instead of polling the database's lock with growing sleeps (its busy handler sleeps
        # up to 100 ms a try); only the other process's writers are waited for in the database.
        if _WRITING.get():
            # The turn is not re-entrant: a second write transaction opened inside one would wait
            # for itself forever (on SQLite it could never commit before the first anyway).
            raise RuntimeError("a write transaction opened inside another: pass the open connection instead")
        async with _write_turn(self._engine), self._engine.begin() as conn:
            token = _WRITING.set(True)
            try:
                yield conn
            finally:
                _WRITING.reset(token)


# Set while this task is inside a write transaction (each task has its own value).
_WRITING: ContextVar[bool] = ContextVar("aftersales_writing", default=False)

# One turn lock per engine and event loop (tests run several loops over one process).
_TURNS: weakref.WeakKeyDictionary[sa.Engine, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]] = (
    weakref.WeakKeyDictionary()
)


def _write_turn(engine: AsyncEngine) -> asyncio.Lock:
    per_loop = _TURNS.get(engine.sync_engine)
    if per_loop is None:
        per_loop = _TURNS[engine.sync_engine] = weakref.WeakKeyDictionary()
    loop = asyncio.get_running_loop()
    turn = per_loop.get(loop)
    if turn is None:
        turn = per_loop[loop] = asyncio.Lock()
    return turn


@cache
def _insert_or_nothing(dialect: str, table: sa.Table, key: tuple[str, ...]) -> sa.Insert:
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(table).on_conflict_do_nothing(index_elements=list(key) or None)


async def insert_once(conn: AsyncConnection, table: sa.Table, values: dict[str, Any], key: tuple[str, ...] = ()) -> bool:
    """Insert a row, or report False when one with the same key exists (``key``: the unique
    columns that make a row "the same"; by default any unique constraint). The database decides,
    in one statement (``INSERT … ON CONFLICT DO NOTHING``, no savepoint around it); any other
    integrity error still raises."""
    result = await conn.execute(_insert_or_nothing(conn.dialect.name, table, key), values)
    return bool(result.rowcount == 1)


def violates_unique(error: sa.exc.IntegrityError, column: sa.Column[Any]) -> bool:
    """Whether ``error`` is ``column``'s unique constraint refusing a value, and not another
    constraint: SQLite names the column, PostgreSQL the constraint (``<table>_<column>_key``, the
    name it gives an unnamed one, as the migrations leave them)."""
    table = column.table.name
    return (
        str(error.orig) == f"UNIQUE constraint failed: {table}.{column.name}"
        or getattr(getattr(error.orig, "__cause__", None), "constraint_name", None) == f"{table}_{column.name}_key"
    )


def page_after(table: sa.Table, equal: dict[sa.Column[Any], object], after_seq: int | None, limit: int) -> sa.Select[Any]:
    """One page of ``table`` in ``seq`` order (keyset pagination): the rows after ``after_seq``
    whose columns equal the given values (a value of None filters nothing)."""
    query = sa.select(table).order_by(table.c.seq).limit(limit)
    for column, value in equal.items():
        if value is not None:
            query = query.where(column == value)
    if after_seq is not None:
        query = query.where(table.c.seq > after_seq)
    return query


def reader(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` for connections that only read (see :class:`Repository`); it shares the pool."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine.execution_options(**{READS_ONLY: True})


def create_engine(url: str, *, pool_size: int = 20, max_overflow: int = 10) -> AsyncEngine:
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
            # A writer takes the write lock up front (IMMEDIATE). A deferred transaction that reads
            # and then writes fails at once with "database is locked" when another process wrote
            # in between (no busy wait applies); IMMEDIATE waits its turn under busy_timeout
            # instead.
            # A reader takes no transaction at all: each of its statements reads its own WAL
            # snapshot without waiting (as every statement does under PostgreSQL's READ COMMITTED).
            if not connection.get_execution_options().get(READS_ONLY, False):
                connection.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No pre-ping: it costs a round trip on every checkout. A connection the server dropped fails
    # its statement, SQLAlchemy then discards the whole pool, and the request answers 503
    # (docs/operations.md); recycling bounds how long an idle connection is trusted.
    # The pool (AFTERSALES_DB_POOL_SIZE) covers the concurrency a process usually carries: a
    # connection beyond it (the overflow) is closed when returned, so a pool smaller than the load
    # opens a PostgreSQL session per request (issue 21 measured about 300 in 15 s at 20 connections
    # with a pool of 10).
    return create_async_engine(url, pool_size=pool_size, max_overflow=max_overflow, pool_recycle=1800)


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
