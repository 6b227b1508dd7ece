"""The sandbox supplier's side of changes and special requests, over the products table.

Deterministic rules a sandbox user can test against:

- Alternatives: ``domain.changes`` (three departures a day for flights, the same hotel for hotels).
- Changes: applied to the product as booked; refused only for a product that is unknown or cancelled.
- Special requests: the airline declines a request whose note contains ``decline`` (any case) and
  one on a cancelled product; it confirms every other one.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncEngine

from activities.ports import SupplierRefused
from domain.changes import Alternative, ChangeSearch, alternatives
from domain.products import ProductSpec
from domain.special_requests import SpecialRequestAsk, SupplierAnswer
from store.schema import products

DECLINE_WORD = "decline"
_PRODUCT: TypeAdapter[ProductSpec] = TypeAdapter(ProductSpec)


class SandboxChanges:
    """Mixed into ``SandboxSupplier``: the change and special-request methods of the supplier port."""

    _engine: AsyncEngine

    async def change_alternatives(self, product_id: str, search: ChangeSearch, now: datetime) -> list[Alternative]:
        async with self._engine.connect() as conn:
            details = (
                await conn.execute(sa.select(products.c.details).where(products.c.product_id == product_id))
            ).scalar_one_or_none()
        if details is None:
            return []
        return alternatives(_PRODUCT.validate_python(details), search, now)

    async def apply_change(self, product_id: str, itinerary: ProductSpec | None, flow_code: str) -> None:
        async with self._engine.begin() as conn:
            row = (
                await conn.execute(
                    sa.select(products.c.status, products.c.changed_by).where(products.c.product_id == product_id)
                )
            ).first()
            if row is None:
                raise SupplierRefused("unknown_product")
            if row.changed_by == flow_code:
                return  # the same flow asking again (a retried activity): already done
            if row.status == "cancelled":
                raise SupplierRefused("already_cancelled")
            values: dict[str, object] = {"changed_by": flow_code, "updated_at": datetime.now(timezone.utc)}
            if itinerary is not None:
                values |= {"details": itinerary.model_dump(mode="json"), "start_at": itinerary.start,
                           "end_at": itinerary.end}
            # The status guard keeps a product cancelled meanwhile cancelled.
            result = await conn.execute(
                products.update()
                .where(products.c.product_id == product_id, products.c.status != "cancelled")
                .values(**values)
            )
            if result.rowcount != 1:
                raise SupplierRefused("already_cancelled")

    async def answer_special_request(self, ask: SpecialRequestAsk) -> SupplierAnswer:
        async with self._engine.connect() as conn:
            status = (
                await conn.execute(sa.select(products.c.status).where(products.c.product_id == ask.product_id))
            ).scalar_one_or_none()
        if status in (None, "cancelled"):
            return SupplierAnswer(status="declined", reason="the product is cancelled")
        if DECLINE_WORD in (ask.note or "").lower():
            return SupplierAnswer(status="declined", reason="the airline cannot offer this request on this flight")
        return SupplierAnswer(status="confirmed")
