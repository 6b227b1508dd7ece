"""The settlement decisions (domain.settlement), without a database: what each booking path writes,
decided from what the store loaded (docs/settlement.md#how-the-store-books)."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Literal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import refund_ledger, settlement
from domain.codes import FlowKind
from domain.flow_info import FlowRecord
from domain.journal import Account, sale_entries, transition_effects
from domain.money import Money
from domain.products import FlightProduct
from domain.refund_ledger import REFUND_POSTED, Refund
from domain.refusals import Refusal, Refused
from domain.settlement import Counters, Ledger, LedgerWrite, SoldProduct

AT = datetime(2026, 6, 1, tzinfo=timezone.utc)
COUNTERS = Counters(last_reference=41, last_number=17)


def eur(amount: str | Decimal) -> Money:
    return Money.of(amount, "EUR")


def flight(price: str = "240.00", deposit: str | None = None) -> FlightProduct:
    return FlightProduct.model_validate({
        "kind": "flight", "carrier": "ZZ",
        "segments": [{"origin": "MAD", "destination": "CDG", "departure": "2026-12-20T08:00:00+01:00",
                      "arrival": "2026-12-20T10:00:00+01:00", "flight_number": "ZZ101"}],
        "price": eur(price).model_dump(mode="json"), "vat_rate": "0.081", "cancellation_policy": {"mode": "automatic"},
        **({"deposit": eur(deposit).model_dump(mode="json")} if deposit else {}),
    })


def sold(price: str = "240.00", deposit: str | None = None) -> SoldProduct:
    return SoldProduct("PRD-1", "RES-1", "ptn_1", flight(price, deposit).model_dump(mode="json"))


def ledger(*amounts: str) -> Ledger:
    """A reservation charged (positive) and refunded (negative) these amounts, in EUR."""
    return Ledger(Account(tuple(eur(a) for a in amounts)), COUNTERS)


def cancelled(refund: str) -> FlowRecord:
    code = "CAN-AAAAAAAA"
    return FlowRecord(code=code, kind=FlowKind.CANCELLATION, product_id="PRD-1", reservation_id="RES-1",
                      partner_id="ptn_1", status="cancelled", terminal=True,
                      info={"code": code, "status": "cancelled", "refund": eur(refund).model_dump(mode="json")}, at=AT)


def draft(amount: str = "50.00") -> Refund:
    return refund_ledger.draft(refund_id="rfd_d", reference_number=3, reservation_id="RES-1", partner_id="ptn_1",
                               amount=eur(amount), reason="goodwill", created_by="agent:agt_1", at=AT)


def new_refund(on: Ledger, amount: str, state: Literal["draft", "posted"], code: str | None = None) -> LedgerWrite:
    return settlement.new_refund(on, refund_id="rfd_new", reservation_id="RES-1", partner_id="ptn_1",
                                 amount=eur(amount), state=state, reason="goodwill", notes="", back_office_code=code,
                                 by="agent:agt_1", at=AT)


def refused(call: Any) -> Refusal:
    with pytest.raises(Refused) as raised:
        call()
    return raised.value.refusal


def assert_a_posting(decided: LedgerWrite, amount: Money, vat_rate: Decimal | None = None) -> Refund:
    """The refund posted with the next number, booked once (its amount negated), reported once."""
    refund = decided.refund
    assert refund is not None and refund.state == "posted" and refund.amount == amount
    assert decided.counters is not None and refund.number == str(decided.counters.last_number)
    assert [(e.effect_key, e.amount, e.refund_id, e.vat_rate) for e in decided.entries] == [
        (f"refund:{refund.refund_id}", -amount, refund.refund_id, vat_rate)]
    assert [(t.type, t.partner_id, t.flow_code, t.data) for t in decided.triggers] == [
        (REFUND_POSTED, refund.partner_id, refund.flow_code, refund.model_dump(mode="json"))]
    return refund


# --- a sale, a flow's transition ------------------------------------------------------------------


def test_a_sale_writes_its_fares_and_deposits_and_nothing_else() -> None:
    products = [("PRD-1", flight()), ("PRD-2", flight("99.90", deposit="50"))]
    assert settlement.sale("RES-1", "ptn_1", products) == LedgerWrite(entries=tuple(sale_entries("RES-1", "ptn_1", products)))


def test_a_cancellation_posts_its_refund_once_under_its_code_at_the_products_vat_rate() -> None:
    decided = settlement.flow_transition(transition_effects(cancelled("120")), sold(), ledger("240"), "rfd_f", AT)
    refund = assert_a_posting(decided, eur("120"), Decimal("0.081"))
    assert decided.insert == settlement.InsertOnce("flow:CAN-AAAAAAAA", taken=None)  # recorded again: nothing more
    assert decided.counters == Counters(42, 18)
    assert (refund.refund_id, refund.reference_number, refund.flow_code, refund.product_id, refund.reason) == (
        "rfd_f", "42", "CAN-AAAAAAAA", "PRD-1", "cancellation")
    assert (refund.created_by, refund.decided_by, refund.notes) == ("flow:CAN-AAAAAAAA", "flow:CAN-AAAAAAAA", "")


def test_a_flows_refund_is_capped_at_what_agents_left_and_rejected_when_nothing_is_left() -> None:
    capped = settlement.flow_transition(transition_effects(cancelled("120")), sold(), ledger("240", "-200"), "rfd_f", AT)
    assert assert_a_posting(capped, eur("40"), Decimal("0.081")).notes.startswith("requested 120.00 EUR; capped at 40.00 EUR")

    nothing = settlement.flow_transition(transition_effects(cancelled("120")), sold(), ledger("240", "-240"), "rfd_f", AT)
    refund = nothing.refund
    assert refund is not None and (refund.state, refund.number, refund.amount) == ("rejected", None, eur("120"))
    assert refund.rejection_reason == refund.notes and refund.notes.startswith("requested 120.00 EUR")
    assert nothing.counters == Counters(42, 17)  # a reference for the ledger's record of it, no refund number
    assert nothing.entries == () and nothing.triggers == ()


def test_a_change_books_its_charges_at_the_products_vat_rate_without_the_ledger() -> None:
    code = "CF-AAAAAAAA"
    record = FlowRecord(code=code, kind=FlowKind.CHANGE, product_id="PRD-1", reservation_id="RES-1", partner_id="ptn_1",
                        status="modified", terminal=True, at=AT,
                        info={"code": code, "resolution": "automatic", "change_fee": eur("30").model_dump(mode="json"),
                              "fare_difference": eur("24").model_dump(mode="json")})
    decided = settlement.flow_transition(transition_effects(record), sold(), None, "rfd_unused", AT)
    assert (decided.refund, decided.counters, decided.triggers) == (None, None, ())
    assert [(e.effect_key, e.amount, e.vat_rate) for e in decided.entries] == [
        (f"{code}:fee", eur("30"), Decimal("0.081")), (f"{code}:fare_difference", eur("24"), Decimal("0.081"))]


def test_a_flows_refund_needs_the_ledger() -> None:
    with pytest.raises(ValueError, match="ledger"):
        settlement.flow_transition(transition_effects(cancelled("120")), sold(), None, "rfd_f", AT)


# --- an agent's refund ------------------------------------------------------------------------------


def test_an_agents_draft_takes_a_reference_and_its_back_office_code_once() -> None:
    decided = new_refund(ledger("240"), "300.00", "draft", code="BO-1")  # a draft may exceed: checked when posted
    refund = decided.refund
    assert refund is not None and (refund.state, refund.reference_number, refund.back_office_code) == ("draft", "42", "BO-1")
    assert decided.counters == Counters(42, 17) and decided.entries == () and decided.triggers == ()
    assert decided.insert is not None and decided.insert.effect_key is None
    assert decided.insert.taken is not None and decided.insert.taken.refusal == Refusal.DUPLICATE_BACK_OFFICE_CODE


def test_an_agents_refund_posted_at_once_must_fit_what_is_left() -> None:
    decided = new_refund(ledger("240", "-100"), "140.00", "posted")
    assert_a_posting(decided, eur("140"))
    assert decided.counters == Counters(42, 18) and decided.insert is not None
    assert refused(lambda: new_refund(ledger("240", "-100"), "140.01", "posted")) == Refusal.REFUND_EXCEEDS_CHARGED


def test_posting_a_draft_changes_it_and_takes_only_a_number() -> None:
    decided = settlement.posting(draft(), ledger("240"), "admin", AT)
    assert assert_a_posting(decided, eur("50")).reference_number == "3"
    assert decided.insert is None and decided.counters == Counters(41, 18)
    assert refused(lambda: settlement.posting(draft("240.01"), ledger("240"), "admin", AT)) == Refusal.REFUND_EXCEEDS_CHARGED
    done = decided.refund
    assert done is not None
    assert refused(lambda: settlement.posting(done, ledger("240"), "admin", AT)) == Refusal.REFUND_NOT_DRAFT


def test_rejecting_and_editing_a_draft_take_no_number_and_book_nothing() -> None:
    for decided in (settlement.rejection(draft(), "no", "admin", AT), settlement.edit(draft(), {"notes": "checked"})):
        assert decided.insert is None and decided.counters is None and decided.entries == () and decided.triggers == ()
    rejected = settlement.rejection(draft(), "no", "admin", AT).refund
    assert rejected is not None and rejected.state == "rejected"
    assert refused(lambda: settlement.edit(rejected, {"notes": "x"})) == Refusal.REFUND_NOT_DRAFT


# --- a deposit given back ---------------------------------------------------------------------------


def test_a_deposit_is_given_back_once_and_refused_in_this_order() -> None:
    decided = settlement.deposit_refund(sold(deposit="50"), False, ledger("240", "50"), "rfd_dep", "partner:ptn_1", AT)
    refund = assert_a_posting(decided, eur("50"))
    assert (refund.category, refund.reason, refund.product_id) == ("deposit", "deposit", "PRD-1")
    assert decided.entries[0].category == "deposit" and decided.counters == Counters(42, 18)
    assert decided.insert is not None and decided.insert.effect_key == "deposit:PRD-1"
    assert decided.insert.taken is not None and decided.insert.taken.refusal == Refusal.DEPOSIT_ALREADY_REFUNDED

    def refund_deposit(product: SoldProduct, refunded_already: bool, on: Ledger) -> Refusal:
        return refused(lambda: settlement.deposit_refund(product, refunded_already, on, "rfd_dep", "admin", AT))

    assert refund_deposit(sold(), False, ledger("240")) == Refusal.NO_DEPOSIT
    # Given back already, then the charge used up: the refusal says what happened first.
    assert refund_deposit(sold(deposit="50"), True, ledger("240", "50", "-290")) == Refusal.DEPOSIT_ALREADY_REFUNDED
    assert refund_deposit(sold(deposit="50"), False, ledger("240", "50", "-250")) == Refusal.REFUND_EXCEEDS_CHARGED


# --- what holds for every decision -----------------------------------------------------------------

amounts = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("1000"), places=2)
accounts = st.lists(st.decimals(min_value=Decimal("-500"), max_value=Decimal("1000"), places=2), max_size=5)
counters = st.builds(Counters, st.integers(0, 10**6), st.integers(0, 10**6))


def decisions(kind: str, amount: Decimal, booked: list[Decimal], numbers: Counters) -> LedgerWrite:
    on = Ledger(Account(tuple(eur(a) for a in booked)), numbers)
    if kind == "flow":
        return settlement.flow_transition(transition_effects(cancelled(str(amount))), sold(), on, "rfd_x", AT)
    if kind in ("draft", "posted"):
        return new_refund(on, str(amount), "posted" if kind == "posted" else "draft")
    if kind == "post":
        return settlement.posting(draft(str(amount)), on, "admin", AT)
    return settlement.deposit_refund(sold(deposit=str(amount)), False, on, "rfd_x", "admin", AT)


@given(st.sampled_from(["flow", "draft", "posted", "post", "deposit"]), amounts, accounts, counters)
def test_a_decision_uses_exactly_the_numbers_of_what_it_writes(
    kind: str, amount: Decimal, booked: list[Decimal], numbers: Counters
) -> None:
    """A new refund takes the next reference, a posting the next number, nothing else is used; only a
    posting books and reports, and it never takes the reservation below zero."""
    try:
        decided = decisions(kind, amount, booked, numbers)
    except Refused as refusal:  # a flow's refund is capped, a draft checked only when posted
        assert refusal.refusal == Refusal.REFUND_EXCEEDS_CHARGED and kind in ("posted", "post", "deposit")
        return
    refund = decided.refund
    assert refund is not None and decided.counters is not None
    new, posted = decided.insert is not None, refund.state == "posted"
    assert decided.counters == Counters(numbers.last_reference + new, numbers.last_number + posted)
    if new:
        assert refund.reference_number == str(decided.counters.last_reference)
    assert refund.number == (str(decided.counters.last_number) if posted else None)
    assert len(decided.entries) == len(decided.triggers) == int(posted)
    left = sum(booked, Decimal(0)) + sum((e.amount.amount for e in decided.entries), Decimal(0))
    assert left >= 0 or not posted
