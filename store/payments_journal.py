"""Reading the payments journal and confirming its entries (docs/settlement.md#the-payments-journal).

Entries are written by ``store.money_effects`` in the transactions that cause them; here they are
only read, and moved from ``to_invoice`` to ``invoiced`` when the partner confirms them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from domain.journal import JournalEntry, Payment
from domain.money import Money
from store.db import Repository, page_after
from store.schema import flows, payments


@dataclass(frozen=True)
class PaymentFilter:
    """``partner_id`` None: every partner's (admin and agents)."""

    partner_id: str | None = None
    reservation_id: str | None = None
    category: str | None = None
    state: str | None = None
    start_time: datetime | None = None  # inclusive
    end_time: datetime | None = None  # exclusive


def _with_waiver(query: sa.Select[Any]) -> sa.Select[Any]:
    """The query with the info of the flow that booked each entry: a cancellation's waiver is shown on
    its entries (docs/settlement.md#waivers), read from the flow, where it is recorded once."""
    return query.outerjoin(flows, flows.c.code == payments.c.flow_code).add_columns(flows.c.info.label("flow_info"))


def _waiver(row: Any) -> dict[str, Any]:
    info = getattr(row, "flow_info", None)
    waiver = info.get("waiver") if isinstance(info, dict) else None
    if not isinstance(waiver, dict):
        return {}
    waived = waiver.get("penalty_waived")
    return {"waiver_code": waiver.get("code"), "penalty_waived": None if waived is None else Money.model_validate(waived)}


def _payment(row: Any) -> Payment:
    return Payment(
        **_waiver(row),
        payment_id=row.payment_id,
        reservation_id=row.reservation_id,
        partner_id=row.partner_id,
        product_id=row.product_id,
        flow_code=row.flow_code,
        refund_id=row.refund_id,
        credit_id=row.credit_id,
        category=row.category,
        amount=Money.of(row.amount, row.currency),
        vat_rate=row.vat_rate,
        state=row.state,
        created_at=row.created_at,
        invoiced_at=row.invoiced_at,
    )


class PaymentsJournal(Repository):
    async def page(self, where: PaymentFilter, after_seq: int | None, limit: int) -> list[tuple[int, Payment]]:
        """Entries oldest first (in the order they were booked), after ``after_seq``; each with its seq for the cursor."""
        query = page_after(payments, {
            payments.c.partner_id: where.partner_id,
            payments.c.reservation_id: where.reservation_id,
            payments.c.category: where.category,
            payments.c.state: where.state,
        }, after_seq, limit)
        if where.start_time is not None:
            query = query.where(payments.c.created_at >= where.start_time)
        if where.end_time is not None:
            query = query.where(payments.c.created_at < where.end_time)
        async with self._reading() as conn:
            rows = (await conn.execute(_with_waiver(query))).all()
        return [(row.seq, _payment(row)) for row in rows]

    async def payment(self, payment_id: str) -> Payment | None:
        async with self._reading() as conn:
            row = (await conn.execute(_with_waiver(sa.select(payments)).where(payments.c.payment_id == payment_id))).first()
        return None if row is None else _payment(row)

    async def confirm(self, payment_id: str, at: datetime) -> Payment | None:
        """Mark the entry ``invoiced``; confirming again changes nothing."""
        async with self._writing() as conn:
            await conn.execute(
                payments.update()
                .where(payments.c.payment_id == payment_id, payments.c.state == "to_invoice")
                .values(state="invoiced", invoiced_at=at)
            )
            row = (await conn.execute(_with_waiver(sa.select(payments)).where(payments.c.payment_id == payment_id))).first()
        return None if row is None else _payment(row)

    async def entries(self, reservation_id: str) -> list[JournalEntry]:
        """A reservation's journal as booked, oldest first: what the invariant is checked on."""
        async with self._reading() as conn:
            rows = (
                await conn.execute(
                    sa.select(payments).where(payments.c.reservation_id == reservation_id).order_by(payments.c.seq)
                )
            ).all()
        return [
            JournalEntry(
                effect_key=row.effect_key, reservation_id=row.reservation_id, partner_id=row.partner_id,
                product_id=row.product_id, flow_code=row.flow_code, refund_id=row.refund_id, credit_id=row.credit_id,
                category=row.category,
                amount=Money.of(row.amount, row.currency), vat_rate=row.vat_rate,
            )
            for row in rows
        ]
