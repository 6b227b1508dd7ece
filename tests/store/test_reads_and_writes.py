"""How repositories read and write (store.db.Repository): reads never wait for a writer; on
SQLite the writers of one process take turns, and a write opened inside another is refused at
once rather than waiting for itself forever."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
import pytest_asyncio
import sqlalchemy as sa

from store.db import Repository, _writers
from store.repositories import Store, open_store
from store.schema import partners

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


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


async def test_writes_queued_behind_an_open_one_commit_with_it_each_undone_alone(sqlite_store: Store) -> None:
    """Group commit: the writes that queue while one is open run in its transaction, one after the
    other, and commit with it; a write that fails takes back only its own changes."""
    probe = Probe(sqlite_store.engine)
    begins = 0

    @sa.event.listens_for(sqlite_store.engine.sync_engine, "begin")
    def _count(_conn: sa.Connection) -> None:
        nonlocal begins
        begins += 1

    class Refused(Exception):
        pass

    async def write(n: int) -> None:
        async with probe._writing() as conn:
            await conn.execute(partners.insert().values(partner_id=f"ptn_group_{n}", name=f"group {n}",
                                                        webhook_secret="s", created_at=NOW))
            if n % 5 == 3:
                raise Refused(n)

    outcomes = await asyncio.wait_for(asyncio.gather(*(write(n) for n in range(20)), return_exceptions=True), 30)
    assert [n for n, outcome in enumerate(outcomes) if isinstance(outcome, Refused)] == [3, 8, 13, 18]
    assert [outcome for outcome in outcomes if not isinstance(outcome, Refused)] == [None] * 16
    async with sqlite_store.engine.connect() as conn:
        kept = (await conn.execute(sa.select(partners.c.partner_id).where(partners.c.partner_id.like("ptn_group_%")))).scalars().all()
    assert sorted(kept) == sorted(f"ptn_group_{n}" for n in range(20) if n % 5 != 3)
    assert begins < 20, "every write began a transaction of its own: none was grouped"


async def test_a_group_whose_first_write_fails_lets_the_others_commit(sqlite_store: Store) -> None:
    probe = Probe(sqlite_store.engine)
    first_inside = asyncio.Event()
    release_first = asyncio.Event()

    async def first() -> None:
        async with probe._writing() as conn:
            await conn.execute(partners.insert().values(partner_id="ptn_first", name="first",
                                                        webhook_secret="s", created_at=NOW))
            first_inside.set()
            await release_first.wait()
            raise RuntimeError("the first write fails")

    async def later(n: int) -> None:
        async with probe._writing() as conn:
            await conn.execute(partners.insert().values(partner_id=f"ptn_later_{n}", name=f"later {n}",
                                                        webhook_secret="s", created_at=NOW))

    failing = asyncio.create_task(first())
    await asyncio.wait_for(first_inside.wait(), 5)
    others = [asyncio.create_task(later(n)) for n in range(3)]
    await asyncio.sleep(0)  # they queue behind the open transaction
    release_first.set()
    with pytest.raises(RuntimeError, match="first write fails"):
        await asyncio.wait_for(failing, 5)
    await asyncio.wait_for(asyncio.gather(*others), 10)
    async with sqlite_store.engine.connect() as conn:
        kept = (await conn.execute(sa.select(partners.c.partner_id).where(
            partners.c.partner_id.in_(["ptn_first", "ptn_later_0", "ptn_later_1", "ptn_later_2"])))).scalars().all()
    assert sorted(kept) == ["ptn_later_0", "ptn_later_1", "ptn_later_2"]


async def test_two_processes_on_one_file_take_turns_and_a_waiter_given_up_leaves_no_lock(tmp_path: Path) -> None:
    """The worker and the gateway each have their engine on the file: their writers take turns on the
    lock beside it. A writer cancelled while it waits for that lock does not keep it once it comes."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'two.db'}"
    worker, gateway = await open_store(url), await open_store(url)
    try:
        one, other = Probe(worker.engine), Probe(gateway.engine)
        holding = asyncio.Event()
        let_go = asyncio.Event()

        async def hold() -> None:
            async with one._writing():
                holding.set()
                await let_go.wait()

        held = asyncio.create_task(hold())
        await asyncio.wait_for(holding.wait(), 5)
        waiting = asyncio.create_task(other._writing().__aenter__())
        async with asyncio.timeout(5):  # past its own process's turn: waiting for the other's, in a thread
            while not _writers(gateway.engine).turn.locked():
                await asyncio.sleep(0)
        assert not waiting.done()
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        let_go.set()
        await asyncio.wait_for(held, 5)

        async def write(probe: Probe, n: int) -> None:
            async with probe._writing() as conn:
                await conn.execute(partners.insert().values(partner_id=f"ptn_two_{n}", name=f"two {n}",
                                                            webhook_secret="s", created_at=NOW))

        # The lock the cancelled waiter got after giving up was given back: the first engine writes again
        # while the second stays idle (its next write would release it too), then both do.
        await asyncio.wait_for(write(one, 100), 5)
        await asyncio.wait_for(asyncio.gather(*(write(one if n % 2 else other, n) for n in range(20))), 30)
        assert await one.count() >= 20
    finally:
        await worker.close()
        await gateway.close()
