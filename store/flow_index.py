"""The flows index and the one-active-flow-per-product lock.

``record_flow`` is the outbox write: the flow's new state and the event reporting it land in
one transaction, so an event is never lost nor reported for a state that was not stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from activities.ports import LockOutcome
from domain.flow_info import FlowRecord, event_body
from store.money_effects import book_transition
from store.schema import events, flows, partners, product_locks, products


class FlowInProgress(Exception):
    def __init__(self, holder: str) -> None:
        super().__init__(f"product has an active flow {holder}")
        self.holder = holder


@dataclass(frozen=True)
class FlowRow:
    partner_id: str
    status: str
    info: dict[str, Any]  # the flow info as last recorded
    created_at: datetime


async def _insert_once(conn: AsyncConnection, statement: sa.Insert) -> bool:
    """Insert, or report False when the row exists (a savepoint keeps the outer transaction usable)."""
    try:
        async with conn.begin_nested():
            await conn.execute(statement)
        return True
    except sa.exc.IntegrityError:
        return False


def _index_row(record: FlowRecord) -> sa.Insert:
    return flows.insert().values(
        code=record.code,
        kind=str(record.kind),
        product_id=record.product_id,
        reservation_id=record.reservation_id,
        partner_id=record.partner_id,
        status=record.status,
        info=record.info,
        created_at=record.at,
        updated_at=record.at,
    )


async def _indexed(conn: AsyncConnection, code: str) -> bool:
    return (await conn.execute(sa.select(flows.c.code).where(flows.c.code == code))).first() is not None


class FlowIndex:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    # --- starting a flow ------------------------------------------------------------------

    async def open(self, record: FlowRecord) -> bool:
        """Take the product's lock and index the flow, atomically; raise :class:`FlowInProgress`.

        False, changing nothing, when this flow is indexed already: a retry of the request that
        opened it (the same Idempotency-Key names the same flow code).
        """
        async with self._engine.begin() as conn:
            if await _indexed(conn, record.code):
                return False
            locked = await _insert_once(
                conn,
                product_locks.insert().values(product_id=record.product_id, flow_code=record.code, acquired_at=record.at),
            )
            if not locked:
                holder = (
                    await conn.execute(
                        sa.select(product_locks.c.flow_code).where(product_locks.c.product_id == record.product_id)
                    )
                ).scalar_one_or_none()
                if holder == record.code:
                    return False  # its twin, racing, opened it
                raise FlowInProgress(holder or "unknown")
            await conn.execute(_index_row(record))
            return True

    async def index(self, record: FlowRecord) -> bool:
        """Index a flow without taking the product's lock: a schedule change takes it in its workflow,
        when its turn comes. False when the flow is indexed already (a re-delivered push)."""
        async with self._engine.begin() as conn:
            return await _insert_once(conn, _index_row(record))

    async def abandon(self, code: str) -> None:
        """Undo :meth:`open` for a flow whose workflow never started (the gateway failed to start it)."""
        async with self._engine.begin() as conn:
            await conn.execute(product_locks.delete().where(product_locks.c.flow_code == code))
            await conn.execute(flows.delete().where(flows.c.code == code))

    async def lock_holder(self, product_id: str) -> str | None:
        async with self._engine.connect() as conn:
            return (
                await conn.execute(sa.select(product_locks.c.flow_code).where(product_locks.c.product_id == product_id))
            ).scalar_one_or_none()

    # --- the FlowStore port ---------------------------------------------------------------

    async def record_flow(self, record: FlowRecord) -> bool:
        push = False
        async with self._engine.begin() as conn:
            await conn.execute(
                flows.update()
                .where(flows.c.code == record.code)
                .values(status=record.status, info=record.info, updated_at=record.at)
            )
            if record.event_type and record.event_id:
                await _insert_once(
                    conn,
                    events.insert().values(
                        event_id=record.event_id,
                        partner_id=record.partner_id,
                        type=record.event_type,
                        flow_code=record.code,
                        payload=event_body(record.event_id, record.event_type, record.at, record.info),
                        created_at=record.at,
                        delivery_status="pending",
                        attempts=0,
                    ),
                )
                push = bool(
                    (
                        await conn.execute(
                            sa.select(partners.c.webhook_url).where(partners.c.partner_id == record.partner_id)
                        )
                    ).scalar_one_or_none()
                )
            if record.terminal:
                await conn.execute(
                    product_locks.delete().where(
                        product_locks.c.product_id == record.product_id, product_locks.c.flow_code == record.code
                    )
                )
            # The money the transition moves, in its transaction and once (docs/settlement.md).
            await book_transition(conn, record)
        return push

    async def acquire(self, product_id: str, flow_code: str, at: datetime) -> LockOutcome:
        async with self._engine.begin() as conn:
            holder = (
                await conn.execute(sa.select(product_locks.c.flow_code).where(product_locks.c.product_id == product_id))
            ).scalar_one_or_none()
            if holder == flow_code:
                return "acquired"
            status = (
                await conn.execute(sa.select(products.c.status).where(products.c.product_id == product_id))
            ).scalar_one_or_none()
            if status in (None, "cancelled"):
                return "product_cancelled"
            # The primary key decides a race with a flow starting now, as in :meth:`open`.
            if holder is None and await _insert_once(
                conn, product_locks.insert().values(product_id=product_id, flow_code=flow_code, acquired_at=at)
            ):
                return "acquired"
            return "busy"

    # --- reading flows --------------------------------------------------------------------

    async def flow(self, code: str) -> FlowRow | None:
        async with self._engine.connect() as conn:
            row = (
                await conn.execute(
                    sa.select(flows.c.partner_id, flows.c.status, flows.c.info, flows.c.created_at).where(
                        flows.c.code == code
                    )
                )
            ).first()
        return None if row is None else FlowRow(row.partner_id, row.status, row.info, row.created_at)

    async def infos(self, kind: str, status: str | None, limit: int, after: str | None) -> list[dict[str, Any]]:
        query = sa.select(flows.c.info).where(flows.c.kind == kind).order_by(flows.c.code).limit(limit)
        if status:
            query = query.where(flows.c.status == status)
        if after:
            query = query.where(flows.c.code > after)
        async with self._engine.connect() as conn:
            return [row.info for row in (await conn.execute(query)).all()]
