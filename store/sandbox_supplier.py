"""The embedded sandbox supplier: the default behind the supplier port, backed by the products table.

Deterministic rule for testing refusals: a product whose carrier is ``XR`` or whose hotel /
service name contains ``REFUSE`` is refused by the supplier when cancelled.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from activities.ports import SupplierRefused
from store.schema import products


def refuses_cancellation(details: dict) -> bool:
    return details.get("carrier") == "XR" or "REFUSE" in str(details.get("hotel") or details.get("name") or "")


class SandboxSupplier:
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
