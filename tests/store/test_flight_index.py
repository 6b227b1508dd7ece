"""The flight index (store.flight_legs, store.flight_index): written with the sale, moved with the product's
itinerary, written for products sold before migration 0010, and read by flight and day without the
cancelled products."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta, timezone

import sqlalchemy as sa

from domain.disruptions import FlightRef
from domain.products import ReservationSpec
from store.flight_legs import reindex_flight_legs
from store.repositories import Store
from store.schema import flight_legs, products
from tests.api.conftest import flight, reservation_body
from tests.migrating import from_revision

DAY = datetime(2031, 3, 14, 21, 30, tzinfo=timezone(timedelta(hours=-5)))  # the 15th in UTC
# The PostgreSQL database is shared by the tests of a run: each test's flights are its own.
NUMBERS = random.Random()


def numbers() -> tuple[str, str]:
    first, second = NUMBERS.randrange(1000, 10000), NUMBERS.randrange(100, 1000)  # second: "ZZ0…" fits too
    return str(first), str(second)


def connecting(first: str, second: str, carrier: str = "ZZ") -> dict[str, object]:
    body = flight(carrier=carrier)
    body["segments"] = [
        {"origin": "MAD", "destination": "CDG", "departure": DAY.isoformat(), "arrival": (DAY + timedelta(hours=2)).isoformat(),
         "flight_number": first},
        {"origin": "CDG", "destination": "JFK", "departure": (DAY + timedelta(hours=2, minutes=29)).isoformat(),
         "arrival": (DAY + timedelta(hours=11)).isoformat(), "flight_number": second},
    ]
    return body


async def sell(store: Store, *products_sold: dict[str, object]) -> list[str]:
    partner, _key = await store.accounts.create_partner("Acme", None)
    spec = ReservationSpec.model_validate(reservation_body(*products_sold))
    reservation_id = await store.reservations.create(partner.partner_id, spec, random.Random())
    return [p.product_id for p in await store.reservations.products_of(reservation_id)]


async def test_a_sale_indexes_each_segment_by_its_local_departure_day(store: Store) -> None:
    a, b = numbers()
    connection, other = await sell(store, connecting(f"ZZ{a}", f"ZZ0{b}"), connecting(f"AB{a}", f"AB{b}", carrier="AB"))
    # The local day (the 14th), the number without its leading zero, whatever the number was written with.
    assert await store.flights.count_on(FlightRef(carrier="ZZ", flight_number=f"ZZ{a}", departure_date=date(2031, 3, 14))) == 1
    assert await store.flights.count_on(FlightRef(carrier="ZZ", flight_number=b, departure_date=date(2031, 3, 14))) == 1
    assert await store.flights.count_on(FlightRef(carrier="ZZ", flight_number=f"ZZ{a}", departure_date=date(2031, 3, 15))) == 0
    found = await store.flights.products_on(FlightRef(carrier="ZZ", flight_number=a, departure_date=date(2031, 3, 14)), None, 10)
    assert [p.product_id for p in found] == [connection]
    assert [p.product_id for p in await store.flights.products_on(
        FlightRef(carrier="AB", flight_number=f"AB{a}", departure_date=date(2031, 3, 14)), None, 10)] == [other]


async def test_pages_in_product_order_and_leaves_cancelled_products_out(store: Store) -> None:
    a, b = numbers()
    sold = sorted(await sell(store, *(connecting(f"ZZ{a}", f"ZZ{b}") for _ in range(5))))
    on = FlightRef(carrier="ZZ", flight_number=f"ZZ{a}", departure_date=date(2031, 3, 14))
    first = await store.flights.products_on(on, None, 2)
    rest = await store.flights.products_on(on, first[-1].product_id, 10)
    assert [p.product_id for p in first + rest] == sold
    async with store.engine.begin() as conn:
        await conn.execute(products.update().where(products.c.product_id == sold[2]).values(status="cancelled"))
    assert await store.flights.count_on(on) == 4
    assert sold[2] not in [p.product_id for p in await store.flights.products_on(on, None, 10)]


async def test_a_new_itinerary_moves_the_product_to_its_new_flights(store: Store) -> None:
    a, b = numbers()
    [product_id] = await sell(store, connecting(f"ZZ{a}", f"ZZ{b}"))
    moved = connecting(f"ZZ{a}", f"ZZ{b}")
    moved["segments"][0]["departure"] = (DAY + timedelta(days=1)).isoformat()  # type: ignore[index]
    moved["segments"][0]["arrival"] = (DAY + timedelta(days=1, hours=2)).isoformat()  # type: ignore[index]
    moved["segments"] = moved["segments"][:1]  # type: ignore[index]
    async with store.engine.begin() as conn:
        await reindex_flight_legs(conn, product_id, moved)
    assert await store.flights.count_on(FlightRef(carrier="ZZ", flight_number=f"ZZ{a}", departure_date=date(2031, 3, 14))) == 0
    assert await store.flights.count_on(FlightRef(carrier="ZZ", flight_number=f"ZZ{a}", departure_date=date(2031, 3, 15))) == 1
    assert await store.flights.count_on(FlightRef(carrier="ZZ", flight_number=f"ZZ{b}", departure_date=date(2031, 3, 14))) == 0


async def test_migration_0010_indexes_the_flights_sold_before_it(store: Store) -> None:
    a, b = numbers()
    sold = await sell(store, connecting(f"ZZ{a}", f"ZZ{b}"), flight())
    mine = flight_legs.c.product_id.in_(sold)
    async with store.engine.begin() as conn:
        await conn.execute(flight_legs.delete().where(mine))
    async with from_revision(store, "0009"):
        pass  # the rows the block would write are there already: as 0009 had them, without their legs
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(flight_legs.c.product_id, flight_legs.c.flight_number).where(mine))).all()
    assert sorted(rows) == sorted([(sold[0], f"ZZ{a}"), (sold[0], f"ZZ{b}"), (sold[1], "ZZ101")])
