"""The books balance after every step (docs/settlement.md#the-invariant), the way ledgers check themselves.

A ``RuleBasedStateMachine`` drives random sequences of sales, automatic and manual cancellations,
changes, rescheduling refunds, agents' refunds (drafts posted or rejected) and deposit refunds
through the settlement rules, with refunds taken as credits, changes paid with them and credits
expiring (docs/settlement.md#credits), replaying transitions and expiries as a retried activity
would, and checks after each step:

- the journal's sum per reservation and currency is what the partner finally pays in cash, as a
  model kept apart from the journal says it should be;
- posted refunds and credits issued never exceed what was charged, per currency, and each refund is
  booked exactly once;
- posted refunds are numbered 1, 2, 3… with no gap, reference numbers likewise;
- for every credit ``amount = redeemed + expired + remaining`` and ``remaining ≥ 0``, what remains
  is what the model says, and every redemption is booked exactly once.

``Books`` decides each step with ``domain.settlement``, as the store does inside its transactions,
and writes what it decides in memory under the store's unique keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Literal

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, multiple, precondition, rule

from domain import credit_ledger, refund_ledger, settlement
from domain.codes import FlowKind
from domain.credit_ledger import (
    CREDIT_EXPIRED,
    CREDIT_ISSUED,
    CREDIT_REDEEMED,
    CREDIT_VALIDITY,
    Credit,
    credit_key,
    credit_terms,
    given_as_credit,
    movement_key,
    paid_with_credit,
    refund_taken_as_credit,
)
from domain.flow_info import FlowRecord
from domain.journal import Account, JournalEntry, PostedRefund, balances, gapless, invariant_violations, transition_effects
from domain.money import Money, minor_units
from domain.penalty import CancellationTier, penalty_for
from domain.products import FlightProduct
from domain.refund_ledger import REFUND_POSTED, Refund
from domain.refusals import Refusal, Refused
from domain.settlement import Counters, CreditWrite, Ledger, LedgerWrite, SoldProduct, Trigger

AT = datetime(2026, 6, 1, tzinfo=timezone.utc)
CURRENCIES = ("EUR", "JPY", "KWD")


def money(units: int, currency: str) -> Money:
    return Money.of(Decimal(units).scaleb(-minor_units(currency)), currency)


@dataclass
class Books:
    """The journal, the refunds ledger and its counters in memory, under the same unique keys as the
    store's tables: each step loads, decides with ``domain.settlement`` and writes what it returns the
    way ``store.money_effects.write`` does."""

    entries: dict[str, list[JournalEntry]] = field(default_factory=dict)
    effect_keys: set[str] = field(default_factory=set)
    refunds: dict[str, Refund] = field(default_factory=dict)
    refund_keys: set[str] = field(default_factory=set)
    counters: Counters = Counters(0, 0)
    triggers: list[Trigger] = field(default_factory=list)
    credits: dict[str, Credit] = field(default_factory=dict)
    credit_keys: set[str] = field(default_factory=set)
    movement_keys: set[str] = field(default_factory=set)

    def ledger(self, reservation_id: str) -> Ledger:
        credited = [c.amount for c in self.credits.values() if c.reservation_id == reservation_id]
        return Ledger(Account.of(self.entries.get(reservation_id, []), credited), self.counters)

    def account(self, reservation_id: str) -> Account:
        return self.ledger(reservation_id).account

    def write(self, decided: LedgerWrite) -> Refund | None:
        refund = decided.refund
        if refund is not None and decided.insert is None:
            if self.refunds[refund.refund_id].state != "draft":  # the store's UPDATE … WHERE state = 'draft'
                raise Refused(Refusal.REFUND_NOT_DRAFT, "decided meanwhile")
        elif refund is not None and decided.insert is not None:
            key = decided.insert.effect_key or f"code:{refund.back_office_code}"
            if key in self.refund_keys:  # the store's UNIQUE(effect_key), UNIQUE(back_office_code)
                if decided.insert.taken is not None:
                    raise decided.insert.taken
                return None
            if decided.insert.effect_key or refund.back_office_code:
                self.refund_keys.add(key)
        if refund is not None:
            self.refunds[refund.refund_id] = refund
        if decided.counters is not None:
            self.counters = decided.counters
        self.book(decided.entries)
        self.triggers += decided.triggers
        return refund

    def book(self, entries: tuple[JournalEntry, ...]) -> None:
        for entry in entries:
            if entry.effect_key not in self.effect_keys:  # the store's UNIQUE(effect_key)
                self.effect_keys.add(entry.effect_key)
                self.entries.setdefault(entry.reservation_id, []).append(entry)

    def new_refund(self, reservation_id: str, amount: Money, state: Literal["draft", "posted"]) -> Refund:
        refund = self.write(settlement.new_refund(
            self.ledger(reservation_id), refund_id=f"rfd_{len(self.refunds) + 1}", reservation_id=reservation_id,
            partner_id="ptn_1", amount=amount, state=state, reason="goodwill", notes="", back_office_code=None,
            by="test", at=AT,
        ))
        assert refund is not None
        return refund

    def post(self, refund: Refund) -> None:
        self.write(settlement.posting(self.refunds[refund.refund_id], self.ledger(refund.reservation_id), "test", AT))

    def reject(self, refund: Refund) -> None:
        self.write(settlement.rejection(self.refunds[refund.refund_id], "not due", "test", AT))

    def transition(self, record: FlowRecord, product: SoldProduct) -> None:
        """As ``record_flow`` books it: the money (``store.money_effects``), then the credits (``store.credit_records``)."""
        effects = transition_effects(record)
        cash = replace(effects, refund=None) if effects.refund is not None and refund_taken_as_credit(record) else effects
        ledger = self.ledger(record.reservation_id) if cash.refund is not None else None
        self.write(settlement.flow_transition(cash, product, ledger, f"rfd_{len(self.refunds) + 1}", AT))
        given = given_as_credit(record, effects.refund.amount if effects.refund is not None else None)
        if given is not None:
            issued = settlement.credit_issue(given, self.account(record.reservation_id), ["T1"], AT)
            if issued is not None:
                self.write_credit(issued)
        payment = paid_with_credit(record, effects.charges)
        if payment is not None:
            redeemed = settlement.credit_redemption(self.credits.get(payment.credit_id), payment, AT)
            if redeemed is not None:
                self.write_credit(redeemed)

    def write_credit(self, decided: CreditWrite) -> None:
        """As ``store.credit_records.write_credit`` writes it, under the same unique keys."""
        credit = decided.credit
        if decided.was is None:
            if credit_key(credit.flow_code) in self.credit_keys:  # the store's UNIQUE(effect_key)
                return
            self.credit_keys.add(credit_key(credit.flow_code))
        key = movement_key(credit.credit_id, decided.movement)
        if key in self.movement_keys:  # UNIQUE(credit_movements.effect_key)
            return
        self.movement_keys.add(key)
        if decided.was is not None:  # the UPDATE … WHERE state = 'active' AND remaining = :before
            assert self.credits[credit.credit_id] == decided.was
        self.credits[credit.credit_id] = credit
        self.book(decided.entries)
        self.triggers += decided.triggers

    def expire(self, credit_id: str, at: datetime) -> None:
        decided = settlement.credit_expiry(self.credits.get(credit_id), at)
        if decided is not None:
            self.write_credit(decided)

    def refund_deposit(self, product: SoldProduct) -> None:
        refunded = settlement.deposit_refund_key(product.product_id) in self.refund_keys
        self.write(settlement.deposit_refund(product, refunded, self.ledger(product.reservation_id),
                                             f"rfd_{len(self.refunds) + 1}", "test", AT))

    def posted(self, reservation_id: str | None = None) -> list[PostedRefund]:
        return [PostedRefund(r.refund_id, int(r.number or 0), r.amount) for r in self.refunds.values()
                if r.state == "posted" and reservation_id in (None, r.reservation_id)]


@dataclass
class Product:
    product_id: str
    reservation_id: str
    price: Money
    deposit: Money | None
    cancelled: bool = False
    deposit_refunded: bool = False

    def sold(self) -> SoldProduct:
        """The product as the store loads it for a decision."""
        return SoldProduct(self.product_id, self.reservation_id, "ptn_1",
                           flight(self.price, self.deposit).model_dump(mode="json"))


def flight(price: Money, deposit: Money | None) -> FlightProduct:
    return FlightProduct.model_validate({
        "kind": "flight", "carrier": "ZZ",
        "segments": [{"origin": "MAD", "destination": "CDG", "departure": "2026-12-20T08:00:00+01:00",
                      "arrival": "2026-12-20T10:00:00+01:00", "flight_number": "ZZ101"}],
        "price": price.model_dump(mode="json"), "vat_rate": "0.10", "cancellation_policy": {"mode": "automatic"},
        **({"deposit": deposit.model_dump(mode="json")} if deposit else {}),
    })


prices = st.tuples(st.sampled_from(CURRENCIES), st.integers(min_value=0, max_value=10**6))
deposits = st.none() | st.tuples(st.sampled_from(CURRENCIES), st.integers(min_value=1, max_value=10**5))


class SettlementMachine(RuleBasedStateMachine):
    products = Bundle("products")
    drafts = Bundle("drafts")

    def __init__(self) -> None:
        super().__init__()
        self.books = Books()
        self.catalogue: dict[str, Product] = {}
        # The model: what each partner finally pays in cash per reservation and currency, kept apart
        # from the journal; what it was given back as credits; what each credit has left.
        self.due: dict[str, dict[str, Decimal]] = {}
        self.credited: dict[str, dict[str, Decimal]] = {}
        self.left_on: dict[str, Money] = {}
        self.flows = 0
        self.last: tuple[FlowRecord, SoldProduct] | None = None

    # --- model helpers ------------------------------------------------------------------------

    def _owe(self, reservation_id: str, amount: Money) -> None:
        owed = self.due.setdefault(reservation_id, {})
        owed[amount.currency] = owed.get(amount.currency, Decimal(0)) + amount.amount

    def _left(self, reservation_id: str, currency: str) -> Decimal:
        """What may still be given back: what the partner pays in cash, less what it was given as credits."""
        return (self.due.get(reservation_id, {}).get(currency, Decimal(0))
                - self.credited.get(reservation_id, {}).get(currency, Decimal(0)))

    def _give_back(self, reservation_id: str, amount: Money, code: str, as_credit: bool) -> None:
        """A refund that cannot be refused takes at most what is left to give back (never below zero),
        as cash or, for a partner who took a credit, as a credit of that much (none when nothing is left)."""
        given = min(amount.amount, self._left(reservation_id, amount.currency))
        if not as_credit:
            self._owe(reservation_id, Money.of(-given, amount.currency))
        elif given > 0:
            credited = self.credited.setdefault(reservation_id, {})
            credited[amount.currency] = credited.get(amount.currency, Decimal(0)) + given
            self.left_on[credit_ledger.credit_id_for(code)] = Money.of(given, amount.currency)

    def _fits(self, reservation_id: str, amount: Money) -> bool:
        return amount.amount <= self._left(reservation_id, amount.currency)

    def _code(self, kind: FlowKind) -> str:
        self.flows += 1
        return f"{kind.prefix}-{self.flows:08d}"

    def _record(self, product: Product, kind: FlowKind, status: str, code: str | None = None, **info: Any) -> FlowRecord:
        code = code or self._code(kind)
        record = FlowRecord(code=code, kind=kind, product_id=product.product_id, reservation_id=product.reservation_id,
                            partner_id="ptn_1", status=status, terminal=True,
                            info={"code": code, "status": status, **info}, at=AT)
        self.books.transition(record, product.sold())
        self.last = (record, product.sold())
        return record

    @staticmethod
    def _refund_to(code: str, refund: Money, as_credit: bool) -> dict[str, Any]:
        """What the refunding transition records of where its refund goes, as the flow does (JSON mode)."""
        terms = credit_terms(code, refund, "credit" if as_credit else "original_payment", CREDIT_VALIDITY, AT)
        return {name: value.isoformat() if isinstance(value, datetime) else value for name, value in terms.items()}

    # --- rules --------------------------------------------------------------------------------

    @rule(target=products, sold=st.lists(st.tuples(prices, deposits), min_size=1, max_size=3))
    def sell(self, sold: list[tuple[tuple[str, int], tuple[str, int] | None]]) -> Any:
        reservation_id = f"RES-{len(self.due) + 1}"
        self.due[reservation_id] = {}
        made = []
        for (currency, units), deposit in sold:
            product = Product(f"PRD-{len(self.catalogue) + 1}", reservation_id, money(units, currency),
                              money(deposit[1], deposit[0]) if deposit else None)
            self.catalogue[product.product_id] = product
            made.append(product)
            self._owe(reservation_id, product.price)
            if product.deposit:
                self._owe(reservation_id, product.deposit)
        self.books.write(settlement.sale(reservation_id, "ptn_1", [(p.product_id, flight(p.price, p.deposit)) for p in made]))
        return multiple(*[p.product_id for p in made])

    @precondition(lambda self: self.catalogue)
    @rule(product_id=products, percent=st.decimals(min_value=0, max_value=100, places=2), as_credit=st.booleans())
    def cancel_automatically(self, product_id: str, percent: Decimal, as_credit: bool) -> None:
        product = self.catalogue[product_id]
        if product.cancelled:
            return
        tier = CancellationTier(hours_before_start=24, penalty_percent=percent)
        penalty = penalty_for([tier], product.price, timedelta(hours=1))
        refund = product.price - penalty
        code = self._code(FlowKind.CANCELLATION)
        self._record(product, FlowKind.CANCELLATION, "cancelled", code, paid=product.price.model_dump(mode="json"),
                     penalty=penalty.model_dump(mode="json"), refund=refund.model_dump(mode="json"),
                     **self._refund_to(code, refund, as_credit))
        product.cancelled = True
        self._give_back(product.reservation_id, refund, code, as_credit)

    @rule(product_id=products, data=st.data(), decision=st.sampled_from(["cancelled", "rejected", "no_response", "expired"]),
          as_credit=st.booleans())
    def cancel_manually(self, product_id: str, data: st.DataObject, decision: str, as_credit: bool) -> None:
        product = self.catalogue[product_id]
        if product.cancelled:
            return
        penalty = money(data.draw(st.integers(min_value=0, max_value=product.price.minor)), product.price.currency)
        refund = product.price - penalty  # an agent's quote adds up to the paid amount
        code = self._code(FlowKind.CANCELLATION)
        where = self._refund_to(code, refund, as_credit) if decision == "cancelled" else {}
        self._record(product, FlowKind.CANCELLATION, decision, code, paid=product.price.model_dump(mode="json"),
                     penalty=penalty.model_dump(mode="json"), refund=refund.model_dump(mode="json"), **where)
        if decision == "cancelled":
            product.cancelled = True
            self._give_back(product.reservation_id, refund, code, as_credit)

    @rule(product_id=products, difference=st.integers(min_value=-10**4, max_value=10**4),
          fee=st.integers(min_value=0, max_value=10**4), manual=st.booleans(), data=st.data())
    def change(self, product_id: str, difference: int, fee: int, manual: bool, data: st.DataObject) -> None:
        """A change, paid with a credit now and then: any credit, also one of another currency, used or expired."""
        product = self.catalogue[product_id]
        if product.cancelled:
            return
        currency = product.price.currency
        mine = sorted(c for c, credit in self.books.credits.items() if credit.currency == currency)
        choices = [st.none(), *(st.sampled_from(ids) for ids in (mine, mine, sorted(self.books.credits)) if ids)]
        credit_id = data.draw(st.one_of(choices))
        paid_with = {"credit_id": credit_id} if credit_id else {}
        if manual:
            due = money(fee, currency)
            self._record(product, FlowKind.CHANGE, "modified", resolution="manual", total_due=due.model_dump(mode="json"),
                         **paid_with)
        else:
            fare_difference, change_fee = money(difference, currency), money(fee, currency)
            raised = fare_difference if fare_difference.amount > 0 else Money.zero(currency)
            due = raised + change_fee
            self._record(product, FlowKind.CHANGE, "modified", resolution="automatic",
                         fare_difference=fare_difference.model_dump(mode="json"),
                         change_fee=change_fee.model_dump(mode="json"), total_due=due.model_dump(mode="json"), **paid_with)
            product.price = product.price + raised  # the fare paid from now on
        self._owe(product.reservation_id, due)
        left = self.left_on.get(credit_id or "")  # nothing left once used or expired
        if credit_id is not None and left is not None and left.currency == currency and left.amount > 0 and due.amount > 0:
            taken = left if left.amount <= due.amount else due  # min(remaining, due)
            self.left_on[credit_id] = left - taken
            self._owe(product.reservation_id, -taken)  # paid with the credit, not in cash

    @rule(product_id=products, refund=st.booleans(), status=st.sampled_from(["accepted", "auto_accepted"]),
          as_credit=st.booleans())
    def reschedule(self, product_id: str, refund: bool, status: str, as_credit: bool) -> None:
        product = self.catalogue[product_id]
        if product.cancelled:
            return
        alternatives = [
            {"alternative_id": "proposed", "kind": "accept_proposed", "segments": [], "refund": None},
            {"alternative_id": "refund", "kind": "refund", "segments": [], "refund": product.price.model_dump(mode="json")},
        ]
        code = self._code(FlowKind.RESCHEDULING)
        self._record(product, FlowKind.RESCHEDULING, status, code, alternatives=alternatives,
                     alternative_id="refund" if refund else "proposed",
                     **self._refund_to(code, product.price, as_credit and refund))
        if refund:
            product.cancelled = True
            self._give_back(product.reservation_id, product.price, code, as_credit)

    @precondition(lambda self: self.books.credits)
    @rule(data=st.data())
    def expire_a_credit(self, data: st.DataObject) -> None:
        """A credit's validity ends (its expiry workflow's activity, run twice as a retry would): what
        remains of an active one expires, once; a used one stays used."""
        credit_id = data.draw(st.sampled_from(sorted(self.books.credits)))
        before = self.books.credits[credit_id]
        self.books.expire(credit_id, before.expires_at)
        after = self.books.credits[credit_id]
        self.books.expire(credit_id, before.expires_at)
        assert self.books.credits[credit_id] == after
        if before.state == "active":
            assert (after.state, after.remaining.is_zero(), after.expired) == ("expired", True, before.expired + before.remaining)
            self.left_on[credit_id] = Money.zero(before.currency)
        else:
            assert after == before

    @precondition(lambda self: self.last is not None)
    @rule()
    def replay_the_last_transition(self) -> None:
        """A retried activity, a replayed workflow, a worker killed after the commit: the same record again."""
        assert self.last is not None
        before = (sum(len(e) for e in self.books.entries.values()), dict(self.books.refunds), self.books.counters,
                  len(self.books.triggers), dict(self.books.credits))
        self.books.transition(*self.last)
        assert (sum(len(e) for e in self.books.entries.values()), dict(self.books.refunds), self.books.counters,
                len(self.books.triggers), dict(self.books.credits)) == before

    @rule(target=drafts, product_id=products, units=st.integers(min_value=1, max_value=10**6), post_now=st.booleans(),
          other_currency=st.booleans())
    def agent_refund(self, product_id: str, units: int, post_now: bool, other_currency: bool) -> Any:
        product = self.catalogue[product_id]
        reservation_id = product.reservation_id
        account = self.books.account(reservation_id)
        currency = product.price.currency
        if other_currency:
            currency = next((c for c in CURRENCIES if c not in account.currencies()), currency)
        amount = money(units, currency)
        if refund_ledger.amount_problems(amount, account):
            assert currency not in account.currencies()  # only a currency never charged is refused here
            return multiple()
        if not post_now:
            return self.books.new_refund(reservation_id, amount, "draft").refund_id
        try:
            self.books.new_refund(reservation_id, amount, "posted")
        except Refused as refused:
            assert refused.refusal == Refusal.REFUND_EXCEEDS_CHARGED and not self._fits(reservation_id, amount)
        else:
            assert self._fits(reservation_id, amount)
            self._owe(reservation_id, -amount)
        return multiple()

    @rule(refund_id=consumes(drafts), post=st.booleans())
    def decide_a_draft(self, refund_id: str, post: bool) -> None:
        refund = self.books.refunds[refund_id]
        if not post:
            self.books.reject(refund)
            return
        try:
            self.books.post(refund)
        except Refused as refused:
            assert refused.refusal == Refusal.REFUND_EXCEEDS_CHARGED and not self._fits(refund.reservation_id, refund.amount)
        else:
            assert self._fits(refund.reservation_id, refund.amount)
            self._owe(refund.reservation_id, -refund.amount)

    @rule(product_id=products)
    def refund_deposit(self, product_id: str) -> None:
        product = self.catalogue[product_id]
        try:
            self.books.refund_deposit(product.sold())
        except Refused as refused:
            expected = (Refusal.NO_DEPOSIT if product.deposit is None
                        else Refusal.DEPOSIT_ALREADY_REFUNDED if product.deposit_refunded
                        else Refusal.REFUND_EXCEEDS_CHARGED)
            assert refused.refusal == expected
        else:
            assert product.deposit is not None and not product.deposit_refunded
            product.deposit_refunded = True
            self._owe(product.reservation_id, -product.deposit)

    # --- what must hold after every step ----------------------------------------------------------

    @invariant()
    def the_journal_sums_to_what_the_partner_finally_pays(self) -> None:
        for reservation_id, owed in self.due.items():
            booked = {c: m.amount for c, m in balances(self.books.entries.get(reservation_id, [])).items()}
            for currency in set(owed) | set(booked):
                assert booked.get(currency, Decimal(0)) == owed.get(currency, Decimal(0)), (reservation_id, currency)

    @invariant()
    def the_books_balance(self) -> None:
        for reservation_id in self.due:
            entries = self.books.entries.get(reservation_id, [])
            assert invariant_violations(entries, self.books.posted(reservation_id)) == []
            account = self.books.account(reservation_id)
            for currency in account.currencies():
                assert account.refunded(currency).amount <= account.charged(currency).amount
                assert account.left(currency).amount >= 0  # refunds and credits together never exceed the charge

    @invariant()
    def every_credit_balances(self) -> None:
        every_entry = [e for entries in self.books.entries.values() for e in entries]
        assert credit_ledger.violations(self.books.credits.values(), every_entry) == []
        assert {c: credit.remaining for c, credit in self.books.credits.items()} == self.left_on

    @invariant()
    def numbers_have_no_gap(self) -> None:
        posted = self.books.posted()
        assert gapless(r.number for r in posted)
        assert gapless(int(r.reference_number) for r in self.books.refunds.values())
        assert all((r.number is None) == (r.state != "posted") for r in self.books.refunds.values())
        assert self.books.counters == Counters(len(self.books.refunds), len(posted))  # a number is used with its refund

    @invariant()
    def every_posting_is_reported_once(self) -> None:
        reported = [t.data for t in self.books.triggers if t.type == REFUND_POSTED]
        assert sorted(d["refund_id"] for d in reported) == sorted(r.refund_id for r in self.books.posted())
        assert all(d == self.books.refunds[d["refund_id"]].model_dump(mode="json") for d in reported)

    @invariant()
    def every_movement_of_a_credit_is_reported_once(self) -> None:
        of_kind = {"issued": CREDIT_ISSUED, "redeemed": CREDIT_REDEEMED, "expired": CREDIT_EXPIRED}
        reported = sorted((t.type, t.data["credit_id"], len(t.data["movements"])) for t in self.books.triggers
                          if t.type != REFUND_POSTED)
        assert reported == sorted((of_kind[m.kind], c.credit_id, i + 1) for c in self.books.credits.values()
                                  for i, m in enumerate(c.movements))


SettlementMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_settlement_books = SettlementMachine.TestCase
