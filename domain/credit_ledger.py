"""Credits (docs/settlement.md#credits): a refund given as a voucher instead of money, what a flow
records when its partner takes one, a credit's life (active → used | expired, once) and the
invariants its books keep.

- A flow that would post a refund (a cancellation ``cancelled``, a rescheduling applied with its
  ``refund`` alternative) issues a credit instead when its partner chose ``refund_to: credit``: the
  same amount, capped as the refund would be, and no refund, journal entry or cash. One per flow:
  its id is derived from the flow code and its key is ``credit:<flow code>``.
- A partner pays a change with it: the credit pays ``min(remaining, what the change books)``, each
  redemption a movement and a ``credit_redemption`` journal entry (−amount) on the changed
  reservation. It is ``used`` when nothing remains.
- At ``expires_at`` what remains expires, once; a used credit does not expire. Expiry moves no cash.

For every credit ``amount = redeemed + expired + remaining`` and ``remaining ≥ 0``
(:func:`violations`); the store's ``credits`` table holds the same as constraints.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, TypeAdapter

from domain.codes import CREDIT_ID, FlowKind
from domain.flow_info import FlowRecord
from domain.journal import JournalEntry
from domain.money import Money
from domain.refusals import Refusal, Refused

RefundTo = Literal["original_payment", "credit"]
CreditState = Literal["active", "used", "expired"]
CREDIT_STATES: tuple[str, ...] = get_args(CreditState)
MovementKind = Literal["issued", "redeemed", "expired"]

# AFTERSALES_CREDIT_VALIDITY's default, and the validity of flows started before the setting existed.
CREDIT_VALIDITY = timedelta(days=365)
# What a partner names as a checkout's payment method to pay it with a credit (its ``credit_id``).
CREDIT_PAYMENT_METHOD = "credit"
# The journal category of a redemption (domain.journal).
CREDIT_REDEMPTION = "credit_redemption"

# The triggers (docs/triggers.md): their ``data`` is the credit as GET /v1/credits/{credit_id} answers it.
CREDIT_ISSUED = "credit.issued"
CREDIT_REDEEMED = "credit.redeemed"
CREDIT_EXPIRED = "credit.expired"

_INSTANT: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)


class CreditMovement(BaseModel):
    """One change of a credit's value: issued (its amount), redeemed by a flow, or expired (what remained)."""

    model_config = ConfigDict(frozen=True)

    kind: MovementKind
    amount: Money
    flow_code: str | None = None
    at: AwareDatetime


class Credit(BaseModel):
    """A credit as ``GET /v1/credits/{credit_id}`` answers it and as its triggers carry it."""

    model_config = ConfigDict(frozen=True)

    credit_id: str
    partner_id: str
    reservation_id: str
    product_id: str | None = None
    flow_code: str
    traveller_ids: list[str]
    amount: Money
    remaining: Money
    redeemed: Money
    expired: Money
    state: CreditState
    expires_at: AwareDatetime
    created_at: AwareDatetime
    notes: str = ""
    movements: list[CreditMovement]

    def payable(self, currency: str, at: datetime) -> bool:
        """Whether it may pay for something in ``currency`` at ``at``: active, not past its expiry,
        something left, and that currency."""
        return self.active_at(at) and self.currency == currency

    def active_at(self, at: datetime) -> bool:
        # Past expires_at it is expired, even while the expiry is still being recorded (a worker down).
        return self.state == "active" and at < self.expires_at and self.remaining.amount > 0

    @property
    def currency(self) -> str:
        return self.amount.currency

    def paid_for(self, flow_code: str) -> Money:
        """What it paid for the flow ``flow_code`` (nothing, when it paid nothing for it)."""
        paid = Money.zero(self.currency)
        for movement in self.movements:
            if movement.kind == "redeemed" and movement.flow_code == flow_code:
                paid = paid + movement.amount
        return paid


class CreditBalance(BaseModel):
    """A partner's credits in one currency, as finance reads them: how many, what was issued, redeemed,
    expired unused (breakage), and what is still outstanding (the liability carried)."""

    partner_id: str
    currency: str
    credits: int
    issued: Money
    redeemed: Money
    expired: Money
    outstanding: Money


class RefundDestination(BaseModel):
    """Where a flow's refund goes (docs/settlement.md#credits): back to the original payment, or into
    a credit, whose id and expiry the transition that issues it records."""

    refund_to: RefundTo = "original_payment"
    credit_id: str | None = None
    credit_expires_at: AwareDatetime | None = None


