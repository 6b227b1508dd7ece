"""The embedded sandbox supplier: the default behind the supplier port, backed by the products table.

Deterministic rule for testing refusals: a product whose carrier is ``XR`` or whose hotel /
service name contains ``REFUSE`` is refused by the supplier when cancelled.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from activities.ports import SupplierRefused
from domain.products import Segment
from store.sandbox_changes import SandboxChanges
from store.schema import products


def refuses_cancellation(details: dict) -> bool:
    return details.get("carrier") == "XR" or "REFUSE" in str(details.get("hotel") or details.get("name") or "")


class SandboxSupplier(SandboxChanges):
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def cancel_product(self, product_id: str, flow_code: str) -> None:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(products.c.status, products.c.cancelled_by, products.c.details).where(
                        products.c.product_id == product_id
                    )
                )
            ).first()
            if row is None:
                raise SupplierRefused("unknown_product")
            if row.cancelled_by == flow_code:
                return  # the same flow asking again (a retried activity): already done, never twice
            if row.status == "cancelled":
                raise SupplierRefused("already_cancelled")
            if refuses_cancellation(row.details):
                raise SupplierRefused("supplier_rule")
            # The status guard makes a concurrent second cancel with another code update nothing.
            result = await conn.execute(
                products.update()
                .where(products.c.product_id == product_id, products.c.status != "cancelled")
                .values(status="cancelled", cancelled_by=flow_code, updated_at=datetime.now(timezone.utc))
            )
            if result.rowcount != 1:
                raise SupplierRefused("already_cancelled")

    async def reschedule_product(self, product_id: str, segments: list[Segment], flow_code: str) -> None:
        """Move a flight to ``segments``. Setting the same segments twice changes nothing, so a
        retried call from the same flow is harmless without remembering its code."""
        moved = [segment.model_dump(mode="json") for segment in segments]
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(products.c.status, products.c.details).where(products.c.product_id == product_id)
                )
            ).first()
            if row is None:
                raise SupplierRefused("unknown_product")
            if row.details.get("kind") != "flight" or not segments:
                raise SupplierRefused("not_a_flight")
            if row.status == "cancelled":
                raise SupplierRefused("already_cancelled")
            if row.details.get("segments") == moved:
                return
            await conn.execute(
                products.update()
                .where(products.c.product_id == product_id)
                .values(
                    details={**row.details, "segments": moved},
                    start_at=segments[0].departure,
                    end_at=segments[-1].arrival,
                    updated_at=datetime.now(timezone.utc),
                )
            )
