"""The flight index (docs/rescheduling.md#disruptions): which products have a segment on a flight on a day,
read through the index's primary key (``store.flight_legs`` writes it), never product by product."""

from __future__ import annotations

import sqlalchemy as sa

from domain.disruptions import FlightRef
from store.db import Repository
from store.reservation_records import PRODUCT_COLUMNS, ProductRecord, product_record
from store.schema import flight_legs, products, reservations


def _on(flight: FlightRef) -> list[sa.ColumnElement[bool]]:
    return [flight_legs.c.carrier == flight.carrier, flight_legs.c.flight_number == flight.designator,
            flight_legs.c.departure_date == flight.departure_date,
            # Cancelled products have nothing left to reschedule.
            products.c.status != "cancelled"]


class FlightIndex(Repository):
    async def count_on(self, flight: FlightRef) -> int:
        """How many products, not cancelled, have a segment on ``flight``."""
        query = (sa.select(sa.func.count()).select_from(flight_legs.join(products, products.c.product_id == flight_legs.c.product_id))
                 .where(*_on(flight)))
        async with self._reading() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def products_on(self, flight: FlightRef, after_product_id: str | None, limit: int) -> list[ProductRecord]:
        """The products on ``flight`` (not cancelled) after ``after_product_id``, in product id order."""
        query = (
            sa.select(*PRODUCT_COLUMNS)
            .select_from(flight_legs.join(products, products.c.product_id == flight_legs.c.product_id)
                         .join(reservations, reservations.c.reservation_id == products.c.reservation_id))
            .where(*_on(flight))
            .order_by(flight_legs.c.product_id)
            .limit(limit)
        )
        if after_product_id is not None:
            query = query.where(flight_legs.c.product_id > after_product_id)
        async with self._reading() as conn:
            rows = (await conn.execute(query)).all()
        return [product_record(row) for row in rows]
