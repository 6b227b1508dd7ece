"""How repositories read and write (store.db.Repository): reads never wait for a writer; on
SQLite the writers of one process take turns, and a write opened inside another is refused at
once rather than waiting for itself forever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa

from store.db import Repository
from store.repositories import Store, open_store
from store.schema import partners


class Probe(Repository):
    async def count(self) -> int:
        async with self._reading() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(partners))).scalar_one())


@pytest_asyncio.fixture
async def sqlite_store(tmp_path: Path) -> AsyncIterator[Store]:
    store = await open_store(f"sqlite+aiosqlite:///{tmp_path / 'rw.db'}")
    yield store
    await store.close()


async def test_a_read_does_not_wait_for_an_open_write(store: Store) -> None:
    probe = Probe(store.engine)
    async with probe._writing():
        # The write holds SQLite's lock (BEGIN IMMEDIATE): a read still answers, within a bound.
        assert await asyncio.wait_for(probe.count(), 5) >= 0


async def test_a_write_inside_a_write_is_refused_not_a_hang(sqlite_store: Store) -> None:
    probe = Probe(sqlite_store.engine)
    async with probe._writing():
        with pytest.raises(RuntimeError, match="inside another"):
            async with asyncio.timeout(5), probe._writing():
                pass
    async with asyncio.timeout(5), probe._writing():
        pass  # the turn was given back


async def test_writers_of_one_process_take_turns_in_order(sqlite_store: Store) -> None:
    probe = Probe(sqlite_store.engine)
    entered: list[int] = []
    inside = 0
    most = 0

    async def write(n: int) -> None:
        nonlocal inside, most
        async with probe._writing() as conn:
            entered.append(n)
            inside += 1
            most = max(most, inside)
            await conn.execute(sa.select(1))  # the others try to enter meanwhile
            inside -= 1

    await asyncio.wait_for(asyncio.gather(*(write(n) for n in range(20))), 30)
    assert most == 1
    assert entered == list(range(20)), "writers entered out of order: they polled the database's lock"
