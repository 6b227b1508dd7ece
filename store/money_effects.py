"""Money effects, written inside the transaction of the state change that causes them
(docs/settlement.md): a reservation's sale, a flow's transition, a refund's posting.

Every function here takes the caller's open connection and never commits: the money lands with
the state it follows, or not at all. Exactly once comes from the database, not from a look
first: a journal entry is unique by its ``effect_key``, a flow's refund by ``flow:<code>``, a
deposit given back by ``deposit:<product>``; a second write of the same effect hits the key (``INSERT … ON
CONFLICT DO NOTHING`` on that key, as ``store.db.insert_once`` does) and changes nothing.

Refund decisions of one reservation are serialised by locking the reservation's row
(PostgreSQL ``FOR NO KEY UPDATE``; on SQLite every writer already holds the database's write lock,
``BEGIN IMMEDIATE`` in ``store.db``), so two posts that each fit but together exceed the charge
cannot both pass. Refund numbers come from a counter row updated in the posting transaction: a
rolled-back post gives its number back, so posted refunds are numbered without a gap. Locks are
always taken in this order: the flow's row (``record_flow``), the reservation's, the counters'.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from domain import refund_ledger
from domain.codes import EVENT_ID, PAYMENT_ID, REFUND_ID
from domain.flow_info import FlowRecord, event_body
from domain.journal import Account, FlowRefund, JournalEntry, transition_effects
from domain.money import Money, format_decimal
from domain.refund_ledger import REFUND_POSTED, Refund
from domain.refusals import Refusal, Refused
from store.db import insert_once
from store.schema import events, payments, products, refund_counters, refunds, reservations

# Statements built once, executed with parameters: SQLAlchemy then reuses their compiled form instead
# of building bind parameters and a cache key per call (a cancellation's record_flow runs them all).
_INSERT_PAYMENT = payments.insert()
_INSERT_EVENT = events.insert()
_INSERT_REFUND = refunds.insert()
_PRODUCT_DETAILS = sa.select(products.c.details).where(products.c.product_id == sa.bindparam("product_id"))
_LOCK_PRODUCT = (
    sa.select(products.c.reservation_id, reservations.c.partner_id, products.c.details)
    .join(reservations, reservations.c.reservation_id == products.c.reservation_id)
    .where(products.c.product_id == sa.bindparam("product_id"))
    .with_for_update(key_share=True, of=reservations)  # FOR NO KEY UPDATE OF reservations: see locked_account
)
_LOCK_RESERVATION = (
    sa.select(reservations.c.reservation_id)
    .where(reservations.c.reservation_id == sa.bindparam("reservation_id"))
    .with_for_update(key_share=True)  # FOR NO KEY UPDATE: journal inserts (foreign keys) do not wait for it
)
_ACCOUNT = sa.select(payments.c.amount, payments.c.currency).where(
    payments.c.reservation_id == sa.bindparam("reservation_id")
)
_DRAW = (
    refund_counters.update()
    .where(refund_counters.c.id == 1)
    .values(last_reference=refund_counters.c.last_reference + sa.bindparam("references", type_=sa.Integer),
            last_number=refund_counters.c.last_number + sa.bindparam("numbers", type_=sa.Integer))
    .returning(refund_counters.c.last_reference, refund_counters.c.last_number)
)


# --- the journal ----------------------------------------------------------------------------------


def _payment_row(entry: JournalEntry, at: datetime) -> dict[str, Any]:
    return {
        "payment_id": PAYMENT_ID.secure(),
        "effect_key": entry.effect_key,
        "partner_id": entry.partner_id,
        "reservation_id": entry.reservation_id,
        "product_id": entry.product_id,
        "flow_code": entry.flow_code,
        "refund_id": entry.refund_id,
        "category": entry.category,
        "amount": format_decimal(entry.amount.amount),
        "currency": entry.amount.currency,
        "vat_rate": None if entry.vat_rate is None else format_decimal(entry.vat_rate),
        "state": "to_invoice",
        "created_at": at,
        "invoiced_at": None,
    }


async def book(conn: AsyncConnection, entries: Iterable[JournalEntry], at: datetime) -> int:
    """Book each entry once; how many were new (an entry whose effect is booked already is skipped)."""
    booked = 0
    for entry in entries:
        booked += await insert_once(conn, payments, _payment_row(entry, at), key=("effect_key",))
    return booked


# --- a flow's transition --------------------------------------------------------------------------


async def book_transition(conn: AsyncConnection, record: FlowRecord) -> None:
    """The money a flow transition moves (``domain.journal.transition_effects``), in the caller's
    transaction: charges booked, and the flow's own refund posted, once per flow."""
    effects = transition_effects(record)
    if effects.charges:
        details = (await conn.execute(_PRODUCT_DETAILS, {"product_id": record.product_id})).scalar_one_or_none()
        await book(conn, effects.with_vat_rate(_vat_rate(details)).charges, record.at)
    if effects.refund is not None:
        await _post_flow_refund(conn, effects.refund, record.at)


