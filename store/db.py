"""Engine creation, start-up migrations (Alembic, run programmatically on the async engine), and
the one way repositories read and write (:class:`Repository`)."""

from __future__ import annotations

import asyncio
import fcntl
import os
import weakref
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from domain.refusals import Refused

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
    async def _hot_reading(self) -> AsyncIterator[HotReader]:
        """A read of the API's hot path (:class:`HotRead` statements only), autocommit as ``_reading()``.

        On PostgreSQL the pool's connection is taken as it is, without SQLAlchemy's connection
        around it (whose checkout and close cost about twice the pool's own: isolation level set and
        reset, its close run as a task): nothing runs on it but the driver's statements, outside any
        transaction, so it goes back to the pool as it came.
        """
        if self._one_writer:
            async with self._reading() as conn:
                yield HotReader(conn, None)
            return
        pooled = await self._engine.raw_connection()
        try:
            yield HotReader(None, pooled)
        finally:
            await greenlet_spawn(pooled.close)  # its reset may speak to the server: in SQLAlchemy's greenlet

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
        writers = _writers(self._engine)
        while True:
            group = writers.group
            if group is None or not group.open or group.joined >= GROUP_MOST:
                break
            # Group commit: a transaction is open, so this write runs in it, after the writes queued
            # before it, each in a savepoint of its own, and commits with them.
            outcome = await group.run_member()
            if outcome is _RETRY:
                continue  # the group's first write failed and rolled it all back: take a turn afresh
            async with group.run_body() as conn:
                yield conn
            await asyncio.shield(group.committed)
            return
        # A new group, open to the writes that come while it waits for its turn and while it runs.
        group = writers.group = _Group(writers)
        # Held from the start: the writes joining meanwhile run only after this first one.
        await group.body.acquire()
        try:
            async with writers.turn, writers.across_processes(), self._engine.begin() as conn:
                group.conn = conn
                # The first write needs no savepoint: if it fails, the transaction rolls back whole
                # before any other write ran in it, and the writes waiting take a turn afresh.
                token = _WRITING.set(True)
                try:
                    yield conn
                finally:
                    _WRITING.reset(token)
                group.body.release()
                await group.drain()
        except BaseException as error:
            group.close(failed=True)
            if group.body.locked() and not group.drained:
                group.body.release()  # the first write's own hold
            if not group.committed.done():
                group.committed.set_exception(error)
                group.committed.exception()  # retrieved: a group with no member must not warn
            raise
        finally:
            if writers.group is group:
                writers.group = None
        group.committed.set_result(None)


# A group commit takes at most this many writes: the ones queued behind it wait at most that long.
GROUP_MOST = 32
_RETRY = object()


class _Writers:
    """The writers of one engine in one event loop: whose turn it is, and the transaction open now.

    Between processes (the worker and the gateway on one file) the turn is an advisory lock on a file
    beside the database (``flock``), waited for in a thread: the waiter wakes as soon as the other
    process lets go, where SQLite's busy handler polls with sleeps growing to 100 ms. The busy handler
    stays, for writers that take no such lock (migrations, another tool)."""

    def __init__(self, database: str | None) -> None:
        self.turn = asyncio.Lock()
        self.group: _Group | None = None
        self._lock_path = f"{database}-writers.lock" if database and database != ":memory:" else None
        self._fd: int | None = None

    @asynccontextmanager
    async def across_processes(self) -> AsyncIterator[None]:
        if self._lock_path is None:
            yield
            return
        if self._fd is None:
            self._fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            weakref.finalize(self, os.close, self._fd)
        fd = self._fd
        taking = asyncio.get_running_loop().run_in_executor(None, fcntl.flock, fd, fcntl.LOCK_EX)
        try:
            await asyncio.shield(taking)
        except asyncio.CancelledError:
            # The thread still waits for the lock: whenever it gets it, it is given back at once.
            taking.add_done_callback(lambda taken: _give_back(fd, taken))
            raise
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)


