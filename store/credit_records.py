"""Credits in the store (docs/settlement.md#credits): issued and redeemed inside the transaction of
the flow transition that causes it (:func:`book_credits`, called by ``record_flow``), expired by the
credit's expiry workflow (:meth:`CreditRecords.expire`), read by partners, agents and finance.

Each effect is booked in the three steps of ``store.money_effects``:

1. **Load**, locking what must not change under the decision: a credit issued instead of a refund
   locks its reservation's row first (like the refund it replaces, so an agent's refund decided at
   the same moment sees it, and it sees the refund); a redemption or an expiry locks the credit's
   row (``SELECT … FOR UPDATE`` on PostgreSQL; on SQLite every writer holds the database's write
   lock). Locks are taken in the order flow row, reservation row, credit row.
2. **Decide**: ``domain.settlement.credit_issue``, ``credit_redemption`` or ``credit_expiry``.
3. **Write** (:func:`write_credit`): a new credit is inserted once under ``credit:<flow code>``; every
   movement once under its key, and when that key is taken nothing else is written; a credit's new
   totals only by an UPDATE conditional on what the decision saw (``state = 'active' AND
   remaining_minor = :before``). The table's constraints refuse a negative or unbalanced credit
   whatever writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from domain import settlement
from domain.credit_ledger import (
    Credit,
    CreditBalance,
    CreditMovement,
    CreditState,
    credit_key,
    given_as_credit,
    movement_key,
    paid_with_credit,
    refund_taken_as_credit,
)
from domain.flow_info import FlowRecord
from domain.journal import RESCHEDULING_REASON, transition_effects
from domain.money import Money
from domain.settlement import CreditWrite, LedgerWrite
from store.db import Repository, insert_once, page_after
from store.money_effects import account_of, locked_product, write
from store.schema import credit_movements, credits, reservations

_LOCK_CREDIT = sa.select(credits).where(credits.c.credit_id == sa.bindparam("credit_id")).with_for_update()
# The reservation's row, locked as store.money_effects.locked_reservation does, with its travellers.
_LOCK_TRAVELLERS = (
    sa.select(reservations.c.travellers)
    .where(reservations.c.reservation_id == sa.bindparam("reservation_id"))
    .with_for_update(key_share=True)
)


@dataclass(frozen=True)
class CreditFilter:
    """``partner_id`` None: every partner's (agents and admins)."""

    partner_id: str | None = None
    reservation_id: str | None = None
    state: str | None = None
    currency: str | None = None
    flow_code: str | None = None
    expires_before: datetime | None = None  # exclusive


def _money(units: int, currency: str) -> Money:
    return Money.of_minor(units, currency)


def _credit(row: Any, movements: Sequence[CreditMovement]) -> Credit:
    currency = row.currency
    return Credit(
        credit_id=row.credit_id, partner_id=row.partner_id, reservation_id=row.reservation_id, product_id=row.product_id,
        flow_code=row.flow_code, traveller_ids=list(row.traveller_ids), amount=_money(row.amount_minor, currency),
        remaining=_money(row.remaining_minor, currency), redeemed=_money(row.redeemed_minor, currency),
        expired=_money(row.expired_minor, currency), state=row.state, expires_at=row.expires_at,
        created_at=row.created_at, notes=row.notes, movements=list(movements),
    )


async def _with_movements(conn: AsyncConnection, rows: Sequence[Any]) -> list[Credit]:
    """The credits of ``rows``, each with its movements in the order they happened."""
    if not rows:
        return []
    currency = {row.credit_id: row.currency for row in rows}
    found = await conn.execute(
        sa.select(credit_movements).where(credit_movements.c.credit_id.in_(list(currency))).order_by(credit_movements.c.seq)
    )
    movements: dict[str, list[CreditMovement]] = {credit_id: [] for credit_id in currency}
    for m in found:
        movements[m.credit_id].append(CreditMovement(kind=m.kind, amount=_money(m.amount_minor, currency[m.credit_id]),
                                                     flow_code=m.flow_code, at=m.at))
    return [_credit(row, movements[row.credit_id]) for row in rows]


async def locked_credit(conn: AsyncConnection, credit_id: str) -> Credit | None:
    """The credit with its row locked until the transaction ends; None when there is none."""
    row = (await conn.execute(_LOCK_CREDIT, {"credit_id": credit_id})).first()
    return None if row is None else (await _with_movements(conn, [row]))[0]


# --- writing ----------------------------------------------------------------------------------------------


def _totals(credit: Credit) -> dict[str, Any]:
    return {"remaining_minor": credit.remaining.minor, "redeemed_minor": credit.redeemed.minor,
            "expired_minor": credit.expired.minor, "state": credit.state}


async def write_credit(conn: AsyncConnection, decided: CreditWrite, at: datetime) -> bool:
    """Write what a decision about a credit returned, in the caller's transaction; False, writing
    nothing, when its credit or movement is written already (the same effect recorded again)."""
    credit, movement = decided.credit, decided.movement
    if decided.was is None and not await insert_once(conn, credits, {
        "credit_id": credit.credit_id, "effect_key": credit_key(credit.flow_code), "partner_id": credit.partner_id,
        "reservation_id": credit.reservation_id, "product_id": credit.product_id, "flow_code": credit.flow_code,
        "traveller_ids": credit.traveller_ids, "currency": credit.currency, "amount_minor": credit.amount.minor,
        "notes": credit.notes, "expires_at": credit.expires_at, "created_at": credit.created_at, "updated_at": at,
        **_totals(credit),
    }, key=("effect_key",)):
        return False
    if not await insert_once(conn, credit_movements, {
        "effect_key": movement_key(credit.credit_id, movement), "credit_id": credit.credit_id, "kind": movement.kind,
        "amount_minor": movement.amount.minor, "flow_code": movement.flow_code, "at": movement.at,
    }, key=("effect_key",)):
        return False
    if decided.was is not None:
        # Under the credit's lock this always holds; were the lock ever lost, the database refuses
        # the stale decision (and the transaction rolls back) rather than taking more than remains.
        updated = await conn.execute(
            credits.update()
            .where(credits.c.credit_id == credit.credit_id, credits.c.state == "active",
                   credits.c.remaining_minor == decided.was.remaining.minor)
            .values(updated_at=at, **_totals(credit))
        )
        if updated.rowcount != 1:
            raise RuntimeError(f"credit {credit.credit_id} changed under its lock")
    await write(conn, LedgerWrite(entries=decided.entries, triggers=decided.triggers), at)
    return True


