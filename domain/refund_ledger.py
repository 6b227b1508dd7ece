"""The refunds ledger (docs/settlement.md#the-refunds-ledger): a refund's
life, draft → posted | rejected, once.

- ``reference_number`` is given when a refund is created (drafts too), in creation order.
- ``number`` is given when it is posted: posted refunds are numbered 1, 2, 3… with no gap and no
  repeat (the store draws it from a counter in the posting transaction).
- Only a draft changes: it is edited, posted or rejected; anything else is ``refund_not_draft``.
- A posted refund books one journal entry of its negated amount (``posting_entry``), category
  ``refund``, or ``deposit`` for a deposit given back.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict

from domain.journal import Account, JournalEntry
from domain.money import Money
from domain.refusals import Refusal, Refused

RefundState = Literal["draft", "posted", "rejected"]
REFUND_STATES: tuple[str, ...] = get_args(RefundState)
# The journal category a refund's posting books: money given back, or a deposit given back.
RefundCategory = Literal["refund", "deposit"]

# The trigger each posting emits (docs/triggers.md).
REFUND_POSTED = "refund.posted"
DEPOSIT_REASON = "deposit"


class Refund(BaseModel):
    """A refund as ``GET /v1/refunds/{refund_id}`` answers it and as trigger ``refund.posted`` carries it."""

    model_config = ConfigDict(frozen=True)

    refund_id: str
    reference_number: str
    number: str | None = None
    reservation_id: str
    partner_id: str
    product_id: str | None = None
    flow_code: str | None = None
    # The travellers a flow's refund is for, when the flow names them (a partial cancellation).
    traveller_ids: list[str] | None = None
    category: RefundCategory = "refund"
    amount: Money
    state: RefundState
    reason: str
    notes: str = ""
    back_office_code: str | None = None
    rejection_reason: str | None = None
    created_by: str
    decided_by: str | None = None
    created_at: AwareDatetime
    posted_at: AwareDatetime | None = None
    rejected_at: AwareDatetime | None = None


REFUND_FIELDS: tuple[str, ...] = tuple(Refund.model_fields)
EDITABLE: frozenset[str] = frozenset({"amount", "reason", "notes", "back_office_code"})


def amount_problems(amount: Money, account: Account, field: str = "amount") -> list[tuple[str, str]]:
    """A refund's amount is greater than zero, in a currency the reservation was charged in."""
    problems = []
    if amount.amount <= 0:
        problems.append((f"{field}.amount", "must be greater than zero"))
    currencies = account.currencies()
    if amount.currency not in currencies:
        problems.append((f"{field}.currency", f"must be a currency of the reservation: {', '.join(currencies) or 'none'}"))
    return problems


def draft(
    *,
    refund_id: str,
    reference_number: int,
    reservation_id: str,
    partner_id: str,
    amount: Money,
    reason: str,
    created_by: str,
    at: datetime,
    notes: str = "",
    back_office_code: str | None = None,
    product_id: str | None = None,
    flow_code: str | None = None,
    category: RefundCategory = "refund",
    traveller_ids: list[str] | None = None,
) -> Refund:
    if reference_number < 1:
        raise ValueError("reference numbers start at 1")
    return Refund(
        refund_id=refund_id, reference_number=str(reference_number), reservation_id=reservation_id,
        partner_id=partner_id, product_id=product_id, flow_code=flow_code, traveller_ids=traveller_ids, category=category,
        amount=amount,
        state="draft", reason=reason, notes=notes, back_office_code=back_office_code, created_by=created_by,
        created_at=at,
    )


def ensure_draft(refund: Refund) -> None:
    if refund.state != "draft":
        raise Refused(Refusal.REFUND_NOT_DRAFT, f"refund {refund.refund_id} is {refund.state}: only a draft can change")


def edited(refund: Refund, changes: dict[str, Any]) -> Refund:
    """A draft with new ``amount``, ``reason``, ``notes`` or ``back_office_code``."""
    ensure_draft(refund)
    unknown = set(changes) - EDITABLE
    if unknown:
        raise ValueError(f"not editable: {', '.join(sorted(unknown))}")
    return refund.model_copy(update=changes)


def posted(refund: Refund, number: int, at: datetime, by: str) -> Refund:
    ensure_draft(refund)
    if number < 1:
        raise ValueError("posted refunds are numbered from 1")
    return refund.model_copy(update={"state": "posted", "number": str(number), "posted_at": at, "decided_by": by})


def rejected(refund: Refund, reason: str, at: datetime, by: str) -> Refund:
    ensure_draft(refund)
    return refund.model_copy(update={"state": "rejected", "rejection_reason": reason, "rejected_at": at, "decided_by": by})


def posting_entry(refund: Refund, vat_rate: Decimal | None = None) -> JournalEntry:
    """The journal entry a posted refund books: its amount, negated (owed to the partner)."""
    if refund.state != "posted":
        raise ValueError(f"refund {refund.refund_id} is {refund.state}: only a posted refund is booked")
    return JournalEntry(
        effect_key=f"refund:{refund.refund_id}", reservation_id=refund.reservation_id, partner_id=refund.partner_id,
        product_id=refund.product_id, flow_code=refund.flow_code, refund_id=refund.refund_id,
        category=refund.category, amount=-refund.amount, vat_rate=vat_rate,
    )