def credit_id_for(flow_code: str) -> str:
    """The id of the credit a flow issues, derived from its code: the flow names it before the store
    writes it (its expiry is started with it), and a transition recorded again names the same one."""
    seed = hashlib.sha256(f"credit\n{flow_code}".encode()).digest()
    return CREDIT_ID.new(random.Random(seed))


def credit_key(flow_code: str) -> str:
    """The key that makes a flow's credit one per flow."""
    return f"credit:{flow_code}"


def credit_terms(flow_code: str, refund: Money | None, refund_to: RefundTo, validity: timedelta, now: datetime) -> dict[str, Any]:
    """The fields a flow's refunding transition records: where the refund goes and, when it becomes
    a credit (something to refund, ``refund_to: credit``), the credit's id and when it expires."""
    if refund_to != "credit" or refund is None or refund.amount <= 0:
        return {"refund_to": refund_to}
    return {"refund_to": refund_to, "credit_id": credit_id_for(flow_code), "credit_expires_at": now + validity}


# --- what a transition gives or takes -----------------------------------------------------------------


@dataclass(frozen=True)
class CreditGiven:
    """A flow's refund taken as a credit: what its transition issues."""

    credit_id: str
    flow_code: str
    reservation_id: str
    partner_id: str
    product_id: str
    # The travellers it refunds, when the flow names them (a partial cancellation); else the reservation's.
    traveller_ids: tuple[str, ...] | None
    amount: Money
    expires_at: datetime


@dataclass(frozen=True)
class CreditPayment:
    """A change paid with a credit: what its ``modified`` transition takes from it (at most ``due``,
    the sum of what the change books)."""

    credit_id: str
    flow_code: str
    reservation_id: str
    partner_id: str
    product_id: str
    due: Money


def refund_taken_as_credit(record: FlowRecord) -> bool:
    """Whether the refund a transition moves (if any) goes into a credit instead of back to the payment."""
    return record.info.get("refund_to") == "credit"


def given_as_credit(record: FlowRecord, refund: Money | None) -> CreditGiven | None:
    """The credit a transition issues: its refund (``domain.journal.transition_effects``), when the
    partner took it as a credit."""
    info = record.info
    if refund is None or not refund_taken_as_credit(record):
        return None
    expires_at = info.get("credit_expires_at")
    if expires_at is None:
        raise ValueError(f"flow {record.code} gives a credit without recording when it expires")
    travellers = info.get("traveller_ids")
    return CreditGiven(
        credit_id=credit_id_for(record.code), flow_code=record.code, reservation_id=record.reservation_id,
        partner_id=record.partner_id, product_id=record.product_id,
        traveller_ids=tuple(travellers) if travellers else None, amount=refund, expires_at=_INSTANT.validate_python(expires_at),
    )


def paid_with_credit(record: FlowRecord, charges: Sequence[JournalEntry]) -> CreditPayment | None:
    """The credit a change's ``modified`` transition is paid with, if the partner named one and the
    change books something."""
    credit_id = record.info.get("credit_id")
    if record.kind != FlowKind.CHANGE or record.status != "modified" or not credit_id or not charges:
        return None
    due = Money.zero(charges[0].amount.currency)
    for charge in charges:
        due = due + charge.amount
    return CreditPayment(credit_id=str(credit_id), flow_code=record.code, reservation_id=record.reservation_id,
                         partner_id=record.partner_id, product_id=record.product_id, due=due)


def check_payable(credit: Credit, due: Money, at: datetime) -> None:
    """A partner naming a credit to pay ``due`` with: the same currency (422), still active (409)."""
    if credit.currency != due.currency:
        raise Refused(Refusal.CREDIT_CURRENCY_MISMATCH,
                      f"credit {credit.credit_id} is in {credit.currency}; this is due in {due.currency}")
    if not credit.active_at(at):
        state = credit.state if credit.state != "active" else "expired"
        raise Refused(Refusal.CREDIT_NOT_ACTIVE, f"credit {credit.credit_id} is {state}: it pays for nothing more")


# --- a credit's life -------------------------------------------------------------------------------------


def issued(given: CreditGiven, amount: Money, traveller_ids: Sequence[str], notes: str, at: datetime) -> Credit:
    zero = Money.zero(amount.currency)
    return Credit(
        credit_id=given.credit_id, partner_id=given.partner_id, reservation_id=given.reservation_id,
        product_id=given.product_id, flow_code=given.flow_code, traveller_ids=list(traveller_ids), amount=amount,
        remaining=amount, redeemed=zero, expired=zero, state="active", expires_at=given.expires_at, created_at=at,
        notes=notes, movements=[CreditMovement(kind="issued", amount=amount, flow_code=given.flow_code, at=at)],
    )