async def book_credits(conn: AsyncConnection, record: FlowRecord) -> None:
    """The credit a flow transition issues (its refund, taken as a credit) or takes from (a change
    paid with one), in the caller's transaction (``record_flow``); nothing is read for a transition
    that does neither."""
    effects = transition_effects(record)
    refund = effects.refund
    if refund is not None and refund.reason == RESCHEDULING_REASON and refund_taken_as_credit(record):
        # What the travellers who remain paid, as a cash refund would be (domain.settlement.within_remaining).
        product = await locked_product(conn, record.product_id)
        if product is not None:
            refund = replace(refund, amount=settlement.within_remaining(refund, product))
    given = given_as_credit(record, refund.amount if refund is not None and refund.amount.amount > 0 else None)
    if given is not None:
        travellers = (await conn.execute(_LOCK_TRAVELLERS, {"reservation_id": given.reservation_id})).scalar_one()
        issued = settlement.credit_issue(given, await account_of(conn, given.reservation_id),
                                         [t["traveller_id"] for t in travellers], record.at)
        if issued is not None:
            await write_credit(conn, issued, record.at)
    payment = paid_with_credit(record, effects.charges)
    if payment is not None:
        redeemed = settlement.credit_redemption(await locked_credit(conn, payment.credit_id), payment, record.at)
        if redeemed is not None:
            await write_credit(conn, redeemed, record.at)


# --- the repository -----------------------------------------------------------------------------------------


def _balance(row: Any) -> CreditBalance:
    currency = row.currency
    return CreditBalance(
        partner_id=row.partner_id, currency=currency, credits=row.credits, issued=_money(row.issued, currency),
        redeemed=_money(row.redeemed, currency), expired=_money(row.expired, currency),
        outstanding=_money(row.outstanding, currency),
    )


class CreditRecords(Repository):
    async def credit(self, credit_id: str) -> Credit | None:
        async with self._reading() as conn:
            row = (await conn.execute(sa.select(credits).where(credits.c.credit_id == credit_id))).first()
            return None if row is None else (await _with_movements(conn, [row]))[0]

    async def page(self, where: CreditFilter, after_seq: int | None, limit: int) -> list[tuple[int, Credit]]:
        """Credits in the order they were issued, after ``after_seq``; each with its seq for the cursor."""
        query = page_after(credits, {
            credits.c.partner_id: where.partner_id,
            credits.c.reservation_id: where.reservation_id,
            credits.c.state: where.state,
            credits.c.currency: where.currency,
            credits.c.flow_code: where.flow_code,
        }, after_seq, limit)
        if where.expires_before is not None:
            query = query.where(credits.c.expires_at < where.expires_before)
        async with self._reading() as conn:
            rows = (await conn.execute(query)).all()
            found = await _with_movements(conn, rows)
        return [(row.seq, credit) for row, credit in zip(rows, found, strict=True)]

    async def balances(
        self, partner_id: str | None, currency: str | None, after: tuple[str, str] | None, limit: int
    ) -> list[CreditBalance]:
        """Per partner and currency, in that order: how many credits, what was issued, redeemed,
        expired unused (breakage), and what is outstanding (still redeemable) now."""
        query = (
            sa.select(
                credits.c.partner_id, credits.c.currency, sa.func.count().label("credits"),
                sa.func.sum(credits.c.amount_minor).label("issued"), sa.func.sum(credits.c.redeemed_minor).label("redeemed"),
                sa.func.sum(credits.c.expired_minor).label("expired"),
                sa.func.sum(credits.c.remaining_minor).label("outstanding"),
            )
            .group_by(credits.c.partner_id, credits.c.currency)
            .order_by(credits.c.partner_id, credits.c.currency)
            .limit(limit)
        )
        if partner_id is not None:
            query = query.where(credits.c.partner_id == partner_id)
        if currency is not None:
            query = query.where(credits.c.currency == currency)
        if after is not None:
            query = query.where(sa.tuple_(credits.c.partner_id, credits.c.currency) > sa.tuple_(*after))
        async with self._reading() as conn:
            return [_balance(row) for row in await conn.execute(query)]

    async def of_partner(self, partner_id: str) -> list[Credit]:
        """Every credit of a partner, in the order they were issued: what the invariants are checked on."""
        async with self._reading() as conn:
            rows = (await conn.execute(sa.select(credits).where(credits.c.partner_id == partner_id)
                                       .order_by(credits.c.seq))).all()
            return await _with_movements(conn, rows)

    # --- the CreditStore port ------------------------------------------------------------------

    async def expire(self, credit_id: str, at: datetime) -> CreditState | None:
        async with self._writing() as conn:
            credit = await locked_credit(conn, credit_id)
            decided = settlement.credit_expiry(credit, at)
            if decided is not None:
                await write_credit(conn, decided, at)
                return decided.credit.state
        return None if credit is None else credit.state

