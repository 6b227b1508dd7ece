"""The payments journal (docs/settlement.md#the-payments-journal): which entries a
sale or a flow transition books, and the books' invariant.

Every entry is signed from the partner's side: positive, the partner owes; negative, owed to the
partner. An entry names its ``effect_key``, the one money effect it books (``sale:PRD-…:fare``,
``CF-…:fee``, ``refund:rfd_…``): the store keeps it unique, so an effect written twice (a retried
activity, a replayed workflow, a repeated request) is written once.

The rules here are pure: ``domain.settlement`` decides with them what the store writes, inside the
transaction of the state change that causes the money to move.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict

from domain.codes import FlowKind
from domain.flow_info import FlowRecord
from domain.money import DecimalString, Money
from domain.products import ProductSpec
from domain.refusals import Refusal, Refused
from domain.waivers import WaiverCode

Category = Literal["fare", "deposit", "refund", "fee", "fare_difference", "credit_redemption"]
CATEGORIES: tuple[str, ...] = get_args(Category)
PaymentState = Literal["to_invoice", "invoiced"]
PAYMENT_STATES: tuple[str, ...] = get_args(PaymentState)

# Why a flow refunds: the ``reason`` of the refund it posts.
CANCELLATION_REASON = "cancellation"
RESCHEDULING_REASON = "rescheduling"


class JournalEntry(BaseModel):
    """One money effect as booked: what the store writes as a ``payments`` row."""

    model_config = ConfigDict(frozen=True)

    effect_key: str
    reservation_id: str
    partner_id: str
    product_id: str | None = None
    flow_code: str | None = None
    refund_id: str | None = None
    # The credit a ``credit_redemption`` takes from (domain.credit_ledger).
    credit_id: str | None = None
    category: Category
    amount: Money
    vat_rate: DecimalString | None = None


class Payment(BaseModel):
    """A journal entry as ``GET /v1/payments`` answers it ."""

    payment_id: str
    reservation_id: str
    partner_id: str
    product_id: str | None
    flow_code: str | None
    refund_id: str | None
    credit_id: str | None = None
    category: Category
    amount: Money
    vat_rate: DecimalString | None
    state: PaymentState
    created_at: AwareDatetime
    invoiced_at: AwareDatetime | None
    # The waiver of the cancellation that booked the entry, and the penalty it gave up (docs/settlement.md#waivers).
    waiver_code: WaiverCode | None = None
    penalty_waived: Money | None = None


# --- what a sale books ----------------------------------------------------------------------------


def sale_entries(reservation_id: str, partner_id: str, products: Sequence[tuple[str, ProductSpec]]) -> list[JournalEntry]:
    """A reservation is created: its fare, one entry per product, and the product's deposit if it has one.

    A deposit is money held, not a supply, so it carries no VAT rate.
    """
    entries = []
    for product_id, product in products:
        entries.append(JournalEntry(
            effect_key=f"sale:{product_id}:fare", reservation_id=reservation_id, partner_id=partner_id,
            product_id=product_id, category="fare", amount=product.price, vat_rate=product.vat_rate,
        ))
        if product.deposit is not None:
            entries.append(JournalEntry(
                effect_key=f"sale:{product_id}:deposit", reservation_id=reservation_id, partner_id=partner_id,
                product_id=product_id, category="deposit", amount=product.deposit,
            ))
    return entries


# --- what a flow transition books -----------------------------------------------------------------


@dataclass(frozen=True)
class FlowRefund:
    """A refund a flow posts itself: one per flow, keyed by its code."""

    flow_code: str
    reservation_id: str
    partner_id: str
    product_id: str
    amount: Money
    reason: str
    # The travellers it refunds, when the flow names them (a partial cancellation).
    traveller_ids: list[str] | None = None


@dataclass(frozen=True)
class TransitionEffects:
    """The money a flow transition moves: charges to book, and the refund to post, if any."""

    charges: tuple[JournalEntry, ...] = ()
    refund: FlowRefund | None = None

    def __bool__(self) -> bool:
        return bool(self.charges) or self.refund is not None

    def with_vat_rate(self, vat_rate: Decimal | None) -> TransitionEffects:
        """The charges at the product's VAT rate."""
        return TransitionEffects(tuple(c.model_copy(update={"vat_rate": vat_rate}) for c in self.charges), self.refund)


