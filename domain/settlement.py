"""What each money effect writes, decided in one pure function (docs/settlement.md#how-the-store-books).

The store books a money effect in three steps, inside the transaction of the state change that
causes it: it **loads** what the decision needs (the rows it locks, the reservation's account, the
refunds ledger's counters), calls **one function here**, and **writes** the :class:`LedgerWrite`
that function returns. A decision reads nothing and writes nothing: it says everything that is
written (the refund row, the numbers it used, the journal entries, the trigger) or refuses by
raising :class:`~domain.refusals.Refused` before anything is written.

- :func:`sale`: a reservation is created; its fares and deposits.
- :func:`flow_transition`: a flow moves; its charges, and its own refund (capped, never refused).
- :func:`new_refund`, :func:`posting`, :func:`rejection`, :func:`edit`: an agent's refund.
- :func:`deposit_refund`: a product's deposit given back.
- :func:`credit_issue`, :func:`credit_redemption`, :func:`credit_expiry`: a credit issued instead of
  a flow's refund, a change paid with it, what remains of it expiring (a :class:`CreditWrite`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from domain import credit_ledger, refund_ledger
from domain.credit_ledger import CREDIT_EXPIRED, CREDIT_ISSUED, CREDIT_REDEEMED, Credit, CreditGiven, CreditMovement, CreditPayment
from domain.journal import RESCHEDULING_REASON, Account, FlowRefund, JournalEntry, TransitionEffects, sale_entries
from domain.money import Money
from domain.products import ProductSpec
from domain.refund_ledger import DEPOSIT_REASON, REFUND_POSTED, Refund
from domain.refusals import Refusal, Refused


def flow_refund_key(flow_code: str) -> str:
    """The key that makes a flow's own refund one per flow."""
    return f"flow:{flow_code}"


def deposit_refund_key(product_id: str) -> str:
    """The key that gives a product's deposit back once."""
    return f"deposit:{product_id}"


# --- what a decision is taken on -------------------------------------------------------------------


@dataclass(frozen=True)
class Counters:
    """The refunds ledger's two counters, read locked in the deciding transaction: the last
    reference number and the last refund number given. A decision returns them with the numbers it
    used, and they are written with the refund, so a number is used exactly when its refund is."""

    last_reference: int
    last_number: int

    def next_reference(self) -> Counters:
        return replace(self, last_reference=self.last_reference + 1)

    def next_number(self) -> Counters:
        return replace(self, last_number=self.last_number + 1)


@dataclass(frozen=True)
class Ledger:
    """What a refund is decided on, read once the reservation's row is locked: the reservation's
    journal and the counters. Two refunds of one reservation are decided one after the other."""

    account: Account
    counters: Counters


@dataclass(frozen=True)
class SoldProduct:
    """A product as a decision about its money sees it: whose it is, and what was sold (``details``,
    the product as stored)."""

    product_id: str
    reservation_id: str
    partner_id: str
    details: Mapping[str, Any]
    # Travellers cancelled one by one (docs/api.md#partial-cancellation): traveller id → flow code.
    cancelled_travellers: Mapping[str, str] | None = None

    def remaining_paid(self) -> Money | None:
        """What the travellers not cancelled one by one paid; None for a product that names no fares."""
        fares = self.details.get("fares")
        if not fares:
            return None
        gone = self.cancelled_travellers or {}
        left = [Money.model_validate(f["amount"]) for f in fares if f["traveller_id"] not in gone]
        return sum(left[1:], left[0]) if left else Money.zero(Money.model_validate(fares[0]["amount"]).currency)

    @property
    def vat_rate(self) -> Decimal | None:
        rate = self.details.get("vat_rate")
        return None if rate is None else Decimal(rate)

    @property
    def deposit(self) -> Money | None:
        deposit = self.details.get("deposit")
        return None if deposit is None else Money.model_validate(deposit)


# --- what it writes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trigger:
    """An event for the partner, stored with the money it reports (docs/triggers.md)."""

    type: str
    partner_id: str
    flow_code: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class InsertOnce:
    """How a new refund is written: inserted once under ``effect_key`` (``flow:<code>``,
    ``deposit:<product>``) or, without one, under its ``back_office_code``. When that key is taken
    nothing more is written and ``taken`` is raised; None: the refund was written before, by the same
    transition recorded again, and that is no error."""

    effect_key: str | None
    taken: Refused | None


@dataclass(frozen=True)
class LedgerWrite:
    """Everything one decision writes, in the order it is written:

    - ``refund``: a new refund (``insert``), or a draft's new state (``insert`` None: stored only
      while the stored refund is still a draft);
    - ``counters``: the counters after the numbers used (None: none);
    - ``entries``: journal entries, each once by its effect key;
    - ``triggers``: events for the partner.
    """

    refund: Refund | None = None
    insert: InsertOnce | None = None
    counters: Counters | None = None
    entries: tuple[JournalEntry, ...] = ()
    triggers: tuple[Trigger, ...] = ()


