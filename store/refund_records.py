"""The refunds ledger as agents work it and partners read it (docs/settlement.md#the-refunds-ledger), and
deposits given back (docs/settlement.md#deposits).

Each change is booked in one transaction by the three steps of ``store.money_effects``, which a
flow's own refund shares: load (the reservation locked, its ledger), decide (``domain.settlement``),
write.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from domain import settlement
from domain.codes import REFUND_ID
from domain.journal import Account, PostedRefund
from domain.money import Money
from domain.refund_ledger import Refund
from store.db import Repository, page_after
from store.money_effects import account_of, ledger_of, locked_product, locked_reservation, refund_written, write
from store.schema import refunds, reservations


@dataclass(frozen=True)
class RefundFilter:
    """``partner_id`` None: every partner's (agents and admins)."""

    partner_id: str | None = None
    reservation_id: str | None = None
    state: str | None = None
    flow_code: str | None = None
    back_office_code: str | None = None


@dataclass(frozen=True)
class Charged:
    """A reservation's owner and its journal, to validate a refund against before creating it."""

    partner_id: str
    account: Account


def _refund(row: Any) -> Refund:
    return Refund(
        refund_id=row.refund_id,
        reference_number=str(row.reference_number),
        number=None if row.number is None else str(row.number),
        reservation_id=row.reservation_id,
        partner_id=row.partner_id,
        product_id=row.product_id,
        flow_code=row.flow_code,
        traveller_ids=row.traveller_ids,
        category=row.category,
        amount=Money.of(row.amount, row.currency),
        state=row.state,
        reason=row.reason,
        notes=row.notes,
        back_office_code=row.back_office_code,
        rejection_reason=row.rejection_reason,
        created_by=row.created_by,
        decided_by=row.decided_by,
        created_at=row.created_at,
        posted_at=row.posted_at,
        rejected_at=row.rejected_at,
    )


async def _read(conn: AsyncConnection, refund_id: str) -> Refund | None:
    row = (await conn.execute(sa.select(refunds).where(refunds.c.refund_id == refund_id))).first()
    return None if row is None else _refund(row)


class RefundRecords(Repository):
    # --- reading ----------------------------------------------------------------------------------

    async def charged(self, reservation_id: str) -> Charged | None:
        async with self._reading() as conn:
            owner = (
                await conn.execute(
                    sa.select(reservations.c.partner_id).where(reservations.c.reservation_id == reservation_id)
                )
            ).scalar_one_or_none()
            if owner is None:
                return None
            return Charged(owner, await account_of(conn, reservation_id))

    async def refund(self, refund_id: str) -> Refund | None:
        async with self._reading() as conn:
            return await _read(conn, refund_id)

    async def page(self, where: RefundFilter, after_seq: int | None, limit: int) -> list[tuple[int, Refund]]:
        """Refunds in the order they were created (by reference number), after ``after_seq``."""
        query = page_after(refunds, {
            refunds.c.partner_id: where.partner_id,
            refunds.c.reservation_id: where.reservation_id,
            refunds.c.state: where.state,
            refunds.c.flow_code: where.flow_code,
            refunds.c.back_office_code: where.back_office_code,
        }, after_seq, limit)
        async with self._reading() as conn:
            rows = (await conn.execute(query)).all()
        return [(row.seq, _refund(row)) for row in rows]

    async def posted(self, reservation_id: str | None = None) -> list[PostedRefund]:
        """Posted refunds (of one reservation, or all): what the invariant and the numbering are checked on."""
        query = sa.select(refunds.c.refund_id, refunds.c.number, refunds.c.amount, refunds.c.currency).where(
            refunds.c.state == "posted"
        )
        if reservation_id is not None:
            query = query.where(refunds.c.reservation_id == reservation_id)
        async with self._reading() as conn:
            rows = (await conn.execute(query)).all()
        return [PostedRefund(row.refund_id, row.number, Money.of(row.amount, row.currency)) for row in rows]

    # --- working the ledger -----------------------------------------------------------------------

    async def create(
        self,
        *,
        reservation_id: str,
        amount: Money,
        state: Literal["draft", "posted"],
        reason: str,
        notes: str,
        back_office_code: str | None,
        by: str,
        at: datetime,
    ) -> Refund:
        """A draft, or a refund posted at once. The caller has checked the amount against ``charged``;
        whether it still fits is decided here, under the reservation's lock."""
        async with self._writing() as conn:
            partner_id = await locked_reservation(conn, reservation_id)
            if partner_id is None:
                raise LookupError(f"no reservation {reservation_id}")
            decided = settlement.new_refund(
                await ledger_of(conn, reservation_id), refund_id=REFUND_ID.secure(), reservation_id=reservation_id,
                partner_id=partner_id, amount=amount, state=state, reason=reason, notes=notes,
                back_office_code=back_office_code, by=by, at=at,
            )
            return await _written(conn, decided, at)

    async def edit(self, refund_id: str, changes: dict[str, Any], at: datetime) -> Refund | None:
        async with self._writing() as conn:
            current = await _read(conn, refund_id)
            return None if current is None else await _written(conn, settlement.edit(current, changes), at)

    async def post(self, refund_id: str, by: str, at: datetime) -> Refund | None:
        async with self._writing() as conn:
            found = await _read(conn, refund_id)
            if found is None:
                return None
            await locked_reservation(conn, found.reservation_id)
            # Read again under the lock: a post of the same refund that committed meanwhile is seen.
            current = await _read(conn, refund_id)
            assert current is not None  # refunds are never deleted
            decided = settlement.posting(current, await ledger_of(conn, found.reservation_id), by, at)
            return await _written(conn, decided, at)

    async def reject(self, refund_id: str, reason: str, by: str, at: datetime) -> Refund | None:
        async with self._writing() as conn:
            current = await _read(conn, refund_id)
            return None if current is None else await _written(conn, settlement.rejection(current, reason, by, at), at)

    async def refund_deposit(self, product_id: str, by: str, at: datetime) -> Refund | None:
        """Post the product's deposit back, once (``deposit:<product>`` is unique); None for no such product."""
        async with self._writing() as conn:
            product = await locked_product(conn, product_id)
            if product is None:
                return None
            decided = settlement.deposit_refund(
                product, await refund_written(conn, settlement.deposit_refund_key(product_id)),
                await ledger_of(conn, product.reservation_id), REFUND_ID.secure(), by, at,
            )
            return await _written(conn, decided, at)


async def _written(conn: AsyncConnection, decided: settlement.LedgerWrite, at: datetime) -> Refund:
    await write(conn, decided, at)
    assert decided.refund is not None  # every decision of the ledger is about one refund
    return decided.refund
