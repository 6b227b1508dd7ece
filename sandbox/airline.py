"""The sandbox supplier: the adapter behind the supplier port when ``AFTERSALES_SUPPLIER=sandbox``
(the default), backed by the products table of the embedded reservations.

Deterministic rules a sandbox user can test against (docs/api.md#sandbox):

- Cancellation: refused for a product whose carrier is ``XR`` or whose hotel / service name
  contains ``REFUSE``; cancelling again with the same flow code is a no-op.
- Alternatives: ``sandbox.alternatives`` (three departures a day for flights, the same hotel for hotels).
- Changes and reschedulings: applied to the product as booked; refused only for a product that is
  unknown or cancelled.
- Checkouts are paid by ``card``, ``bank_transfer`` or ``invoice``.
- Special requests: the airline answers ``AFTERSALES_SANDBOX_SUPPLIER_DELAY`` after the request; it
  declines a request whose note contains ``decline`` (any case) and one on a cancelled product, and
  confirms every other one.

Nothing outside this package imports it: ``ports.supplier`` loads it by name.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from config.settings import Settings
from domain.change_pricing import ChangeAlternative, ChangeSearch
from domain.products import ProductSpec, Segment
from domain.special_request_flow import SpecialRequestAsk, SupplierAnswer
from ports.supplier import SupplierRefused
from sandbox.alternatives import alternatives
from store.db import Repository
from store.flight_legs import reindex_flight_legs
from store.schema import products

DECLINE_WORD = "decline"
PAYMENT_METHODS: tuple[str, ...] = ("card", "bank_transfer", "invoice")
_PRODUCT: TypeAdapter[ProductSpec] = TypeAdapter(ProductSpec)


def refuses_cancellation(details: dict[str, Any]) -> bool:
    return details.get("carrier") == "XR" or "REFUSE" in str(details.get("hotel") or details.get("name") or "")


def build(settings: Settings, engine: AsyncEngine) -> SandboxSupplier:
    """The factory ``AFTERSALES_SUPPLIER=sandbox`` names."""
    return SandboxSupplier(engine, settings.sandbox_supplier_delay)


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _row(conn: AsyncConnection, product_id: str, *columns: sa.ColumnElement[Any]) -> sa.Row[Any]:
    row = (await conn.execute(sa.select(*columns).where(products.c.product_id == product_id))).first()
    if row is None:
        raise SupplierRefused("unknown_product")
    return row


async def _update_unless_cancelled(conn: AsyncConnection, product_id: str, **values: Any) -> None:
    """The status guard keeps a product cancelled meanwhile (by a concurrent flow) cancelled."""
    result = await conn.execute(
        products.update()
        .where(products.c.product_id == product_id, products.c.status != "cancelled")
        .values(updated_at=_now(), **values)
    )
    if result.rowcount != 1:
        raise SupplierRefused("already_cancelled")
    if "details" in values:
        # The flights it is on now are the ones a disruption finds it by.
        await reindex_flight_legs(conn, product_id, values["details"])


class SandboxSupplier(Repository):
    def __init__(self, engine: AsyncEngine, answer_delay: timedelta) -> None:
        super().__init__(engine)
        self._answer_delay = answer_delay

    async def cancel_product(self, product_id: str, flow_code: str, traveller_ids: list[str] | None = None) -> None:
        """The whole product, or ``traveller_ids`` of it: the product is cancelled once none of its
        travellers remains; Aftersales records which travellers a flow cancelled when the flow ends
        (store.reservation_records.cancel_travellers)."""
        async with self._writing() as conn:
            row = await _row(conn, product_id, products.c.status, products.c.cancelled_by, products.c.details,
                             products.c.cancelled_travellers)
            if row.cancelled_by == flow_code:
                return  # the same flow asking again (a retried activity): already done, never twice
            if row.status == "cancelled":
                raise SupplierRefused("already_cancelled")
            gone = row.cancelled_travellers or {}
            if traveller_ids is not None and any(gone.get(t, flow_code) != flow_code for t in traveller_ids):
                raise SupplierRefused("already_cancelled")
            if refuses_cancellation(row.details):
                raise SupplierRefused("supplier_rule")
            covered = row.details.get("traveller_ids")
            if traveller_ids is not None and covered and set(covered) - set(gone) - set(traveller_ids):
                return  # travellers remain: the product stays
            await _update_unless_cancelled(conn, product_id, status="cancelled", cancelled_by=flow_code)

    async def reschedule_product(self, product_id: str, segments: list[Segment], flow_code: str) -> None:
        """Setting the same segments twice changes nothing, so a retried call from the same flow is
        harmless without remembering its code."""
        moved = [segment.model_dump(mode="json") for segment in segments]
        async with self._writing() as conn:
            row = await _row(conn, product_id, products.c.status, products.c.details)
            if row.details.get("kind") != "flight" or not segments:
                raise SupplierRefused("not_a_flight")
            if row.status == "cancelled":
                raise SupplierRefused("already_cancelled")
            if row.details.get("segments") == moved:
                return
            await _update_unless_cancelled(
                conn, product_id, details={**row.details, "segments": moved},
                start_at=segments[0].departure, end_at=segments[-1].arrival,
            )

    async def change_alternatives(self, product_id: str, search: ChangeSearch, now: datetime) -> list[ChangeAlternative]:
        async with self._reading() as conn:
            details = (
                await conn.execute(sa.select(products.c.details).where(products.c.product_id == product_id))
            ).scalar_one_or_none()
        if details is None:
            return []
        return alternatives(_PRODUCT.validate_python(details), search, now)

    async def payment_methods(self, product_id: str) -> list[str]:
        return list(PAYMENT_METHODS)

    async def apply_change(self, product_id: str, itinerary: ProductSpec | None, flow_code: str) -> None:
        async with self._writing() as conn:
            row = await _row(conn, product_id, products.c.status, products.c.changed_by)
            if row.changed_by == flow_code:
                return  # the same flow asking again (a retried activity): already done
            if row.status == "cancelled":
                raise SupplierRefused("already_cancelled")
            values: dict[str, Any] = {"changed_by": flow_code}
            if itinerary is not None:
                values |= {"details": itinerary.model_dump(mode="json"), "start_at": itinerary.start,
                           "end_at": itinerary.end}
            await _update_unless_cancelled(conn, product_id, **values)

    async def submit_special_request(self, ask: SpecialRequestAsk) -> timedelta:
        return self._answer_delay

    async def answer_special_request(self, ask: SpecialRequestAsk) -> SupplierAnswer:
        async with self._reading() as conn:
            status = (
                await conn.execute(sa.select(products.c.status).where(products.c.product_id == ask.product_id))
            ).scalar_one_or_none()
        if status in (None, "cancelled"):
            return SupplierAnswer(status="declined", reason="the product is cancelled")
        if DECLINE_WORD in (ask.note or "").lower():
            return SupplierAnswer(status="declined", reason="the airline cannot offer this request on this flight")
        return SupplierAnswer(status="confirmed")