def _posted(
    refund: Refund, counters: Counters, by: str, at: datetime, vat_rate: Decimal | None = None,
    insert: InsertOnce | None = None,
) -> LedgerWrite:
    """A refund posted: numbered next, booked (its amount negated) and reported with ``refund.posted``."""
    counters = counters.next_number()
    done = refund_ledger.posted(refund, counters.last_number, at, by)
    return LedgerWrite(
        refund=done, insert=insert, counters=counters, entries=(refund_ledger.posting_entry(done, vat_rate),),
        triggers=(Trigger(REFUND_POSTED, done.partner_id, done.flow_code, done.model_dump(mode="json")),),
    )


# --- the decisions ---------------------------------------------------------------------------------


def sale(reservation_id: str, partner_id: str, products: Sequence[tuple[str, ProductSpec]]) -> LedgerWrite:
    """A reservation is created: its fares and deposits (``domain.journal.sale_entries``)."""
    return LedgerWrite(entries=tuple(sale_entries(reservation_id, partner_id, products)))


def flow_transition(
    effects: TransitionEffects, product: SoldProduct, ledger: Ledger | None, refund_id: str, at: datetime
) -> LedgerWrite:
    """The money a flow transition moves (``domain.journal.transition_effects``): its charges at the
    product's VAT rate, and the flow's own refund, once per flow (``ledger`` is needed for that only).

    The refund cannot be refused (the supplier has cancelled already): when agents' refunds have taken
    part of the charge it is capped at what is left, and when nothing is left it is recorded as
    rejected, so the ledger still shows it (``domain.journal.Account.flow_refund``).
    """
    charges = effects.with_vat_rate(product.vat_rate).charges
    flow = effects.refund
    if flow is None:
        return LedgerWrite(entries=charges)
    if ledger is None:
        raise ValueError(f"the refund of flow {flow.flow_code} is decided on its reservation's ledger")
    requested = within_remaining(flow, product)
    if not requested.amount > 0:
        return LedgerWrite(entries=charges)
    amount, note = ledger.account.flow_refund(requested)
    counters = ledger.counters.next_reference()
    by = f"flow:{flow.flow_code}"
    refund = refund_ledger.draft(
        refund_id=refund_id, reference_number=counters.last_reference, reservation_id=flow.reservation_id,
        partner_id=flow.partner_id, product_id=flow.product_id, flow_code=flow.flow_code, amount=amount or requested,
        reason=flow.reason, notes=note, created_by=by, at=at, traveller_ids=flow.traveller_ids,
    )
    once = InsertOnce(flow_refund_key(flow.flow_code), taken=None)
    if amount is None:
        return LedgerWrite(refund=refund_ledger.rejected(refund, note, at, by), insert=once, counters=counters,
                           entries=charges)
    posted = _posted(refund, counters, by, at, product.vat_rate, once)
    return replace(posted, entries=charges + posted.entries)


def within_remaining(flow: FlowRefund, product: SoldProduct) -> Money:
    """A rescheduling's refund gives back what the travellers who remain paid, never the share of one
    cancelled already (its refund went with its own cancellation): the alternatives are priced when
    the change arrives, and a partial cancellation may end while the change waits for the product.
    The same holds when the refund is taken as a credit (``store.credit_records.book_credits``)."""
    left = product.remaining_paid()
    if flow.reason != RESCHEDULING_REASON or left is None or left.currency != flow.amount.currency:
        return flow.amount
    return left if left.amount < flow.amount.amount else flow.amount


def new_refund(
    ledger: Ledger,
    *,
    refund_id: str,
    reservation_id: str,
    partner_id: str,
    amount: Money,
    state: Literal["draft", "posted"],
    reason: str,
    notes: str,
    back_office_code: str | None,
    by: str,
    at: datetime,
) -> LedgerWrite:
    """An agent's refund, as a draft or posted at once; a posting must fit what is left of the charge."""
    if state == "posted":
        ledger.account.check_refund(amount)
    counters = ledger.counters.next_reference()
    refund = refund_ledger.draft(
        refund_id=refund_id, reference_number=counters.last_reference, reservation_id=reservation_id,
        partner_id=partner_id, amount=amount, reason=reason, notes=notes, back_office_code=back_office_code,
        created_by=by, at=at,
    )
    once = InsertOnce(None, duplicate_code(back_office_code))
    if state == "draft":
        return LedgerWrite(refund=refund, insert=once, counters=counters)
    return _posted(refund, counters, by, at, insert=once)


def posting(current: Refund, ledger: Ledger, by: str, at: datetime) -> LedgerWrite:
    """A draft posted, if it still fits what is left of the reservation's charge."""
    refund_ledger.ensure_draft(current)
    ledger.account.check_refund(current.amount)
    return _posted(current, ledger.counters, by, at)