def redeemed(credit: Credit, take: Money, flow_code: str, at: datetime) -> Credit:
    """``take`` (more than nothing, at most what remains) paid for ``flow_code``; used when nothing remains."""
    if not credit.active_at(at) or not 0 < take.amount <= credit.remaining.amount:
        raise ValueError(f"credit {credit.credit_id} cannot pay {take}: {credit.state}, {credit.remaining} left")
    remaining = credit.remaining - take
    return credit.model_copy(update={
        "remaining": remaining, "redeemed": credit.redeemed + take, "state": "used" if remaining.is_zero() else "active",
        "movements": [*credit.movements, CreditMovement(kind="redeemed", amount=take, flow_code=flow_code, at=at)],
    })


def expired(credit: Credit, at: datetime) -> Credit:
    """What remains expires (an active credit only: a used one has nothing left, an expired one expired once)."""
    if credit.state != "active":
        raise ValueError(f"credit {credit.credit_id} is {credit.state}: only an active credit expires")
    zero = Money.zero(credit.currency)
    return credit.model_copy(update={
        "remaining": zero, "expired": credit.expired + credit.remaining, "state": "expired",
        "movements": [*credit.movements, CreditMovement(kind="expired", amount=credit.remaining, at=at)],
    })


def movement_key(credit_id: str, movement: CreditMovement) -> str:
    """The key that makes each movement once: issued and expired once per credit, redeemed once per flow."""
    if movement.kind == "redeemed":
        return f"{credit_id}:redeemed:{movement.flow_code}"
    return f"{credit_id}:{movement.kind}"


def redemption_entry(payment: CreditPayment, take: Money) -> JournalEntry:
    """What a redemption books: the change costs that much less in cash (owed to the partner's side)."""
    return JournalEntry(
        effect_key=f"{payment.flow_code}:{CREDIT_REDEMPTION}", reservation_id=payment.reservation_id,
        partner_id=payment.partner_id, product_id=payment.product_id, flow_code=payment.flow_code,
        credit_id=payment.credit_id, category=CREDIT_REDEMPTION, amount=-take,
    )


# --- the invariants ------------------------------------------------------------------------------------


def violations(credits: Iterable[Credit], entries: Iterable[JournalEntry]) -> list[str]:
    """Everything wrong with credits and their journal entries (empty when they balance):

    - ``amount = redeemed + expired + remaining`` and ``remaining ≥ 0``, each total the sum of its
      movements, the state what the totals say;
    - every redemption has exactly one ``credit_redemption`` entry, of its negated amount, for its
      flow, and every such entry names a redemption.
    """
    problems: list[str] = []
    by_redemption: dict[tuple[str, str], list[Money]] = {}
    for entry in entries:
        if entry.category == CREDIT_REDEMPTION:
            by_redemption.setdefault((entry.credit_id or "", entry.flow_code or ""), []).append(entry.amount)
    for credit in credits:
        name = credit.credit_id
        if credit.remaining.amount < 0:
            problems.append(f"credit {name}: remaining {credit.remaining} is negative")
        if credit.redeemed + credit.expired + credit.remaining != credit.amount:
            problems.append(f"credit {name}: {credit.amount} issued is not {credit.redeemed} redeemed + "
                            f"{credit.expired} expired + {credit.remaining} remaining")
        totals = {kind: Money.zero(credit.currency) for kind in get_args(MovementKind)}
        for movement in credit.movements:
            totals[movement.kind] = totals[movement.kind] + movement.amount
            if movement.kind == "redeemed":
                booked = by_redemption.pop((name, movement.flow_code or ""), [])
                if booked != [-movement.amount]:
                    problems.append(f"credit {name}: redemption by {movement.flow_code} of {movement.amount} "
                                    f"is booked as {[str(b) for b in booked]}")
        if (totals["issued"], totals["redeemed"], totals["expired"]) != (credit.amount, credit.redeemed, credit.expired):
            problems.append(f"credit {name}: its movements do not add up to its totals")
        expected: CreditState = "expired" if credit.expired.amount > 0 else "used" if credit.remaining.is_zero() else "active"
        if credit.state != expected:
            problems.append(f"credit {name} is {credit.state}; its totals say {expected}")
    for (credit_id, flow_code), amounts in by_redemption.items():
        problems.append(f"journal entries of {flow_code} redeem credit {credit_id} {[str(a) for a in amounts]}, "
                        "which has no such redemption")
    return problems