def _money(info: dict[str, Any], name: str) -> Money | None:
    value = info.get(name)
    return None if value is None else Money.model_validate(value)


def _positive(money: Money | None) -> bool:
    return money is not None and money.amount > 0


def transition_effects(record: FlowRecord) -> TransitionEffects:
    """The money a flow's transition moves (docs/settlement.md#the-payments-journal):

    - a cancellation that ends ``cancelled`` with a refund > 0 posts that refund;
    - a change ``modified`` books the change fee and a positive fare difference (a context), or the
      checkout's amount as a fee (an agent's checkout);
    - a rescheduling ``accepted`` / ``auto_accepted`` with the ``refund`` alternative posts the full price.

    Every other transition moves no money. Read from the recorded flow info, field by field, so a
    record that carries only what it needs is enough.
    """
    info = record.info
    kind, status = record.kind, record.status
    if kind == FlowKind.CANCELLATION and status == "cancelled":
        refund = _money(info, "refund")
        if refund is not None and _positive(refund):
            return TransitionEffects(refund=_flow_refund(record, refund, CANCELLATION_REASON))
        return TransitionEffects()
    if kind == FlowKind.CHANGE and status == "modified":
        return TransitionEffects(charges=_change_charges(record))
    if kind == FlowKind.RESCHEDULING and status in ("accepted", "auto_accepted"):
        chosen = next(
            (a for a in info.get("alternatives") or [] if a.get("alternative_id") == info.get("alternative_id")), None
        )
        if chosen is not None and chosen.get("kind") == "refund":
            refund = _money(chosen, "refund")
            if refund is not None and _positive(refund):
                return TransitionEffects(refund=_flow_refund(record, refund, RESCHEDULING_REASON))
    return TransitionEffects()


def _flow_refund(record: FlowRecord, amount: Money, reason: str) -> FlowRefund:
    travellers = record.info.get("traveller_ids")
    return FlowRefund(record.code, record.reservation_id, record.partner_id, record.product_id, amount, reason,
                      list(travellers) if travellers else None)


def _change_charges(record: FlowRecord) -> tuple[JournalEntry, ...]:
    info = record.info
    booked: list[tuple[Category, Money | None]]
    if info.get("resolution") == "manual":
        booked = [("fee", _money(info, "total_due"))]
    else:
        booked = [("fee", _money(info, "change_fee")), ("fare_difference", _money(info, "fare_difference"))]
    return tuple(
        JournalEntry(
            effect_key=f"{record.code}:{category}", reservation_id=record.reservation_id, partner_id=record.partner_id,
            product_id=record.product_id, flow_code=record.code, category=category, amount=amount,
        )
        for category, amount in booked
        if amount is not None and _positive(amount)
    )


