"""The store tells a record it refuses for good from an outage (docs/operations.md#a-refused-record), on
SQLite and PostgreSQL: a refused record raises ``RecordRefused``, writes nothing of itself and marks the
flow's row as parked until a record of it succeeds; a lost connection, a lock or a serialization
conflict is not a refusal (Temporal retries it)."""

from __future__ import annotations

import random
import secrets
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from domain.cancellation_flow import CancellationInfo
from domain.codes import EVENT_ID, FlowKind, new_flow_code
from domain.flow_info import FlowRecord
from domain.money import Money
from domain.products import ReservationSpec
from domain.refusals import Refusal, Refused
from ports.recording import RecordRefused
from store.db import refused_for_good
from store.repositories import Store
from store.schema import events, flows, payments, product_locks

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
RNG = secrets.SystemRandom()
# What input allowed before its bounds (domain.input_bounds): a fare just under 10^18.
HUGE = "999999999999999999.99"


def spec(*prices: str) -> ReservationSpec:
    # Validated as a stored reservation is read back, without a request's bounds.
    return ReservationSpec.model_validate({
        "travellers": [{"traveller_id": "T1", "name": "Ada"}],
        "products": [{
            "kind": "other", "name": "Transfer", "starts_at": "2027-01-01T10:00:00+00:00",
            "ends_at": "2027-01-01T11:00:00+00:00", "price": {"amount": price, "currency": "EUR"}, "vat_rate": "0.10",
            "cancellation_policy": {"mode": "automatic"},
        } for price in prices],
    })


def cancellation(code: str, partner_id: str, reservation_id: str, product_id: str, status: str, paid: str) -> FlowRecord:
    money = Money.of(paid, "EUR")
    info = CancellationInfo(code=code, product_id=product_id, reservation_id=reservation_id, partner_id=partner_id,
                            status=status, resolution="automatic", paid=money, penalty=Money.zero("EUR"), refund=money)
    event = (EVENT_ID.secure(), "cancellation.completed") if status == "cancelled" else (None, None)
    return FlowRecord.of(info, FlowKind.CANCELLATION, NOW, *event)


async def opened(store: Store, *prices: str) -> tuple[FlowRecord, FlowRecord]:
    """A reservation sold at ``prices`` and a cancellation of its first product, opened as ``processing``;
    that record and the ``cancelled`` one that follows it."""
    partner, _ = await store.accounts.create_partner("Acme", None)
    reservation_id = await store.reservations.create(partner.partner_id, spec(*prices), random.Random())
    product_id = (await store.reservations.products_of(reservation_id))[0].product_id
    code = new_flow_code(FlowKind.CANCELLATION, RNG)
    processing = cancellation(code, partner.partner_id, reservation_id, product_id, "processing", prices[0])
    assert await store.flows.open(processing, {})
    final = cancellation(code, partner.partner_id, reservation_id, product_id, "cancelled", prices[0])
    # The history the workflow records: one more transition.
    final = final.model_copy(update={"info": {**final.info, "history": [{"at": NOW.isoformat(), "event": "processing"},
                                                                         {"at": NOW.isoformat(), "event": "cancelled"}]}})
    return processing, final


async def nothing_written(store: Store, record: FlowRecord) -> None:
    """Nothing of the refused record is written; the flow's row says it is parked, and why."""
    [parked] = [row for row in await store.flows.refused_records(500) if row.code == record.code]
    assert (parked.kind, parked.partner_id, parked.status) == ("cancellation", record.partner_id, "processing")
    assert parked.reason and parked.since.tzinfo is not None
    async with store.engine.connect() as conn:
        status = (await conn.execute(sa.select(flows.c.status).where(flows.c.code == record.code))).scalar_one()
        stored_events = (await conn.execute(sa.select(events.c.event_id).where(events.c.flow_code == record.code))).all()
        refunded = (await conn.execute(sa.select(payments.c.seq).where(payments.c.flow_code == record.code))).all()
        holder = (await conn.execute(
            sa.select(product_locks.c.flow_code).where(product_locks.c.product_id == record.product_id))).scalar_one()
    assert (status, stored_events, refunded, holder) == ("processing", [], [], record.code)