def _give_back(fd: int, taken: asyncio.Future[None]) -> None:
    if not taken.cancelled() and taken.exception() is None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class _Group:
    """One SQLite write transaction shared by the writes queued while it is open (group commit).

    Its first write opens it; the writes that arrive while it is open run in it one after the other,
    in order, each in a savepoint (a failing one takes back only its own changes and raises to its
    caller alone), and all of them commit together, each caller answered once the commit is done.
    Serial writes, one commit: under a burst SQLite's BEGIN and COMMIT (a thread hop each, and the
    other process's turn) are paid once per group, not once per write.
    """

    def __init__(self, writers: _Writers) -> None:
        self.conn: AsyncConnection | None = None
        self.body = asyncio.Lock()  # one write's statements at a time, in the order they came
        self.open = True
        self.failed = False
        self.drained = False  # the first write let go of the body lock: drain() holds it only inside
        self.joined = 0
        self.waiting = 0
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def close(self, *, failed: bool) -> None:
        self.open = False
        self.failed = self.failed or failed

    async def run_member(self) -> object:
        """Wait for this write's turn inside the group; _RETRY when the group failed before it ran."""
        self.joined += 1
        self.waiting += 1
        try:
            await self.body.acquire()
        finally:
            self.waiting -= 1
        if self.failed:
            self.body.release()
            return _RETRY
        return None

    @asynccontextmanager
    async def run_body(self) -> AsyncIterator[AsyncConnection]:
        """This write's statements in a savepoint of the group's transaction (the body lock held)."""
        assert self.conn is not None
        token = _WRITING.set(True)
        try:
            async with self.conn.begin_nested():
                yield self.conn
        finally:
            _WRITING.reset(token)
            self.body.release()

    async def drain(self) -> None:
        """Until every write that joined has run its statements; then no more join. Cancelled, it still
        waits for the write running now to finish before the transaction is rolled back under it."""
        self.drained = True
        drained = asyncio.ensure_future(self._drain())
        try:
            await asyncio.shield(drained)
        except asyncio.CancelledError:
            self.close(failed=True)  # the writes still waiting re-queue
            await drained
            raise

    async def _drain(self) -> None:
        while True:
            async with self.body:
                if self.waiting == 0 or self.failed:
                    self.close(failed=self.failed)
                    return


def _writers(engine: AsyncEngine) -> _Writers:
    per_loop = _TURNS.get(engine.sync_engine)
    if per_loop is None:
        per_loop = _TURNS[engine.sync_engine] = weakref.WeakKeyDictionary()
    loop = asyncio.get_running_loop()
    writers = per_loop.get(loop)
    if writers is None:
        writers = per_loop[loop] = _Writers(engine.url.database)
    return writers


# Set while this task is inside a write transaction (each task has its own value).
_WRITING: ContextVar[bool] = ContextVar("aftersales_writing", default=False)

# The writers per engine and event loop (tests run several loops over one process).
_TURNS: weakref.WeakKeyDictionary[sa.Engine, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Writers]] = (
    weakref.WeakKeyDictionary()
)


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


async def insert_many_once(conn: AsyncConnection, table: sa.Table, rows: list[dict[str, Any]], key: tuple[str, ...] = ()) -> None:
    """:func:`insert_once` for many rows in one statement execution (the rows whose key exists are left)."""
    if rows:
        await conn.execute(_insert_or_nothing(conn.dialect.name, table, key), rows)


def violates_unique(error: sa.exc.IntegrityError, column: sa.Column[Any]) -> bool:
    """Whether ``error`` is ``column``'s unique constraint refusing a value, and not another
    constraint: SQLite names the column, PostgreSQL the constraint (``<table>_<column>_key``, the
    name it gives an unnamed one, as the migrations leave them)."""
    table = column.table.name
    return (
        str(error.orig) == f"UNIQUE constraint failed: {table}.{column.name}"
        or getattr(getattr(error.orig, "__cause__", None), "constraint_name", None) == f"{table}_{column.name}_key"
    )


# SQLSTATE classes of a database refusing the data itself (PostgreSQL, appendix A): 22, a data exception
# (a number out of its column's range, a string too long); 23, an integrity constraint violated. The same
# statement gets the same answer however often it is retried. Others (08 connection, 40 serialization
# or deadlock, 53 resources, 57 shutdown) pass with time.
_REFUSED_CLASSES = ("22", "23")