def rejection(current: Refund, reason: str, by: str, at: datetime) -> LedgerWrite:
    return LedgerWrite(refund=refund_ledger.rejected(current, reason, at, by))


def edit(current: Refund, changes: dict[str, Any]) -> LedgerWrite:
    return LedgerWrite(refund=refund_ledger.edited(current, changes))


def deposit_refund(
    product: SoldProduct, refunded_already: bool, ledger: Ledger, refund_id: str, by: str, at: datetime
) -> LedgerWrite:
    """The product's deposit given back, posted at once, once: refused when the product carries
    none, when it was given back already, and when agents' refunds left less than it of the charge."""
    deposit = product.deposit
    if deposit is None:
        raise Refused(Refusal.NO_DEPOSIT, f"product {product.product_id} carries no deposit")
    if refunded_already:
        raise _refunded_already(product.product_id)
    ledger.account.check_refund(deposit)
    counters = ledger.counters.next_reference()
    refund = refund_ledger.draft(
        refund_id=refund_id, reference_number=counters.last_reference, reservation_id=product.reservation_id,
        partner_id=product.partner_id, product_id=product.product_id, amount=deposit, reason=DEPOSIT_REASON,
        category="deposit", created_by=by, at=at,
    )
    return _posted(refund, counters, by, at,
                   insert=InsertOnce(deposit_refund_key(product.product_id), _refunded_already(product.product_id)))


def duplicate_code(code: str | None) -> Refused:
    return Refused(Refusal.DUPLICATE_BACK_OFFICE_CODE, f"another refund has back_office_code {code!r}")


def _refunded_already(product_id: str) -> Refused:
    return Refused(Refusal.DEPOSIT_ALREADY_REFUNDED, f"the deposit of product {product_id} was refunded already")


# --- credits (docs/settlement.md#credits) ----------------------------------------------------------


@dataclass(frozen=True)
class CreditWrite:
    """Everything one decision about a credit writes, in the order it is written:

    - ``credit``: the credit after it, inserted once under ``credit:<flow code>`` when ``was`` is
      None, else updated only while the stored one is still ``was`` (the state it was decided on);
    - ``movement``: inserted once under its key (``domain.credit_ledger.movement_key``); when that key
      is taken nothing else is written: the same transition recorded again, an expiry run again;
    - ``entries`` (a redemption's journal entry) and ``triggers``.
    """

    credit: Credit
    movement: CreditMovement
    was: Credit | None = None
    entries: tuple[JournalEntry, ...] = ()
    triggers: tuple[Trigger, ...] = ()


def _reported(event_type: str, credit: Credit, flow_code: str | None) -> Trigger:
    return Trigger(event_type, credit.partner_id, flow_code, credit.model_dump(mode="json"))


def credit_issue(given: CreditGiven, account: Account, traveller_ids: Sequence[str], at: datetime) -> CreditWrite | None:
    """A flow's refund issued as a credit, once per flow: capped as the refund would be at what is left
    of the reservation's charge (``domain.journal.Account.flow_refund``), none when nothing is left.
    No journal entry: the partner paid the full fare and holds a credit instead of cash.
    ``traveller_ids``: the reservation's, for a flow that names none."""
    amount, note = account.flow_refund(given.amount)
    if amount is None:
        return None
    credit = credit_ledger.issued(given, amount, given.traveller_ids or traveller_ids, note, at)
    return CreditWrite(credit, credit.movements[-1], triggers=(_reported(CREDIT_ISSUED, credit, given.flow_code),))


def credit_redemption(credit: Credit | None, payment: CreditPayment, at: datetime) -> CreditWrite | None:
    """A change paid with a credit, decided when its ``modified`` transition is recorded (the change is
    applied at the supplier by then): the credit pays ``min(remaining, due)``, booked as one
    ``credit_redemption`` entry (−amount) beside the change's fees. A credit that no longer pays
    (used or expired meanwhile; not the partner's; another currency) pays nothing, and the change is
    due in cash as usual: it cannot be refused any more."""
    if credit is None or credit.partner_id != payment.partner_id or not credit.payable(payment.due.currency, at):
        return None
    take = credit.remaining if credit.remaining.amount <= payment.due.amount else payment.due
    after = credit_ledger.redeemed(credit, take, payment.flow_code, at)
    return CreditWrite(after, after.movements[-1], was=credit, entries=(credit_ledger.redemption_entry(payment, take),),
                       triggers=(_reported(CREDIT_REDEEMED, after, payment.flow_code),))


def credit_expiry(credit: Credit | None, at: datetime) -> CreditWrite | None:
    """What remains of an active credit expires, once; a used or already expired credit is left as it
    is. Expiry moves no cash: no journal entry."""
    if credit is None or credit.state != "active":
        return None
    after = credit_ledger.expired(credit, at)
    return CreditWrite(after, after.movements[-1], was=credit, triggers=(_reported(CREDIT_EXPIRED, after, None),))
