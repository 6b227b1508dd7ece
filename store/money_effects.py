"""Money effects, booked inside the transaction of the state change that causes them
(docs/settlement.md#how-the-store-books): a reservation's sale, a flow's transition, an agent's
refund, a deposit given back. Each is booked in three steps, and nothing here ever commits: the
money lands with the state it follows, or not at all.

1. **Load** what the decision needs, locking what must not change under it: the product and its
   reservation's row (:func:`locked_product`, :func:`locked_reservation`), then the reservation's
   account and the refunds ledger's counters (:func:`ledger_of`). Locks are always taken in this
   order: the flow's row (``record_flow`` updates it first), the reservation's, the counters'. On
   PostgreSQL the reservation's row is locked ``FOR NO KEY UPDATE`` and the counters' ``FOR
   UPDATE``; on SQLite every writer holds the database's write lock already (``BEGIN IMMEDIATE``,
   ``store.db``). So two refunds of one reservation that each fit but together exceed its charge
   are decided one after the other, and the second sees the first.
2. **Decide**: one pure function of ``domain.settlement`` returns everything to write (the refund
   row, the counters after the numbers it used, the journal entries, the trigger), or refuses
   before anything is written.
3. **Write** it (:func:`write`). Exactly once comes from the database, not from a look first: a
   journal entry is unique by its ``effect_key``, a flow's refund by ``flow:<code>``, a deposit
   given back by ``deposit:<product>``, an agent's refund by its ``back_office_code``. The refund is
   written first, with ``INSERT … ON CONFLICT DO NOTHING`` on its key (``store.db.insert_once``);
   when the key is taken, nothing else is. The counters are written only with the refund that used
   their numbers, and a transaction rolled back takes them back with it: posted refunds are
   numbered without a gap.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from config.telemetry import current_traceparent
from domain import settlement
from domain.codes import EVENT_ID, PAYMENT_ID, REFUND_ID
from domain.credit_ledger import refund_taken_as_credit
from domain.flow_info import FlowRecord, event_body
from domain.journal import Account, JournalEntry, transition_effects
from domain.money import Money, format_decimal
from domain.refund_ledger import Refund
from domain.refusals import Refusal, Refused
from domain.settlement import Counters, Ledger, LedgerWrite, SoldProduct
from store.db import insert_once, violates_unique
from store.schema import credits, events, payments, products, refund_counters, refunds, reservations

# Statements built once, executed with parameters: SQLAlchemy then reuses their compiled form instead
# of building bind parameters and a cache key per call (a cancellation's record_flow runs them all).
_INSERT_EVENT = events.insert()
_LOCK_PRODUCT = (
    sa.select(products.c.reservation_id, reservations.c.partner_id, products.c.details, products.c.cancelled_travellers)
    .join(reservations, reservations.c.reservation_id == products.c.reservation_id)
    .where(products.c.product_id == sa.bindparam("product_id"))
    .with_for_update(key_share=True, of=reservations)  # FOR NO KEY UPDATE OF reservations: see locked_reservation
)
_LOCK_RESERVATION = (
    sa.select(reservations.c.partner_id)
    .where(reservations.c.reservation_id == sa.bindparam("reservation_id"))
    .with_for_update(key_share=True)  # FOR NO KEY UPDATE: journal inserts (foreign keys) do not wait for it
)
_ACCOUNT = sa.select(payments.c.amount, payments.c.currency).where(
    payments.c.reservation_id == sa.bindparam("reservation_id")
)
# The credits issued from the reservation instead of refunds: value given back too (domain.journal.Account).
_CREDITED = sa.select(credits.c.amount_minor, credits.c.currency).where(
    credits.c.reservation_id == sa.bindparam("reservation_id")
)
# The counters' row (locked FOR UPDATE) with the reservation's journal lines joined to it: one round
# trip, one row per line (one with no line when there is none).
_LEDGER = (
    sa.select(refund_counters.c.last_reference, refund_counters.c.last_number, payments.c.amount, payments.c.currency)
    .select_from(refund_counters.outerjoin(payments, payments.c.reservation_id == sa.bindparam("reservation_id")))
    .where(refund_counters.c.id == 1)
    .with_for_update(of=refund_counters)
)
_SET_COUNTERS = (
    refund_counters.update()
    .where(refund_counters.c.id == 1)
    .values(last_reference=sa.bindparam("reference"), last_number=sa.bindparam("number"))
)
_REFUND_BY_KEY = sa.select(refunds.c.refund_id).where(refunds.c.effect_key == sa.bindparam("effect_key"))


# --- 1. load ----------------------------------------------------------------------------------------


async def locked_reservation(conn: AsyncConnection, reservation_id: str) -> str | None:
    """Lock the reservation's row: refund decisions of one reservation wait for each other. Its
    partner, or None when there is no such reservation."""
    partner_id: str | None = (
        await conn.execute(_LOCK_RESERVATION, {"reservation_id": reservation_id})
    ).scalar_one_or_none()
    return partner_id


async def locked_product(conn: AsyncConnection, product_id: str) -> SoldProduct | None:
    """A product, its reservation's row locked as by :func:`locked_reservation`, in one statement."""
    row = (await conn.execute(_LOCK_PRODUCT, {"product_id": product_id})).first()
    return None if row is None else SoldProduct(product_id, row.reservation_id, row.partner_id, row.details,
                                                row.cancelled_travellers)


