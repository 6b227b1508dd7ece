"""The payments journal (docs/settlement.md#the-payments-journal): a partner reads its own entries
and confirms them; agents and admins read every partner's."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from domain.journal import Payment
from services.bootstrap import Deps
from services.requester import Requester
from services.visibility import own_payment, partner_rows
from store.payments_journal import PaymentFilter


async def page(deps: Deps, requester: Requester, where: PaymentFilter, after: int | None, limit: int) -> list[tuple[int, Payment]]:
    """Up to ``limit`` entries after the row ``after``, oldest first, with their row numbers; a
    partner's are its own."""
    return await partner_rows(requester.principal, where.partner_id,
                              lambda partner_id: deps.store.payments.page(replace(where, partner_id=partner_id), after, limit))


async def confirm(deps: Deps, requester: Requester, payment_id: str) -> Payment:
    """The partner confirms one of its entries: it is invoiced."""
    await own_payment(deps, requester.principal, payment_id)
    confirmed = await deps.store.payments.confirm(payment_id, datetime.now(timezone.utc))
    assert confirmed is not None  # entries are never deleted
    return confirmed
