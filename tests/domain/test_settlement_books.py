"""The books balance after every step (docs/settlement.md#the-invariant), the way ledgers check themselves.

A ``RuleBasedStateMachine`` drives random sequences of sales, automatic and manual cancellations,
changes, rescheduling refunds, agents' refunds (drafts posted or rejected) and deposit refunds
through the settlement rules, replaying transitions as a retried activity would, and checks after
each step:

- the journal's sum per reservation and currency is what the partner finally pays, as a model kept
  apart from the journal says it should be;
- posted refunds never exceed what was charged, per currency, and each is booked exactly once;
- posted refunds are numbered 1, 2, 3… with no gap, reference numbers likewise.

``Books`` applies the rules the way ``store.money_effects`` does inside its transactions, in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, multiple, precondition, rule

from domain import refund_ledger
from domain.codes import FlowKind
from domain.flow_info import FlowRecord
from domain.journal import Account, JournalEntry, PostedRefund, balances, gapless, invariant_violations, sale_entries, transition_effects
from domain.money import Money, minor_units
from domain.penalty import CancellationTier, penalty_for
from domain.products import FlightProduct
from domain.refund_ledger import Refund
from domain.refusals import Refusal, Refused

AT = datetime(2026, 6, 1, tzinfo=timezone.utc)
CURRENCIES = ("EUR", "JPY", "KWD")


def money(units: int, currency: str) -> Money:
    return Money.of(Decimal(units).scaleb(-minor_units(currency)), currency)


@dataclass
class Books:
    """The journal and the refunds ledger in memory, under the same unique keys as the store's tables."""

    entries: dict[str, list[JournalEntry]] = field(default_factory=dict)
    effect_keys: set[str] = field(default_factory=set)
    refunds: dict[str, Refund] = field(default_factory=dict)
    refund_keys: set[str] = field(default_factory=set)
    references: int = 0
    numbers: int = 0

    def book(self, entries: list[JournalEntry] | tuple[JournalEntry, ...]) -> None:
        for entry in entries:
            if entry.effect_key not in self.effect_keys:  # the store's UNIQUE(effect_key)
                self.effect_keys.add(entry.effect_key)
                self.entries.setdefault(entry.reservation_id, []).append(entry)

    def account(self, reservation_id: str) -> Account:
        return Account.of(self.entries.get(reservation_id, []))

    def draft(self, reservation_id: str, amount: Money, **extra: Any) -> Refund:
        self.references += 1
        refund = refund_ledger.draft(refund_id=f"rfd_{self.references}", reference_number=self.references,
                                     reservation_id=reservation_id, partner_id="ptn_1", amount=amount,
                                     created_by="test", at=AT, **{"reason": "goodwill", **extra})
        self.refunds[refund.refund_id] = refund
        return refund

    def post(self, refund: Refund) -> Refund:
        refund_ledger.ensure_draft(refund)
        self.account(refund.reservation_id).check_refund(refund.amount)
        self.numbers += 1
        done = refund_ledger.posted(refund, self.numbers, AT, "test")
        self.refunds[done.refund_id] = done
        self.book([refund_ledger.posting_entry(done)])
        return done

    def create_posted(self, reservation_id: str, amount: Money) -> Refund:
        self.account(reservation_id).check_refund(amount)  # refused before a reference is drawn, as in the store
        return self.post(self.draft(reservation_id, amount))

    def transition(self, record: FlowRecord) -> None:
        effects = transition_effects(record)
        self.book(effects.charges)
        flow = effects.refund
        if flow is None or f"flow:{flow.flow_code}" in self.refund_keys:  # the store's UNIQUE(effect_key)
            return
        self.refund_keys.add(f"flow:{flow.flow_code}")
        amount, note = self.account(flow.reservation_id).flow_refund(flow.amount)
        refund = self.draft(flow.reservation_id, amount or flow.amount, reason=flow.reason, notes=note,
                            flow_code=flow.flow_code, product_id=flow.product_id)
        if amount is None:
            self.refunds[refund.refund_id] = refund_ledger.rejected(refund, note, AT, "flow")
        else:
            self.post(refund)

    def refund_deposit(self, reservation_id: str, product_id: str, deposit: Money | None) -> Refund:
        if deposit is None:
            raise Refused(Refusal.NO_DEPOSIT, "no deposit")
        if f"deposit:{product_id}" in self.refund_keys:
            raise Refused(Refusal.DEPOSIT_ALREADY_REFUNDED, "refunded already")
        self.account(reservation_id).check_refund(deposit)
        self.refund_keys.add(f"deposit:{product_id}")
        return self.post(self.draft(reservation_id, deposit, reason="deposit", category="deposit", product_id=product_id))

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
        # The model: what each partner finally pays per reservation and currency, kept apart from the journal.
        self.due: dict[str, dict[str, Decimal]] = {}
        self.flows = 0
        self.last: FlowRecord | None = None

    # --- model helpers ------------------------------------------------------------------------

    def _owe(self, reservation_id: str, amount: Money) -> None:
        owed = self.due.setdefault(reservation_id, {})
        owed[amount.currency] = owed.get(amount.currency, Decimal(0)) + amount.amount

    def _give_back(self, reservation_id: str, amount: Money) -> Money:
        """A refund that cannot be refused takes at most what the partner still pays (never below zero)."""
        left = self.due.get(reservation_id, {}).get(amount.currency, Decimal(0))
        given = min(amount.amount, left)
        self._owe(reservation_id, Money.of(-given, amount.currency))
        return Money.of(given, amount.currency)

    def _fits(self, reservation_id: str, amount: Money) -> bool:
        return amount.amount <= self.due.get(reservation_id, {}).get(amount.currency, Decimal(0))

    def _record(self, product: Product, kind: FlowKind, status: str, **info: Any) -> FlowRecord:
        self.flows += 1
        code = f"{kind.prefix}-{self.flows:08d}"
        record = FlowRecord(code=code, kind=kind, product_id=product.product_id, reservation_id=product.reservation_id,
                            partner_id="ptn_1", status=status, terminal=True,
                            info={"code": code, "status": status, **info}, at=AT)
        self.books.transition(record)
        self.last = record
        return record

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
        self.books.book(sale_entries(reservation_id, "ptn_1",
                                     [(p.product_id, flight(p.price, p.deposit)) for p in made]))
        return multiple(*[p.product_id for p in made])

    @precondition(lambda self: self.catalogue)
    @rule(product_id=products, percent=st.decimals(min_value=0, max_value=100, places=2))
    def cancel_automatically(self, product_id: str, percent: Decimal) -> None:
        product = self.catalogue[product_id]
        if product.cancelled:
            return
        tier = CancellationTier(hours_before_start=24, penalty_percent=percent)
        penalty = penalty_for([tier], product.price, timedelta(hours=1))
        refund = product.price - penalty
        self._record(product, FlowKind.CANCELLATION, "cancelled", paid=product.price.model_dump(mode="json"),
                     penalty=penalty.model_dump(mode="json"), refund=refund.model_dump(mode="json"))
        product.cancelled = True
        self._give_back(product.reservation_id, refund)

    @rule(product_id=products, data=st.data(), decision=st.sampled_from(["cancelled", "rejected", "no_response", "expired"]))
    def cancel_manually(self, product_id: str, data: st.DataObject, decision: str) -> None:
        product = self.catalogue[product_id]
        if product.cancelled:
            return
        penalty = money(data.draw(st.integers(min_value=0, max_value=product.price.minor)), product.price.currency)
        refund = product.price - penalty  # an agent's quote adds up to the paid amount
        self._record(product, FlowKind.CANCELLATION, decision, paid=product.price.model_dump(mode="json"),
                     penalty=penalty.model_dump(mode="json"), refund=refund.model_dump(mode="json"))
        if decision == "cancelled":
            product.cancelled = True
            self._give_back(product.reservation_id, refund)

    @rule(product_id=products, difference=st.integers(min_value=-10**4, max_value=10**4),
          fee=st.integers(min_value=0, max_value=10**4), manual=st.booleans())
    def change(self, product_id: str, difference: int, fee: int, manual: bool) -> None:
        product = self.catalogue[product_id]
        if product.cancelled:
            return
        currency = product.price.currency
        if manual:
            due = money(fee, currency)
            self._record(product, FlowKind.CHANGE, "modified", resolution="manual", total_due=due.model_dump(mode="json"))
        else:
            fare_difference, change_fee = money(difference, currency), money(fee, currency)
            raised = fare_difference if fare_difference.amount > 0 else Money.zero(currency)
            due = raised + change_fee
            self._record(product, FlowKind.CHANGE, "modified", resolution="automatic",
                         fare_difference=fare_difference.model_dump(mode="json"),
                         change_fee=change_fee.model_dump(mode="json"), total_due=due.model_dump(mode="json"))
            product.price = product.price + raised  # the fare paid from now on
        self._owe(product.reservation_id, due)

    @rule(product_id=products, refund=st.booleans(), status=st.sampled_from(["accepted", "auto_accepted"]))
    def reschedule(self, product_id: str, refund: bool, status: str) -> None:
        product = self.catalogue[product_id]
        if product.cancelled:
            return
        alternatives = [
            {"alternative_id": "proposed", "kind": "accept_proposed", "segments": [], "refund": None},
            {"alternative_id": "refund", "kind": "refund", "segments": [], "refund": product.price.model_dump(mode="json")},
        ]
        self._record(product, FlowKind.RESCHEDULING, status, alternatives=alternatives,
                     alternative_id="refund" if refund else "proposed")
        if refund:
            product.cancelled = True
            self._give_back(product.reservation_id, product.price)

    @precondition(lambda self: self.last is not None)
    @rule()
    def replay_the_last_transition(self) -> None:
        """A retried activity, a replayed workflow, a worker killed after the commit: the same record again."""
        assert self.last is not None
        before = (sum(len(e) for e in self.books.entries.values()), dict(self.books.refunds), self.books.numbers)
        self.books.transition(self.last)
        assert (sum(len(e) for e in self.books.entries.values()), dict(self.books.refunds), self.books.numbers) == before

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
            return self.books.draft(reservation_id, amount).refund_id
        try:
            self.books.create_posted(reservation_id, amount)
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
            self.books.refunds[refund_id] = refund_ledger.rejected(refund, "not due", AT, "test")
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
            self.books.refund_deposit(product.reservation_id, product_id, product.deposit)
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
            account = Account.of(entries)
            for currency in account.currencies():
                assert account.refunded(currency).amount <= account.charged(currency).amount

    @invariant()
    def numbers_have_no_gap(self) -> None:
        assert gapless(r.number for r in self.books.posted())
        assert gapless(int(r.reference_number) for r in self.books.refunds.values())
        assert all((r.number is None) == (r.state != "posted") for r in self.books.refunds.values())


SettlementMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
test_settlement_books = SettlementMachine.TestCase
