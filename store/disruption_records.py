"""Disruptions as received (docs/rescheduling.md#disruptions): one row per (supplier, change id), and their
progress read from the flows their fan-out started (``flows.disruption_id``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa

from domain.disruptions import Disruption, FlightScheduleChange
from store.db import Repository, insert_once
from store.schema import disruptions, flows


def _disruption(row: Any) -> Disruption:
    return Disruption(disruption_id=row.disruption_id, supplier_id=row.supplier_id,
                      change=FlightScheduleChange.model_validate(row.change), affected=row.affected,
                      created_at=row.created_at)


class DisruptionRecords(Repository):
    async def record(self, disruption: Disruption) -> Disruption:
        """Record a disruption once: the one recorded first for its supplier and change id (a repeated
        push, also a concurrent one, finds it; the first push's content wins)."""
        async with self._writing() as conn:
            await insert_once(conn, disruptions, {
                "disruption_id": disruption.disruption_id,
                "supplier_id": disruption.supplier_id,
                "change_id": disruption.change.change_id,
                "change": disruption.change.model_dump(mode="json"),
                "affected": disruption.affected,
                "created_at": disruption.created_at,
                "launched_at": None,
            })
            row = (await conn.execute(sa.select(disruptions).where(
                disruptions.c.supplier_id == disruption.supplier_id,
                disruptions.c.change_id == disruption.change.change_id))).one()
        return _disruption(row)

    async def get(self, disruption_id: str) -> Disruption | None:
        async with self._reading() as conn:
            row = (await conn.execute(sa.select(disruptions).where(disruptions.c.disruption_id == disruption_id))).first()
        return None if row is None else _disruption(row)

    async def launched(self, disruption_id: str) -> None:
        """Its fan-out workflow is started: the reconciler leaves it alone."""
        async with self._writing() as conn:
            await conn.execute(disruptions.update().where(
                disruptions.c.disruption_id == disruption_id, disruptions.c.launched_at.is_(None),
            ).values(launched_at=datetime.now(timezone.utc)))

    async def unlaunched(self, received_before: datetime, limit: int) -> list[str]:
        """Disruptions received before ``received_before`` whose fan-out a crash may not have started."""
        query = (sa.select(disruptions.c.disruption_id)
                 .where(disruptions.c.launched_at.is_(None), disruptions.c.created_at < received_before)
                 .order_by(disruptions.c.created_at).limit(limit))
        async with self._reading() as conn:
            return list((await conn.execute(query)).scalars())

    async def flows_by_status(self, disruption_id: str) -> dict[str, int]:
        """How many of its flows are in each status."""
        query = (sa.select(flows.c.status, sa.func.count()).where(flows.c.disruption_id == disruption_id)
                 .group_by(flows.c.status))
        async with self._reading() as conn:
            return {status: int(n) for status, n in (await conn.execute(query)).all()}

    async def page(self, limit: int, after: tuple[datetime, str] | None, supplier_id: str | None = None
                   ) -> tuple[list[Disruption], tuple[datetime, str] | None]:
        """Newest first (keyset on received time and id); the position of the page's end when more follow."""
        query = sa.select(disruptions).order_by(disruptions.c.created_at.desc(), disruptions.c.disruption_id.desc())
        if supplier_id is not None:
            query = query.where(disruptions.c.supplier_id == supplier_id)
        if after is not None:
            at, disruption_id = after
            query = query.where(disruptions.c.created_at <= at, sa.or_(
                disruptions.c.created_at < at, disruptions.c.disruption_id < disruption_id))
        async with self._reading() as conn:
            rows = (await conn.execute(query.limit(limit + 1))).all()
        found = [_disruption(row) for row in rows[:limit]]
        more = len(rows) > limit
        return found, ((found[-1].created_at, found[-1].disruption_id) if more and found else None)
