"""Writing the flight index (docs/rescheduling.md#disruptions): a flight product's legs, in the transaction
that sells it (``store.reservation_records``); migration 0010 wrote those of the products sold before with
the same :func:`legs_of`. ``store.flight_index`` reads it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from domain.disruptions import flight_designator
from store.schema import flight_legs

Leg = tuple[str, str, date]


def legs_of(details: Any) -> set[Leg]:
    """(carrier, flight number, local departure date) of each segment of a product as stored (its
    ``details``); none for a product that is not a flight."""
    if not isinstance(details, dict) or details.get("kind") != "flight":
        return set()
    carrier = str(details["carrier"])
    return {(carrier, flight_designator(str(s["flight_number"])), datetime.fromisoformat(str(s["departure"])).date())
            for s in details.get("segments") or []}


def leg_rows(sold: Iterable[tuple[str, Any]]) -> list[dict[str, Any]]:
    """The index rows of products (their id and ``details``)."""
    return [{"carrier": carrier, "flight_number": number, "departure_date": day, "product_id": product_id}
            for product_id, details in sold for carrier, number, day in sorted(legs_of(details))]


async def write_flight_legs(conn: AsyncConnection, sold: Iterable[tuple[str, Any]]) -> None:
    """Index products just sold, in the caller's transaction."""
    rows = leg_rows(sold)
    if rows:
        await conn.execute(flight_legs.insert(), rows)




async def reindex_flight_legs(conn: AsyncConnection, product_id: str, details: Any) -> None:
    """A product's new itinerary (a change, a rescheduling applied), in the caller's transaction: the
    flights it is on now, and no longer those it left."""
    await conn.execute(flight_legs.delete().where(flight_legs.c.product_id == product_id))
    await write_flight_legs(conn, [(product_id, details)])