def refused_for_good(error: BaseException) -> bool:
    """Whether ``error``, raised by a write, says that no retry of the same write can succeed: the
    database refused the data (a constraint, a value its column cannot hold), or the store's own
    code did before sending it (a value beyond the arithmetic's bounds, a row the write needs missing,
    a rule the books keep). A lost connection, a timeout, a lock or a serialization conflict is not:
    the write is retried. Only an operator's fix (a migration, a data repair) changes the answer."""
    if isinstance(error, (sa.exc.IntegrityError, sa.exc.DataError)):
        return True
    if isinstance(error, sa.exc.DBAPIError):
        # asyncpg's errors reach SQLAlchemy as generic DBAPI errors: the SQLSTATE says which.
        state = getattr(error.orig, "sqlstate", None) or getattr(getattr(error.orig, "__cause__", None), "sqlstate", None)
        return isinstance(state, str) and state[:2] in _REFUSED_CLASSES
    if isinstance(error, sa.exc.StatementError):
        # A value refused on its way to the database (a bind processor: a naive datetime).
        return error.orig is not None and refused_for_good(error.orig)
    if isinstance(error, sa.exc.SQLAlchemyError):
        return False
    return isinstance(error, (ValueError, ArithmeticError, LookupError, Refused))


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


class HotRead:
    """A read statement of the API's hot path (the reservation read), built once.

    On SQLite it runs through SQLAlchemy like any read. On PostgreSQL its SQL, compiled here once
    from the same statement for asyncpg, runs on the pooled connection's driver, which prepares
    it once per connection and keeps it: SQLAlchemy's per-statement work (the compiled cache's
    look-up, the adapted cursor, greenlet hand-offs, the result's processing) was most of what the
    read cost beyond the database's own work (docs/operations.md#where-the-remaining-time-goes).
    The driver decodes JSON and timestamps as SQLAlchemy's PostgreSQL dialect set it up to
    (aware UTC datetimes, as :class:`store.schema.UtcDateTime` gives). Rows come as mappings by
    the statement's column labels either way.
    """

    def __init__(self, statement: sa.Select[Any]) -> None:
        self.statement = statement
        compiled = statement.compile(dialect=_asyncpg_dialect())
        self.sql = str(compiled)
        self.parameters: tuple[str, ...] = tuple(compiled.positiontup or ())


@cache
def _asyncpg_dialect() -> sa.Dialect:
    dialect: sa.Dialect = postgresql.asyncpg.dialect()  # type: ignore[no-untyped-call]
    return dialect


# What the driver raises when the connection itself is gone or unusable (closed, the server shutting
# down, its protocol state broken by a race with the server closing it): the connection is
# invalidated and a disconnection raised, as SQLAlchemy does (answered 503 database_unavailable,
# docs/operations.md).
_DRIVER_DISCONNECTS = (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.InternalClientError,
                       asyncpg.AdminShutdownError, asyncpg.CrashShutdownError, asyncpg.CannotConnectNowError, OSError)


class HotReader:
    """Runs :class:`HotRead` statements on one reading connection (``Repository._hot_reading``):
    SQLAlchemy's ``conn`` on SQLite, the pool's connection ``pooled`` on PostgreSQL."""

    def __init__(self, conn: AsyncConnection | None, pooled: PoolProxiedConnection | None) -> None:
        self._conn = conn
        self._pooled = pooled
        self._driver: Any = None if pooled is None else pooled.driver_connection

    async def rows(self, read: HotRead, **parameters: Any) -> Sequence[Any]:
        """The rows of ``read``, each subscriptable by column label."""
        rows: Sequence[Any]
        if self._conn is not None:
            rows = (await self._conn.execute(read.statement, parameters)).mappings().all()
            return rows
        try:
            rows = await self._driver.fetch(read.sql, *(parameters[name] for name in read.parameters))
            return rows
        except _DRIVER_DISCONNECTS as exc:
            assert self._pooled is not None
            await greenlet_spawn(self._pooled.invalidate, exc)
            raise sa.exc.DisconnectionError(f"the database connection was lost: {type(exc).__name__}") from exc


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
