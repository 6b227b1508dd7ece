"""One object the processes open at start-up: the engine, migrated, and the repositories over it."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from store.accounts import Accounts
from store.change_offers import ChangeOffers
from store.credit_records import CreditRecords
from store.db import create_engine, migrate, reader
from store.disruption_records import DisruptionRecords
from store.flight_index import FlightIndex
from store.flow_index import FlowIndex
from store.flow_search import FlowSearch
from store.idempotency import IdempotencyRecords
from store.outbox import Outbox
from store.payments_journal import PaymentsJournal
from store.quotes import Quotes
from store.refund_records import RefundRecords
from store.reservation_records import Reservations
from store.supplier_accounts import SupplierAccounts


@dataclass(frozen=True)
class Store:
    engine: AsyncEngine
    accounts: Accounts
    suppliers: SupplierAccounts
    reservations: Reservations
    idempotency: IdempotencyRecords
    flows: FlowIndex
    flow_search: FlowSearch
    quotes: Quotes
    events: Outbox
    change_offers: ChangeOffers
    payments: PaymentsJournal
    refunds: RefundRecords
    credits: CreditRecords
    flights: FlightIndex
    disruptions: DisruptionRecords

    async def ping(self) -> None:
        async with reader(self.engine).connect() as conn:
            await conn.execute(sa.text("SELECT 1"))

    async def close(self) -> None:
        await self.engine.dispose()


async def open_store(database_url: str, *, pool_size: int = 20, max_overflow: int = 10) -> Store:
    """Create the engine (its PostgreSQL pool: ``pool_size`` kept, ``max_overflow`` more for a burst)
    and run pending migrations before anything else touches the database."""
    engine = create_engine(database_url, pool_size=pool_size, max_overflow=max_overflow)
    await migrate(engine)
    return store_over(engine)


def store_over(engine: AsyncEngine) -> Store:
    """The repositories over ``engine``, as it is (no migration)."""
    return Store(
        engine=engine,
        accounts=Accounts(engine),
        suppliers=SupplierAccounts(engine),
        reservations=Reservations(engine),
        idempotency=IdempotencyRecords(engine),
        flows=FlowIndex(engine),
        flow_search=FlowSearch(engine),
        quotes=Quotes(engine),
        events=Outbox(engine),
        change_offers=ChangeOffers(engine),
        payments=PaymentsJournal(engine),
        refunds=RefundRecords(engine),
        credits=CreditRecords(engine),
        flights=FlightIndex(engine),
        disruptions=DisruptionRecords(engine),
    )
