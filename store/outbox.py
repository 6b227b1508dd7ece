"""The event outbox as the trigger activities see it, the dispatcher's sweep, and the partner's pull
feed (docs/triggers.md).

Events are written by ``store.flow_index.FlowIndex.record_flow``, in the transaction of the state
they report (and by any other code that reports to partners, such as settlement); this module
reads them, records delivery attempts, tells the outbox dispatcher which events still need a
delivery started, and answers the feed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from ports.recording import DeliveryTarget
from store.db import Repository
from store.schema import events, partners


@dataclass(frozen=True)
class Undispatched:
    """An event waiting for its delivery to start, and the trace it was written in (None: none)."""

    event_id: str
    traceparent: str | None


def _now() -> datetime:
    return datetime.now(timezone.utc)


class Outbox(Repository):
    """The outbox as the trigger activities see it, and the partner's pull feed."""

    async def delivery_target(self, event_id: str) -> DeliveryTarget | None:
        async with self._reading() as conn:
            row = (
                await conn.execute(
                    sa.select(
                        events.c.payload, partners.c.webhook_url, partners.c.webhook_secret,
                        partners.c.previous_webhook_secret, partners.c.previous_secret_expires_at,
                    )
                    .join(partners, partners.c.partner_id == events.c.partner_id)
                    .where(events.c.event_id == event_id)
                )
            ).first()
        if row is None:
            return None
        if not row.webhook_url:
            # Nowhere to send it now: the outbox dispatcher starts a delivery once the partner sets a webhook.
            async with self._writing() as conn:
                await conn.execute(events.update().where(events.c.event_id == event_id, events.c.delivery_status == "pending")
                                   .values(dispatched_at=None))
            return None
        overlap = row.previous_secret_expires_at is not None and row.previous_secret_expires_at > _now()
        return DeliveryTarget(
            url=row.webhook_url, secret=row.webhook_secret, body=json.dumps(row.payload).encode(),
            previous_secret=row.previous_webhook_secret if overlap else None,
        )

    # --- the outbox dispatcher (worker/outbox_dispatcher.py) ----------------------------------

    async def undispatched(self, limit: int) -> list[Undispatched]:
        """Pending events no delivery was ever started for, whose partner now has a webhook, oldest first."""
        query = (
            sa.select(events.c.event_id, events.c.traceparent)
            .join(partners, partners.c.partner_id == events.c.partner_id)
            .where(events.c.dispatched_at.is_(None), events.c.delivery_status == "pending",
                   partners.c.webhook_url.is_not(None))
            .order_by(events.c.seq)
            .limit(limit)
        )
        async with self._reading() as conn:
            return [Undispatched(row.event_id, row.traceparent) for row in await conn.execute(query)]

    async def mark_dispatched(self, event_id: str) -> None:
        async with self._writing() as conn:
            await conn.execute(
                events.update().where(events.c.event_id == event_id, events.c.dispatched_at.is_(None))
                .values(dispatched_at=_now())
            )

    async def redelivering(self, event_id: str) -> None:
        """A redelivery was started: a failed event is pending again, and an undispatched one is
        dispatched (the redelivery is its delivery)."""
        async with self._writing() as conn:
            await conn.execute(
                events.update().where(events.c.event_id == event_id, events.c.delivery_status == "failed")
                .values(delivery_status="pending")
            )
            await conn.execute(
                events.update().where(events.c.event_id == event_id, events.c.dispatched_at.is_(None))
                .values(dispatched_at=_now())
            )

    async def owner(self, event_id: str) -> str | None:
        """The partner an event belongs to; None when there is no such event."""
        async with self._reading() as conn:
            return (
                await conn.execute(sa.select(events.c.partner_id).where(events.c.event_id == event_id))
            ).scalar_one_or_none()

    async def delivery_state(self, event_id: str) -> tuple[str, int]:
        """The event's delivery status and attempts so far, as the feed shows them."""
        async with self._reading() as conn:
            row = (
                await conn.execute(
                    sa.select(events.c.delivery_status, events.c.attempts).where(events.c.event_id == event_id)
                )
            ).one()
        return row.delivery_status, row.attempts

    async def record_attempt(self, event_id: str, delivered: bool, detail: str) -> None:
        values: dict[str, Any] = {"attempts": events.c.attempts + 1, "last_error": None if delivered else detail[:500]}
        if delivered:
            values |= {"delivery_status": "delivered", "delivered_at": _now()}
        async with self._writing() as conn:
            await conn.execute(events.update().where(events.c.event_id == event_id).values(**values))

    async def mark_failed(self, event_id: str) -> None:
        async with self._writing() as conn:
            await conn.execute(
                events.update()
                .where(events.c.event_id == event_id, events.c.delivery_status != "delivered")
                .values(delivery_status="failed")
            )

    async def feed(self, partner_id: str, after: str | None, limit: int) -> list[dict[str, Any]]:
        """The caller's events in feed order, after the given event id: only events whose transaction
        every reader sees as over, so a page never shows a later event before an earlier one commits
        (docs/triggers.md#the-feeds-order)."""
        position = sa.tuple_(events.c.xid, events.c.seq)
        query = (
            sa.select(events.c.payload, events.c.delivery_status, events.c.attempts)
            .where(events.c.partner_id == partner_id)
            .order_by(events.c.xid, events.c.seq)
            .limit(limit)
        )
        async with self._reading() as conn:
            if conn.dialect.name == "postgresql":
                # One statement, one snapshot: pg_current_snapshot() is the snapshot this statement
                # reads with, so every transaction below its xmin is over and, if it committed,
                # visible here. Whatever commits later has an xid at or above it: after this page.
                query = query.where(events.c.xid < _SETTLED_BELOW)
            if after:
                after_position = (
                    await conn.execute(
                        sa.select(events.c.xid, events.c.seq)
                        .where(events.c.event_id == after, events.c.partner_id == partner_id)
                    )
                ).first()
                if after_position is None:
                    return []
                query = query.where(position > sa.tuple_(*after_position))
            rows = (await conn.execute(query)).all()
        return [
            {**row.payload, "delivery": {"status": row.delivery_status, "attempts": row.attempts}} for row in rows
        ]


# The oldest transaction still in flight when the statement's snapshot was taken (as a bigint, as
# events.xid is stored): every event of an older one is settled.
_SETTLED_BELOW = sa.literal_column("pg_snapshot_xmin(pg_current_snapshot())::text::bigint", sa.BigInteger)