# --- the books of one reservation -----------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """One reservation's journal, as far as deciding a refund needs: the signed amounts booked.

    The store reads it inside the transaction that locks the reservation, so two refunds decided
    at once see each other.
    """

    amounts: tuple[Money, ...]
    # The credits issued from the reservation instead of refunds (domain.credit_ledger): value given
    # back too, though no cash moved, so what is left to give back is less by them.
    credited: tuple[Money, ...] = ()

    @classmethod
    def of(cls, entries: Iterable[JournalEntry], credited: Iterable[Money] = ()) -> Account:
        return cls(tuple(e.amount for e in entries), tuple(credited))

    def currencies(self) -> list[str]:
        """The currencies the reservation was charged in: the only ones it can be refunded in."""
        return sorted({a.currency for a in self.amounts if a.amount > 0})

    def charged(self, currency: str) -> Money:
        return _sum((a for a in self.amounts if a.currency == currency and a.amount > 0), currency)

    def refunded(self, currency: str) -> Money:
        return -_sum((a for a in self.amounts if a.currency == currency and a.amount < 0), currency)

    def balance(self, currency: str) -> Money:
        """What the partner pays in ``currency`` after everything booked so far (the invariant's sum)."""
        return self.charged(currency) - self.refunded(currency)

    def credited_in(self, currency: str) -> Money:
        return _sum((a for a in self.credited if a.currency == currency), currency)

    def left(self, currency: str) -> Money:
        """What may still be given back in ``currency``, as money or as a credit: the balance less the credits issued."""
        return self.balance(currency) - self.credited_in(currency)

    def _given_back(self, currency: str, refunded: str = "refunded") -> str:
        credited = self.credited_in(currency)
        return f"{self.refunded(currency)} {refunded}" + (f", {credited} given as credits" if credited.amount else "")

    def check_refund(self, amount: Money) -> None:
        """Posted refunds (and credits issued) never exceed what the reservation was charged in that currency."""
        left = self.left(amount.currency)
        if amount.amount > left.amount:
            raise Refused(
                Refusal.REFUND_EXCEEDS_CHARGED,
                f"refunding {amount} would exceed what the reservation was charged: {left} is left to refund "
                f"({self.charged(amount.currency)} charged, {self._given_back(amount.currency)})",
            )

    def flow_refund(self, requested: Money) -> tuple[Money | None, str]:
        """What a flow's refund posts: all of it, or what is left of the charge when agents' refunds
        already took part of it (never more than was charged), or nothing when nothing is left.

        A flow's refund cannot be refused (the product is cancelled at the supplier already), so it
        is capped instead; the note says so for the auditor.
        """
        left = self.left(requested.currency)
        if requested.amount <= left.amount:
            return requested, ""
        note = (f"requested {requested}; capped at {left}, what was left of the charge "
                f"({self.charged(requested.currency)} charged, {self._given_back(requested.currency, 'already refunded')})")
        return (left if left.amount > 0 else None), note


def _sum(amounts: Iterable[Money], currency: str) -> Money:
    total = Money.zero(currency)
    for amount in amounts:
        total = total + amount
    return total


def balances(entries: Iterable[JournalEntry]) -> dict[str, Money]:
    """The sum of the entries per currency: what the partner finally pays (docs/settlement.md#the-invariant)."""
    totals: dict[str, Money] = {}
    for entry in entries:
        currency = entry.amount.currency
        totals[currency] = totals.get(currency, Money.zero(currency)) + entry.amount
    return totals


@dataclass(frozen=True)
class PostedRefund:
    """What the invariant needs of a posted refund."""

    refund_id: str
    number: int
    amount: Money


def invariant_violations(entries: Sequence[JournalEntry], posted: Sequence[PostedRefund]) -> list[str]:
    """Everything wrong with a reservation's books (empty when they balance):

    - refunds never exceed charges, per currency (the partner never ends up owed more than it paid);
    - every posted refund has exactly one journal entry, of its negated amount, and every refund
      entry names a posted refund;
    - effect keys are unique.
    """
    problems = []
    account = Account.of(entries)
    for currency in sorted({e.amount.currency for e in entries}):
        if account.balance(currency).amount < 0:
            problems.append(f"{currency}: refunded {account.refunded(currency)} exceeds charged {account.charged(currency)}")
    by_refund: dict[str, list[JournalEntry]] = {}
    for entry in entries:
        if entry.refund_id is not None:
            by_refund.setdefault(entry.refund_id, []).append(entry)
    for refund in posted:
        booked = by_refund.pop(refund.refund_id, [])
        if [e.amount for e in booked] != [-refund.amount]:
            problems.append(f"refund {refund.refund_id} of {refund.amount} is booked as {[str(e.amount) for e in booked]}")
    for refund_id in by_refund:
        problems.append(f"journal entries name refund {refund_id}, which is not posted")
    keys = [e.effect_key for e in entries]
    if len(keys) != len(set(keys)):
        problems.append("an effect key is booked twice")
    return problems


def gapless(numbers: Iterable[int]) -> bool:
    """Posted refunds are numbered 1, 2, 3… with no gap and no repeat (accountants need that)."""
    ordered = sorted(numbers)
    return ordered == list(range(1, len(ordered) + 1))