def _vat_rate(details: dict[str, Any] | None) -> Decimal | None:
    rate = (details or {}).get("vat_rate")
    return None if rate is None else Decimal(rate)


async def _post_flow_refund(conn: AsyncConnection, flow: FlowRefund, at: datetime) -> None:
    """Post the flow's refund, keyed ``flow:<code>``: a retried or replayed transition finds it posted.

    It cannot be refused (the supplier has cancelled already): when agents' refunds have taken part
    of the charge, it is capped at what is left, and recorded as rejected when nothing is left, so
    the ledger still shows it (``domain.journal.Account.flow_refund``).

    This runs in every cancellation's ``record_flow``, so it is written in as few statements as
    the rules allow: the refund in its final state at once, and its key claimed by the insert
    itself (``ON CONFLICT DO NOTHING``) rather than in a savepoint. When the key is taken (a retry),
    the numbers just drawn are given back: the counters' row is still locked by this transaction, so
    nobody drew after them.
    """
    product = await locked_product(conn, flow.product_id)
    if product is None:
        raise LookupError(f"flow {flow.flow_code} names product {flow.product_id}, which does not exist")
    account = await account_of(conn, flow.reservation_id)
    amount, note = account.flow_refund(flow.amount)
    reference, number = await draw_numbers(conn, reference=True, number=amount is not None)
    by = f"flow:{flow.flow_code}"
    refund = refund_ledger.draft(
        refund_id=REFUND_ID.secure(), reference_number=reference, reservation_id=flow.reservation_id,
        partner_id=flow.partner_id, product_id=flow.product_id, flow_code=flow.flow_code, amount=amount or flow.amount,
        reason=flow.reason, notes=note, created_by=by, at=at,
    )
    refund = refund_ledger.rejected(refund, note, at, by) if number is None else refund_ledger.posted(refund, number, at, by)
    if not await insert_refund_once(conn, refund, f"flow:{flow.flow_code}"):
        await give_numbers_back(conn, reference=True, number=number is not None)
        return
    if refund.state == "posted":
        await book_posting(conn, refund, at, product.vat_rate)


# --- refunds --------------------------------------------------------------------------------------


async def locked_account(conn: AsyncConnection, reservation_id: str) -> Account | None:
    """The reservation's journal, read after locking its row: refund decisions of one reservation
    wait for each other. None when there is no such reservation."""
    locked = await conn.execute(_LOCK_RESERVATION, {"reservation_id": reservation_id})
    if locked.first() is None:
        return None
    return await account_of(conn, reservation_id)


@dataclass(frozen=True)
class LockedProduct:
    reservation_id: str
    partner_id: str
    details: dict[str, Any]

    @property
    def vat_rate(self) -> Decimal | None:
        return _vat_rate(self.details)


async def locked_product(conn: AsyncConnection, product_id: str) -> LockedProduct | None:
    """A product, its reservation's row locked as in :func:`locked_account`, in one statement: where a
    refund of a product is decided (a flow's, a deposit's)."""
    row = (await conn.execute(_LOCK_PRODUCT, {"product_id": product_id})).first()
    return None if row is None else LockedProduct(row.reservation_id, row.partner_id, row.details)