async def account_of(conn: AsyncConnection, reservation_id: str) -> Account:
    """The reservation's journal as it is now, unlocked: what a request is checked against before
    its refund is decided."""
    return _account(await conn.execute(_ACCOUNT, {"reservation_id": reservation_id}), await _credited(conn, reservation_id))


async def ledger_of(conn: AsyncConnection, reservation_id: str) -> Ledger:
    """The reservation's account and the counters, the counters locked until the transaction ends.

    Called once the reservation's row is locked: every write to a reservation's journal holds that
    lock, so this statement's snapshot has all of it (on PostgreSQL a statement that waits for a row
    lock re-reads only the locked row, here the counters), and a refund decided meanwhile is in it.
    """
    rows = (await conn.execute(_LEDGER, {"reservation_id": reservation_id})).all()
    if not rows:
        raise RuntimeError("the refund counters' row is missing: run the migrations (revision 0007)")
    return Ledger(_account((row for row in rows if row.amount is not None), await _credited(conn, reservation_id)),
                  Counters(rows[0].last_reference, rows[0].last_number))


def _account(rows: Iterable[Any], credited: tuple[Money, ...]) -> Account:
    return Account(tuple(Money.of(row.amount, row.currency) for row in rows), credited)


async def _credited(conn: AsyncConnection, reservation_id: str) -> tuple[Money, ...]:
    rows = await conn.execute(_CREDITED, {"reservation_id": reservation_id})
    return tuple(Money.of_minor(row.amount_minor, row.currency) for row in rows)


async def refund_written(conn: AsyncConnection, effect_key: str) -> bool:
    """Whether a refund holds ``effect_key`` (under the reservation's lock, the answer holds until commit)."""
    return (await conn.execute(_REFUND_BY_KEY, {"effect_key": effect_key})).first() is not None


# --- 3. write -----------------------------------------------------------------------------------------


async def write(conn: AsyncConnection, decided: LedgerWrite, at: datetime) -> None:
    """Write what a decision returned, in the caller's transaction: the refund first, so that a taken
    key writes nothing else; raises the refusal a taken key means (``domain.settlement.InsertOnce``)."""
    refund = decided.refund
    if refund is not None:
        if decided.insert is None:
            await _save_draft_change(conn, refund, at)
        elif not await _insert_refund_once(conn, refund, decided.insert.effect_key):
            if decided.insert.taken is not None:
                raise decided.insert.taken
            return
    if decided.counters is not None:
        await conn.execute(_SET_COUNTERS, {"reference": decided.counters.last_reference,
                                           "number": decided.counters.last_number})
    await book(conn, decided.entries, at)
    for trigger in decided.triggers:
        event_id = EVENT_ID.secure()
        await conn.execute(_INSERT_EVENT, {
            "event_id": event_id,
            "partner_id": trigger.partner_id,
            "type": trigger.type,
            "flow_code": trigger.flow_code,
            "payload": event_body(event_id, trigger.type, at, trigger.data),
            "created_at": at,
            "delivery_status": "pending",
            "attempts": 0,
            "traceparent": current_traceparent(),
        })


