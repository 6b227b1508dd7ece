"""Stored answers to POST/PATCH requests that carried an ``Idempotency-Key``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from store.schema import idempotency_records

# docs/api.md#idempotency promises at least 24 h; records older than this are purged lazily.
RETENTION = timedelta(hours=48)


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status: int
    body: str


class IdempotencyRecords:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def find(self, principal: str, key: str) -> StoredResponse | None:
        cutoff = datetime.now(timezone.utc) - RETENTION
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(idempotency_records).where(
                        idempotency_records.c.principal == principal,
                        idempotency_records.c.key == key,
                        idempotency_records.c.created_at >= cutoff,
                    )
                )
            ).first()
        return None if row is None else StoredResponse(row.request_hash, row.status, row.body)

    async def save(self, principal: str, key: str, response: StoredResponse) -> None:
        """Keep the first answer: a concurrent duplicate that lost the race does not overwrite it."""
        now = datetime.now(timezone.utc)
        async with self._engine.begin() as conn:
            await conn.execute(
                idempotency_records.delete().where(
                    idempotency_records.c.principal == principal,
                    idempotency_records.c.key == key,
                    idempotency_records.c.created_at < now - RETENTION,
                )
            )
            try:
                async with conn.begin_nested():
                    await conn.execute(
                        idempotency_records.insert().values(
                            principal=principal,
                            key=key,
                            request_hash=response.request_hash,
                            status=response.status,
                            body=response.body,
                            created_at=now,
                        )
                    )
            except sa.exc.IntegrityError:
                pass