async def test_the_issues_reservation_is_refused_for_good_and_writes_nothing(store: Store) -> None:
    """Two fares of 999,999,999,999,999,999.99 EUR, stored before the input bounds: the refund's books
    add up beyond what the arithmetic holds. The record is refused, not retried as an outage."""
    _, final = await opened(store, HUGE, HUGE)

    with pytest.raises(RecordRefused, match=r"smaller than 10\^18"):
        await store.flows.record_flow(final)

    await nothing_written(store, final)


async def test_a_value_its_column_cannot_hold_is_refused_for_good(store: Store) -> None:
    _, final = await opened(store, "240.00")
    too_long = final.model_copy(update={"status": "c" * 41})  # flows.status is 40 characters
    if store.engine.dialect.name == "sqlite":
        pytest.skip("SQLite keeps a string of any length")

    with pytest.raises(RecordRefused, match="DataError|StringDataRightTruncation|value too long"):
        await store.flows.record_flow(too_long)

    await nothing_written(store, final)


async def test_the_same_record_is_written_once_the_cause_is_repaired(store: Store) -> None:
    """The operator's fix (here: the product's stored price repaired) makes the same record succeed."""
    _, final = await opened(store, HUGE, HUGE)
    with pytest.raises(RecordRefused):
        await store.flows.record_flow(final)
    async with store.engine.begin() as conn:
        await conn.execute(payments.update().where(payments.c.reservation_id == final.reservation_id)
                           .values(amount="240.00"))

    await store.flows.record_flow(final.model_copy(update={"info": {**final.info, "refund": {"amount": "240.00", "currency": "EUR"}}}))

    async with store.engine.connect() as conn:
        status = (await conn.execute(sa.select(flows.c.status).where(flows.c.code == final.code))).scalar_one()
        stored = (await conn.execute(sa.select(events.c.event_id).where(events.c.flow_code == final.code,
                                                                         events.c.type == "cancellation.completed"))).all()
    assert status == "cancelled"
    assert [row.event_id for row in stored] == [final.event_id]
    assert final.code not in {row.code for row in await store.flows.refused_records(500)}  # no longer parked
    async with store.engine.connect() as conn:
        marks = (await conn.execute(sa.select(flows.c.record_refused, flows.c.record_refused_at)
                                    .where(flows.c.code == final.code))).one()
    assert tuple(marks) == (None, None)


class _Orig(Exception):
    def __init__(self, sqlstate: str | None) -> None:
        super().__init__(f"SQLSTATE {sqlstate}")
        self.sqlstate = sqlstate


def _dbapi(kind: type[sa.exc.DBAPIError], sqlstate: str | None = None) -> sa.exc.DBAPIError:
    return kind("INSERT …", {}, _Orig(sqlstate))


@pytest.mark.parametrize(("error", "for_good"), [
    (_dbapi(sa.exc.IntegrityError), True),
    (_dbapi(sa.exc.DataError), True),
    (_dbapi(sa.exc.DBAPIError, "22003"), True),  # asyncpg: numeric value out of range
    (_dbapi(sa.exc.DBAPIError, "23514"), True),  # asyncpg: a check constraint
    (_dbapi(sa.exc.DBAPIError, "40001"), False),  # serialization failure: retried
    (_dbapi(sa.exc.DBAPIError, "40P01"), False),  # deadlock: retried
    (_dbapi(sa.exc.OperationalError), False),  # SQLite "database is locked", a dropped connection
    (_dbapi(sa.exc.InterfaceError, "08003"), False),
    (sa.exc.StatementError("bind", "UPDATE …", {}, ValueError("naive datetime refused")), True),
    (sa.exc.TimeoutError(), False),  # the pool had no connection in time
    (ValueError("must be smaller than 10^18"), True),
    (LookupError("no such product"), True),
    (Refused(Refusal.REFUND_EXCEEDS_CHARGED, "more than charged"), True),
    (ConnectionResetError(), False),
    (TimeoutError(), False),
    (RuntimeError("a write transaction opened inside another"), False),
], ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else str(value))
def test_refusals_are_told_from_outages(error: BaseException, for_good: bool) -> None:
    assert refused_for_good(error) is for_good
