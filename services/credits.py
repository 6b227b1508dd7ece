"""Credits (docs/settlement.md#credits): a partner reads its own, agents and admins every partner's,
finance their totals; and what a request to pay with one checks before the flow takes it.

Credits are issued, redeemed and expired by the flows and the store (``store.credit_records``),
never through here: a request only names a credit to pay a change with.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

from domain.credit_ledger import Credit, CreditBalance, check_payable
from domain.money import Money
from services.bootstrap import Deps
from services.requester import Requester
from services.visibility import partner_rows, visible_credit
from store.credit_records import CreditFilter


async def credit(deps: Deps, requester: Requester, credit_id: str) -> Credit:
    return await visible_credit(deps, requester.principal, credit_id)


async def page(deps: Deps, requester: Requester, where: CreditFilter, after: int | None, limit: int) -> list[tuple[int, Credit]]:
    """Up to ``limit`` credits after the row ``after``, in the order they were issued, with their row
    numbers; a partner's are its own."""
    return await partner_rows(requester.principal, where.partner_id,
                              lambda partner_id: deps.store.credits.page(replace(where, partner_id=partner_id), after, limit))


async def balances(
    deps: Deps, requester: Requester, partner_id: str | None, currency: str | None, after: tuple[str, str] | None, limit: int
) -> list[CreditBalance]:
    """Per partner and currency: issued, redeemed, expired unused, outstanding; a partner's are its own."""
    return await partner_rows(requester.principal, partner_id,
                              lambda partner: deps.store.credits.balances(partner, currency, after, limit))


async def check_payment(deps: Deps, requester: Requester, credit_id: str, due: Money) -> Credit:
    """The credit a partner names to pay ``due`` with: its own (else 404), in that currency (422
    ``credit_currency_mismatch``), active and not past its expiry (409 ``credit_not_active``).

    Checked when the booking is asked for; the flow takes from it only when the change is recorded
    ``modified``, re-checked there under the credit's lock (docs/settlement.md#paying-with-a-credit)."""
    found = await visible_credit(deps, requester.principal, credit_id)
    check_payable(found, due, datetime.now(timezone.utc))
    return found
