"""Reservations and their products, and the reservation view (docs/api.md#reservations)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncConnection

from domain import settlement
from domain.allowance import ProductState
from domain.codes import PRODUCT_ID, RESERVATION_ID, FlowKind
from domain.flow_info import FlowRecord
from domain.money import Money
from domain.partial_cancellation import confirmed
from domain.products import ProductSpec, ReservationSpec
from domain.travellers import Fare, TravellerState, states, total
from store.db import HotRead, Repository, insert_once
from store.flight_legs import write_flight_legs
from store.money_effects import write
from store.schema import flows, products, reservations

_PRODUCT = TypeAdapter(ProductSpec)


@dataclass(frozen=True)
class ProductRecord:
    product_id: str
    reservation_id: str
    partner_id: str
    reservation_status: str
    kind: str
    status: str
    start: datetime
    end: datetime
    details: dict[str, Any]
    cancelled_by: str | None
    # The reservation's travellers (for a product stored before it named its own) and those of the
    # product cancelled one by one: traveller id → flow code (docs/api.md#partial-cancellation).
    reservation_travellers: list[dict[str, Any]]
    cancelled_travellers: dict[str, str] | None

    @property
    def spec(self) -> ProductSpec:
        return _PRODUCT.validate_python(self.details)

    def fares(self) -> list[Fare]:
        """Each traveller the product covers, with its fare."""
        return self.spec.fares_for([t["traveller_id"] for t in self.reservation_travellers])

    def remaining_paid(self) -> Money | None:
        """What the travellers still confirmed paid (docs/api.md#partial-cancellation); None when nobody remains."""
        fares = confirmed(self.fares(), self.cancelled_travellers or {})
        return total(fare.amount for fare in fares) if fares else None

    def travellers(self) -> list[TravellerState]:
        return states(self.fares(), self.cancelled_travellers or {}, self.status == "cancelled")

    def state(self, flow_in_progress: bool) -> ProductState:
        """The facts an allowance is decided on."""
        return ProductState(
            kind=self.kind,
            status=self.status,
            reservation_status=self.reservation_status,
            start=self.start,
            end=self.end,
            flow_in_progress=flow_in_progress,
        )

    def view(self) -> dict[str, Any]:
        return {
            "product_id": self.product_id,
            "kind": self.kind,
            "status": self.status,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            **{k: v for k, v in self.details.items() if k != "kind"},
            "travellers": self._traveller_view(),
        }

    def _traveller_view(self) -> list[dict[str, Any]]:
        """``travellers`` as the reservation shows them, read from the stored fares as they are (already
        in JSON mode): the reservation read is the API's hot path, and validating the whole product
        again for it costs ~100 µs a three-traveller flight against ~4 µs for the whole view (bench.traveller_view)."""
        fares = self.details.get("fares")
        if fares is None:  # a product no migration reached yet (none after 0014): the defaults, validated
            return [state.model_dump(mode="json") for state in self.travellers()]
        gone = self.cancelled_travellers or {}
        whole = self.status == "cancelled"
        return [{"traveller_id": fare["traveller_id"],
                 "status": "cancelled" if whole or fare["traveller_id"] in gone else "confirmed",
                 "fare": fare["amount"]} for fare in fares]


# Labelled as ProductRecord's fields, so a row becomes a record as it is.
PRODUCT_COLUMNS = (
    products.c.product_id,
    products.c.reservation_id,
    reservations.c.partner_id,
    reservations.c.status.label("reservation_status"),
    products.c.kind,
    products.c.status,
    products.c.start_at.label("start"),
    products.c.end_at.label("end"),
    products.c.details,
    products.c.cancelled_by,
    reservations.c.travellers.label("reservation_travellers"),
    products.c.cancelled_travellers,
)


PRODUCT_FIELDS = tuple(column.name for column in PRODUCT_COLUMNS)

# The hot reads, built once: building a statement costs more than running it on SQLite.
_PRODUCT_BY_ID = (
    sa.select(*PRODUCT_COLUMNS)
    .join(reservations, reservations.c.reservation_id == products.c.reservation_id)
    .where(products.c.product_id == sa.bindparam("product_id"))
)
_RESERVATION_WITH_PRODUCTS = HotRead(
    sa.select(
        reservations.c.reservation_id.label("id"),
        reservations.c.created_at.label("reserved_at"),
        *PRODUCT_COLUMNS,
    )
    .select_from(reservations.outerjoin(products))
    .where(reservations.c.reservation_id == sa.bindparam("reservation_id"))
    .order_by(products.c.position)
)
_RESERVATION_FLOWS = HotRead(
    sa.select(flows.c.code, flows.c.kind, flows.c.product_id, flows.c.status, flows.c.created_at, flows.c.updated_at)
    .where(flows.c.reservation_id == sa.bindparam("reservation_id"))
    .order_by(flows.c.created_at.desc(), flows.c.code)
)


def product_record(row: Any) -> ProductRecord:
    return _record(row._mapping)


def _record(fields: Any) -> ProductRecord:
    """A record of anything subscriptable by :data:`PRODUCT_FIELDS` (a row's mapping, a driver's record)."""
    return ProductRecord(**{name: fields[name] for name in PRODUCT_FIELDS})


class Reservations(Repository):
    async def create(self, partner_id: str, spec: ReservationSpec, ids: random.Random) -> str:
        """Create the reservation with ids drawn from ``ids``; when a reservation with the first of
        them exists already (a retry under the same Idempotency-Key), create nothing: its id."""
        reservation_id = RESERVATION_ID.new(ids)
        now = datetime.now(timezone.utc)
        product_status = "pending" if spec.status == "pending" else "confirmed"
        sold = [(PRODUCT_ID.new(ids), product) for product in spec.sold()]
        async with self._writing() as conn:
            created = await insert_once(conn, reservations, {
                "reservation_id": reservation_id,
                "partner_id": partner_id,
                "status": spec.status,
                "travellers": [t.model_dump(mode="json") for t in spec.travellers],
                "created_at": now,
            }, key=("reservation_id",))
            if not created:
                return reservation_id
            await conn.execute(
                products.insert(),
                [
                    {
                        "product_id": product_id,
                        "reservation_id": reservation_id,
                        "position": position,
                        "kind": product.kind,
                        "status": product_status,
                        "start_at": product.start,
                        "end_at": product.end,
                        "details": product.model_dump(mode="json"),
                        "cancelled_by": None,
                        "updated_at": now,
                    }
                    for position, (product_id, product) in enumerate(sold)
                ],
            )
            await write_flight_legs(conn, [(product_id, product.model_dump(mode="json")) for product_id, product in sold])
            # The sale's fares and deposits, in the transaction that creates it (docs/settlement.md).
            await write(conn, settlement.sale(reservation_id, partner_id, sold), now)
        return reservation_id

    async def view(self, reservation_id: str) -> dict[str, Any] | None:
        """The reservation as docs/api.md#reservations shows it, with ``partner_id`` for the caller's ownership check.

        Two statements (the reservation with its products, then its flows): the hot read of the
        API, so no more round trips than that."""
        async with self._hot_reading() as read:
            product_rows = await read.rows(_RESERVATION_WITH_PRODUCTS, reservation_id=reservation_id)
            if not product_rows:
                return None
            flow_rows = await read.rows(_RESERVATION_FLOWS, reservation_id=reservation_id)
        first = product_rows[0]
        return {
            "reservation_id": first["id"],
            "partner_id": first["partner_id"],
            "status": first["reservation_status"],
            "created_at": first["reserved_at"].isoformat(),
            "travellers": first["reservation_travellers"],
            "products": [_record(row).view() for row in product_rows if row["product_id"] is not None],
            "flows": [
                {
                    "code": row["code"],
                    "kind": row["kind"],
                    "product_id": row["product_id"],
                    "status": row["status"],
                    "created_at": row["created_at"].isoformat(),
                    "updated_at": row["updated_at"].isoformat(),
                }
                for row in flow_rows
            ],
        }

    async def product(self, product_id: str) -> ProductRecord | None:
        async with self._reading() as conn:
            row = (await conn.execute(_PRODUCT_BY_ID, {"product_id": product_id})).first()
        return None if row is None else product_record(row)

    async def products_of(self, reservation_id: str) -> list[ProductRecord]:
        """The reservation's products in the order they were sold."""
        async with self._reading() as conn:
            rows = (
                await conn.execute(
                    sa.select(*PRODUCT_COLUMNS)
                    .join(reservations, reservations.c.reservation_id == products.c.reservation_id)
                    .where(products.c.reservation_id == reservation_id)
                    .order_by(products.c.position)
                )
            ).all()
        return [product_record(row) for row in rows]


async def cancel_travellers(conn: AsyncConnection, record: FlowRecord) -> None:
    """A cancellation that named its travellers ends ``cancelled``: they are cancelled, in the transaction
    that records it (``store.flow_index``), and the product with them once none of its travellers
    remains (docs/api.md#partial-cancellation). Recording it again changes nothing."""
    named = record.info.get("traveller_ids")
    if record.kind != FlowKind.CANCELLATION or record.status != "cancelled" or not named:
        return
    row = (await conn.execute(
        sa.select(products.c.details, products.c.cancelled_travellers, products.c.status)
        .where(products.c.product_id == record.product_id)
    )).first()
    if row is None:
        raise LookupError(f"flow {record.code} names product {record.product_id}, which does not exist")
    gone = dict(row.cancelled_travellers or {})
    for traveller_id in named:
        gone.setdefault(traveller_id, record.code)
    values: dict[str, Any] = {"cancelled_travellers": gone, "updated_at": record.at}
    covered = row.details.get("traveller_ids") or named
    if row.status != "cancelled" and not set(covered) - set(gone):
        values |= {"status": "cancelled", "cancelled_by": record.code}
    await conn.execute(products.update().where(products.c.product_id == record.product_id).values(**values))
