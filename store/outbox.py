"""The event outbox as the trigger activities see it, and the partner's pull feed (docs/triggers.md).

Events are written by ``store.flow_index.FlowIndex.record_flow``, in the transaction of the state
they report; this module reads them, records delivery attempts and answers the feed.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from activities.ports import DeliveryTarget
from store.schema import events, partners


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Outbox:
    """The outbox as the trigger activities see it, and the partner's pull feed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def delivery_target(self, event_id: str) -> DeliveryTarget | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(events.c.payload, partners.c.webhook_url, partners.c.webhook_secret)
                    .join(partners, partners.c.partner_id == events.c.partner_id)
                    .where(events.c.event_id == event_id)
                )
            ).first()
        if row is None or not row.webhook_url:
            return None
        return DeliveryTarget(url=row.webhook_url, secret=row.webhook_secret, body=json.dumps(row.payload).encode())

    async def record_attempt(self, event_id: str, delivered: bool, detail: str) -> None:
        values: dict[str, Any] = {"attempts": events.c.attempts + 1, "last_error": None if delivered else detail[:500]}
        if delivered:
            values |= {"delivery_status": "delivered", "delivered_at": _now()}
        async with self._engine.begin() as conn:
            await conn.execute(events.update().where(events.c.event_id == event_id).values(**values))

    async def mark_failed(self, event_id: str) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                events.update()
                .where(events.c.event_id == event_id, events.c.delivery_status != "delivered")
                .values(delivery_status="failed")
            )

    async def feed(self, partner_id: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        """The caller's events in the order they were stored, after the given event id."""
        query = (
            sa.select(events.c.payload, events.c.delivery_status, events.c.attempts)
            .where(events.c.partner_id == partner_id)
            .order_by(events.c.seq)
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            if after:
                seq = (
                    await conn.execute(
                        sa.select(events.c.seq).where(events.c.event_id == after, events.c.partner_id == partner_id)
                    )
                ).scalar_one_or_none()
                if seq is None:
                    return []
                query = query.where(events.c.seq > seq)
            rows = (await conn.execute(query)).all()
        return [
            {**row.payload, "delivery": {"status": row.delivery_status, "attempts": row.attempts}} for row in rows
        ]