async def book(conn: AsyncConnection, entries: Iterable[JournalEntry], at: datetime) -> int:
    """Book each entry once; how many were new (an entry whose effect is booked already is skipped)."""
    booked = 0
    for entry in entries:
        booked += await insert_once(conn, payments, _payment_row(entry, at), key=("effect_key",))
    return booked


def _payment_row(entry: JournalEntry, at: datetime) -> dict[str, Any]:
    return {
        "payment_id": PAYMENT_ID.secure(),
        "effect_key": entry.effect_key,
        "partner_id": entry.partner_id,
        "reservation_id": entry.reservation_id,
        "product_id": entry.product_id,
        "flow_code": entry.flow_code,
        "refund_id": entry.refund_id,
        "credit_id": entry.credit_id,
        "category": entry.category,
        "amount": format_decimal(entry.amount.amount),
        "currency": entry.amount.currency,
        "vat_rate": None if entry.vat_rate is None else format_decimal(entry.vat_rate),
        "state": "to_invoice",
        "created_at": at,
        "invoiced_at": None,
    }


def _refund_state(refund: Refund) -> dict[str, Any]:
    """The columns a refund's state is kept in (everything but its key and creation)."""
    return {
        "number": None if refund.number is None else int(refund.number),
        "amount": format_decimal(refund.amount.amount),
        "currency": refund.amount.currency,
        "state": refund.state,
        "reason": refund.reason,
        "notes": refund.notes,
        "back_office_code": refund.back_office_code,
        "rejection_reason": refund.rejection_reason,
        "decided_by": refund.decided_by,
        "posted_at": refund.posted_at,
        "rejected_at": refund.rejected_at,
    }


async def _insert_refund_once(conn: AsyncConnection, refund: Refund, effect_key: str | None) -> bool:
    """Insert unless a refund holds ``effect_key`` (or, without one, the refund's back-office code)."""
    return await insert_once(conn, refunds, {
        "refund_id": refund.refund_id,
        "reference_number": int(refund.reference_number),
        "effect_key": effect_key,
        "reservation_id": refund.reservation_id,
        "partner_id": refund.partner_id,
        "product_id": refund.product_id,
        "flow_code": refund.flow_code,
        "traveller_ids": refund.traveller_ids,
        "category": refund.category,
        "created_by": refund.created_by,
        "created_at": refund.created_at,
        "updated_at": refund.created_at,
        **_refund_state(refund),
    }, key=("effect_key",) if effect_key is not None else ("back_office_code",))


async def _save_draft_change(conn: AsyncConnection, refund: Refund, at: datetime) -> None:
    """Store a draft's new state; only a row that is still a draft changes: ``refund_not_draft`` when a
    concurrent decision committed first. Either refusal leaves the transaction to roll back."""
    try:
        result = await conn.execute(
            refunds.update()
            .where(refunds.c.refund_id == refund.refund_id, refunds.c.state == "draft")
            .values(updated_at=at, **_refund_state(refund))
        )
    except sa.exc.IntegrityError as error:
        # An edit gave it a back-office code another refund holds; any other violation is a fault.
        if not violates_unique(error, refunds.c.back_office_code):
            raise
        raise settlement.duplicate_code(refund.back_office_code) from None
    if result.rowcount != 1:
        raise Refused(Refusal.REFUND_NOT_DRAFT, f"refund {refund.refund_id} was decided meanwhile")


# --- the three steps of a flow's transition: every cancellation's record_flow runs them ----------------


async def book_transition(conn: AsyncConnection, record: FlowRecord) -> None:
    """The money a flow transition moves, in the caller's transaction (``record_flow``): nothing is
    read for a transition that moves none; the ledger only for one that posts the flow's refund."""
    effects = transition_effects(record)
    if effects.refund is not None and refund_taken_as_credit(record):
        # The partner took the refund as a credit: store.credit_records issues it, and no money moves.
        effects = replace(effects, refund=None)
    if not effects:
        return
    product = await locked_product(conn, record.product_id)
    if product is None:
        raise LookupError(f"flow {record.code} names product {record.product_id}, which does not exist")
    ledger = await ledger_of(conn, record.reservation_id) if effects.refund is not None else None
    await write(conn, settlement.flow_transition(effects, product, ledger, REFUND_ID.secure(), record.at), record.at)