async def account_of(conn: AsyncConnection, reservation_id: str) -> Account:
    rows = await conn.execute(_ACCOUNT, {"reservation_id": reservation_id})
    return Account(tuple(Money.of(row.amount, row.currency) for row in rows))


async def draw_numbers(conn: AsyncConnection, *, reference: bool, number: bool) -> tuple[int, int | None]:
    """The next reference number and, for a posting, the next refund number, taken in the caller's
    transaction in one statement (the counters' row stays locked until the transaction ends)."""
    row = (await conn.execute(_DRAW, {"references": int(reference), "numbers": int(number)})).first()
    if row is None:
        raise RuntimeError("the refund counters' row is missing: run the migrations (revision 0003)")
    return int(row.last_reference), (int(row.last_number) if number else None)


async def give_numbers_back(conn: AsyncConnection, *, reference: bool, number: bool) -> None:
    """Undo :func:`draw_numbers` in the same transaction (the row is still ours, nobody drew since)."""
    await conn.execute(_DRAW, {"references": -int(reference), "numbers": -int(number)})


def refund_row(refund: Refund) -> dict[str, Any]:
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


def _refund_values(refund: Refund, effect_key: str | None) -> dict[str, Any]:
    return {
        "refund_id": refund.refund_id,
        "reference_number": int(refund.reference_number),
        "effect_key": effect_key,
        "reservation_id": refund.reservation_id,
        "partner_id": refund.partner_id,
        "product_id": refund.product_id,
        "flow_code": refund.flow_code,
        "category": refund.category,
        "created_by": refund.created_by,
        "created_at": refund.created_at,
        "updated_at": refund.created_at,
        **refund_row(refund),
    }


async def insert_refund(conn: AsyncConnection, refund: Refund, effect_key: str | None) -> None:
    """Raises ``IntegrityError`` on a taken ``effect_key`` or ``back_office_code``."""
    await conn.execute(_INSERT_REFUND, _refund_values(refund, effect_key))


async def insert_refund_once(conn: AsyncConnection, refund: Refund, effect_key: str) -> bool:
    """Insert unless a refund holds ``effect_key`` already (then nothing is written: False)."""
    return await insert_once(conn, refunds, _refund_values(refund, effect_key), key=("effect_key",))


async def save_decision(conn: AsyncConnection, refund: Refund, at: datetime) -> None:
    """Store a draft's new state; only a row that is still a draft changes: ``refund_not_draft`` when a
    concurrent decision committed first (the caller's transaction then rolls back, numbers included)."""
    result = await conn.execute(
        refunds.update()
        .where(refunds.c.refund_id == refund.refund_id, refunds.c.state == "draft")
        .values(updated_at=at, **refund_row(refund))
    )
    if result.rowcount != 1:
        raise Refused(Refusal.REFUND_NOT_DRAFT, f"refund {refund.refund_id} was decided meanwhile")


async def post_refund(
    conn: AsyncConnection, refund: Refund, account: Account, at: datetime, by: str, vat_rate: Decimal | None = None
) -> Refund:
    """Post a stored draft: checked against the locked account, numbered, booked and reported, all in
    the caller's transaction."""
    account.check_refund(refund.amount)  # before drawing a number: a refused post takes none
    _, number = await draw_numbers(conn, reference=False, number=True)
    assert number is not None
    done = refund_ledger.posted(refund, number, at, by)
    await save_decision(conn, done, at)
    await book_posting(conn, done, at, vat_rate)
    return done


async def book_posting(conn: AsyncConnection, done: Refund, at: datetime, vat_rate: Decimal | None = None) -> None:
    """A posted refund's journal entry and its trigger ``refund.posted``."""
    await conn.execute(_INSERT_PAYMENT, _payment_row(refund_ledger.posting_entry(done, vat_rate), at))
    event_id = EVENT_ID.secure()
    await conn.execute(_INSERT_EVENT, {
        "event_id": event_id,
        "partner_id": done.partner_id,
        "type": REFUND_POSTED,
        "flow_code": done.flow_code,
        "payload": event_body(event_id, REFUND_POSTED, at, done.model_dump(mode="json")),
        "created_at": at,
        "delivery_status": "pending",
        "attempts": 0,
    })
