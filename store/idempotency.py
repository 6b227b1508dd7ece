"""Idempotency keys (docs/api.md#idempotency): claimed before the work runs, then the stored answer.

A key is claimed by inserting its row with no answer yet: the primary key (principal, key)
lets exactly one of many simultaneous requests win; the others see the claim and wait for its
answer. A claim carries a random token, so only the request that holds it stores its answer,
and a claim whose request died (a crash) may be taken over once its lease has passed.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from store.db import Repository, insert_once
from store.schema import idempotency_records

# docs/api.md#idempotency promises at least 24 h; records older than this are purged.
RETENTION = timedelta(hours=48)
# Expired records are deleted in bulk at most this often per process, on the way of a claim.
PURGE_EVERY_S = 600.0


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status: int
    body: str


@dataclass(frozen=True)
class Claim:
    """This request holds the key: it runs the work and stores the answer with ``token``."""

    token: str
    took_over: bool = False


@dataclass(frozen=True)
class InProgress:
    """Another request holds the key and has not answered yet."""

    request_hash: str


Found = StoredResponse | InProgress


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _row(principal: str, key: str) -> sa.ColumnElement[bool]:
    return sa.and_(idempotency_records.c.principal == principal, idempotency_records.c.key == key)


class IdempotencyRecords(Repository):
    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self._next_purge = 0.0

    async def claim(self, principal: str, key: str, request_hash: str, lease: timedelta) -> Claim | Found:
        """Claim the key for this request, or say who has it: a stored answer or a request in progress."""
        if time.monotonic() >= self._next_purge:
            self._next_purge = time.monotonic() + PURGE_EVERY_S
            await self.purge_expired()
        now = _now()
        token = secrets.token_hex(16)
        async with self._writing() as conn:
            claimed = await insert_once(conn, idempotency_records, {
                "principal": principal, "key": key, "request_hash": request_hash, "claim": token, "created_at": now,
            }, key=("principal", "key"))
            if claimed:
                return Claim(token)
            row = (await conn.execute(sa.select(idempotency_records).where(_row(principal, key)))).first()
            if row is None:  # purged between the insert and the read: the next attempt inserts
                return InProgress(request_hash)
            expired = row.created_at < now - RETENTION
            stale_claim = row.status is None and row.created_at < now - lease
            if expired or (stale_claim and row.request_hash == request_hash):
                if await self._take_over(conn, principal, key, row.claim, request_hash, token, now):
                    return Claim(token, took_over=not expired)
                return InProgress(request_hash)
            if row.status is None:
                return InProgress(row.request_hash)
            return StoredResponse(row.request_hash, row.status, row.body)

    @staticmethod
    async def _take_over(
        conn: AsyncConnection, principal: str, key: str, old_claim: str | None, request_hash: str, token: str,
        now: datetime,
    ) -> bool:
        # Compare-and-set on the old claim token: of two retries taking over at once, one wins.
        result = await conn.execute(
            idempotency_records.update()
            .where(_row(principal, key), idempotency_records.c.claim == old_claim if old_claim else sa.true())
            .values(request_hash=request_hash, status=None, body=None, claim=token, created_at=now)
        )
        return bool(result.rowcount)

    async def find(self, principal: str, key: str) -> Found | None:
        async with self._reading() as conn:
            row = (await conn.execute(sa.select(idempotency_records).where(_row(principal, key)))).first()
        if row is None:
            return None
        if row.status is None:
            return InProgress(row.request_hash)
        return StoredResponse(row.request_hash, row.status, row.body)

    async def save(self, principal: str, key: str, claim: Claim, status: int, body: str) -> bool:
        """Store the answer of the request holding ``claim``; False when it lost the claim (taken over)."""
        async with self._writing() as conn:
            result = await conn.execute(
                idempotency_records.update()
                .where(_row(principal, key), idempotency_records.c.claim == claim.token,
                       idempotency_records.c.status.is_(None))
                .values(status=status, body=body)
            )
        return bool(result.rowcount)

    async def release(self, principal: str, key: str, claim: Claim) -> None:
        """Give the key back without an answer (a 5xx, or the request died): a retry runs afresh."""
        async with self._writing() as conn:
            await conn.execute(
                idempotency_records.delete().where(
                    _row(principal, key), idempotency_records.c.claim == claim.token,
                    idempotency_records.c.status.is_(None),
                )
            )

    async def purge_expired(self) -> int:
        """Delete every record past its retention; the number deleted."""
        async with self._writing() as conn:
            result = await conn.execute(
                idempotency_records.delete().where(idempotency_records.c.created_at < _now() - RETENTION)
            )
        return int(result.rowcount or 0)
