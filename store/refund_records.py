"""The refunds ledger as agents work it and partners read it (docs/settlement.md#the-refunds-ledger), and
deposits given back (docs/settlement.md#deposits).

The rules are ``domain.refund_ledger`` and ``domain.journal.Account``; this module runs them in one
transaction each, through ``store.money_effects``, which a flow's own refund shares.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncConnection

from domain import refund_ledger
from domain.codes import REFUND_ID
from domain.journal import Account, PostedRefund
from domain.money import Money
from domain.products import ProductSpec
from domain.refund_ledger import DEPOSIT_REASON, Refund, RefundState
from domain.refusals import Refusal, Refused
from store.db import Repository, page_after
from store.money_effects import (
    account_of,
    book_posting,
    draw_numbers,
    insert_refund,
    insert_refund_once,
    locked_account,
    locked_product,
    post_refund,
    save_decision,
)
from store.schema import refunds, reservations

_PRODUCT: TypeAdapter[ProductSpec] = TypeAdapter(ProductSpec)


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


def _duplicate_code(code: str | None) -> Refused:
    return Refused(Refusal.DUPLICATE_BACK_OFFICE_CODE, f"another refund has back_office_code {code!r}")


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
        state: RefundState,
        reason: str,
        notes: str,
        back_office_code: str | None,
        by: str,
        at: datetime,
    ) -> Refund:
        """A draft, or a refund posted at once. The caller has checked the amount against ``charged``;
        whether it still fits is decided here, under the reservation's lock."""
        async with self._writing() as conn:
            account = await locked_account(conn, reservation_id) if state == "posted" else None
            partner_id = (
                await conn.execute(
                    sa.select(reservations.c.partner_id).where(reservations.c.reservation_id == reservation_id)
                )
            ).scalar_one_or_none()
            if partner_id is None:
                raise LookupError(f"no reservation {reservation_id}")
            if account is not None:
                account.check_refund(amount)  # before drawing any number: a refusal takes none
            reference, number = await draw_numbers(conn, reference=True, number=account is not None)
            refund = refund_ledger.draft(
                refund_id=REFUND_ID.secure(), reference_number=reference, reservation_id=reservation_id,
                partner_id=partner_id, amount=amount, reason=reason, notes=notes, back_office_code=back_office_code,
                created_by=by, at=at,
            )
            if number is not None:
                refund = refund_ledger.posted(refund, number, at, by)
            try:
                async with conn.begin_nested():
                    await insert_refund(conn, refund, effect_key=None)
            except sa.exc.IntegrityError:
                raise _duplicate_code(back_office_code) from None
            if account is not None:
                await book_posting(conn, refund, at)
            return refund

    async def edit(self, refund_id: str, changes: dict[str, Any], at: datetime) -> Refund | None:
        async with self._writing() as conn:
            current = await _read(conn, refund_id)
            if current is None:
                return None
            refund = refund_ledger.edited(current, changes)
            try:
                async with conn.begin_nested():
                    await save_decision(conn, refund, at)
            except sa.exc.IntegrityError:
                raise _duplicate_code(refund.back_office_code) from None
            return refund

    async def post(self, refund_id: str, by: str, at: datetime) -> Refund | None:
        async with self._writing() as conn:
            found = await _read(conn, refund_id)
            if found is None:
                return None
            account = await locked_account(conn, found.reservation_id)
            assert account is not None  # a refund's reservation is never deleted
            # Read again under the lock: a post of the same refund that committed meanwhile is seen.
            current = await _read(conn, refund_id)
            assert current is not None
            refund_ledger.ensure_draft(current)
            return await post_refund(conn, current, account, at, by)

    async def reject(self, refund_id: str, reason: str, by: str, at: datetime) -> Refund | None:
        async with self._writing() as conn:
            current = await _read(conn, refund_id)
            if current is None:
                return None
            refund = refund_ledger.rejected(current, reason, at, by)
            await save_decision(conn, refund, at)
            return refund

    async def refund_deposit(self, product_id: str, by: str, at: datetime) -> Refund | None:
        """Post the product's deposit back, once (``deposit:<product>`` is unique); None for no such product."""
        async with self._writing() as conn:
            product = await locked_product(conn, product_id)
            if product is None:
                return None
            deposit = _PRODUCT.validate_python(product.details).deposit
            if deposit is None:
                raise Refused(Refusal.NO_DEPOSIT, f"product {product_id} carries no deposit")
            reference, number = await draw_numbers(conn, reference=True, number=True)
            assert number is not None
            refund = refund_ledger.posted(
                refund_ledger.draft(
                    refund_id=REFUND_ID.secure(), reference_number=reference, reservation_id=product.reservation_id,
                    partner_id=product.partner_id, product_id=product_id, amount=deposit, reason=DEPOSIT_REASON,
                    category="deposit", created_by=by, at=at,
                ),
                number, at, by,
            )
            if not await insert_refund_once(conn, refund, f"deposit:{product_id}"):
                raise Refused(Refusal.DEPOSIT_ALREADY_REFUNDED, f"the deposit of product {product_id} was refunded already")
            # Checked once the key has said it is the first time; a refusal rolls the numbers back.
            (await account_of(conn, product.reservation_id)).check_refund(deposit)
            await book_posting(conn, refund, at)
            return refund
