"""Credits' rules and decisions (domain.credit_ledger, domain.settlement), without a database
(docs/settlement.md#credits). The stateful test of the books (test_settlement_books.py) runs them
in every order; these name each rule once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from domain import credit_ledger, settlement
from domain.codes import CREDIT_ID, FlowKind
from domain.credit_ledger import (
    CREDIT_EXPIRED,
    CREDIT_ISSUED,
    CREDIT_REDEEMED,
    CREDIT_VALIDITY,
    Credit,
    CreditGiven,
    CreditPayment,
    check_payable,
    credit_id_for,
    credit_terms,
    given_as_credit,
    paid_with_credit,
)
from domain.flow_info import FlowRecord
from domain.journal import Account, JournalEntry, transition_effects
from domain.money import Money
from domain.refusals import Refusal, Refused

AT = datetime(2026, 6, 1, tzinfo=timezone.utc)


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def given(amount: str = "120.00") -> CreditGiven:
    return CreditGiven(credit_id=credit_id_for("CAN-AAAAAAAA"), flow_code="CAN-AAAAAAAA", reservation_id="RES-1",
                       partner_id="ptn_1", product_id="PRD-1", traveller_ids=None, amount=eur(amount),
                       expires_at=AT + CREDIT_VALIDITY)


def issued(amount: str = "120.00") -> Credit:
    decided = settlement.credit_issue(given(amount), Account((eur("240"),)), ["T1", "T2"], AT)
    assert decided is not None
    return decided.credit


def payment(due: str, currency: str = "EUR", partner_id: str = "ptn_1") -> CreditPayment:
    return CreditPayment(credit_id=issued().credit_id, flow_code="CF-BBBBBBBB", reservation_id="RES-2",
                         partner_id=partner_id, product_id="PRD-2", due=Money.of(due, currency))


def test_a_flow_records_a_credit_only_when_its_partner_takes_one_and_there_is_something_to_refund() -> None:
    assert credit_terms("CAN-AAAAAAAA", eur("120"), "original_payment", CREDIT_VALIDITY, AT) == {"refund_to": "original_payment"}
    assert credit_terms("CAN-AAAAAAAA", eur("0"), "credit", CREDIT_VALIDITY, AT) == {"refund_to": "credit"}
    assert credit_terms("CAN-AAAAAAAA", eur("120"), "credit", timedelta(days=30), AT) == {
        "refund_to": "credit", "credit_id": credit_id_for("CAN-AAAAAAAA"), "credit_expires_at": AT + timedelta(days=30)}
    # Derived from the flow code: the same flow names the same credit, another flow another.
    assert credit_id_for("CAN-AAAAAAAA") == credit_id_for("CAN-AAAAAAAA") != credit_id_for("CAN-AAAAAAAB")
    assert CREDIT_ID.fits(credit_id_for("CAN-AAAAAAAA"))


def test_a_refund_taken_as_a_credit_is_no_refund() -> None:
    terms = credit_terms("CAN-AAAAAAAA", eur("120"), "credit", CREDIT_VALIDITY, AT)
    record = FlowRecord(code="CAN-AAAAAAAA", kind=FlowKind.CANCELLATION, product_id="PRD-1", reservation_id="RES-1",
                        partner_id="ptn_1", status="cancelled", terminal=True, at=AT,
                        info={"refund": eur("120").model_dump(mode="json"), "traveller_ids": ["T2"],
                              **{k: v.isoformat() if isinstance(v, datetime) else v for k, v in terms.items()}})
    refund = transition_effects(record).refund
    assert refund is not None and credit_ledger.refund_taken_as_credit(record)
    found = given_as_credit(record, refund.amount)
    assert found is not None and (found.amount, found.traveller_ids, found.expires_at) == (eur("120"), ("T2",), AT + CREDIT_VALIDITY)
    assert given_as_credit(record.model_copy(update={"info": {**record.info, "refund_to": "original_payment"}}), refund.amount) is None


def test_a_credit_is_issued_capped_at_what_is_left_of_the_charge() -> None:
    whole = settlement.credit_issue(given(), Account((eur("240"),)), ["T1"], AT)
    assert whole is not None and whole.was is None and whole.entries == ()  # no cash moves: no journal entry
    assert (whole.credit.amount, whole.credit.remaining, whole.credit.state, whole.credit.traveller_ids) == (
        eur("120"), eur("120"), "active", ["T1"])
    assert [t.type for t in whole.triggers] == [CREDIT_ISSUED] and whole.triggers[0].data == whole.credit.model_dump(mode="json")
    # An agent refunded 200 of the 240 first, and a credit of 20 was given before: 20 is left.
    capped = settlement.credit_issue(given(), Account((eur("240"), eur("-200")), (eur("20"),)), ["T1"], AT)
    assert capped is not None and capped.credit.amount == eur("20") and capped.credit.notes.startswith("requested 120.00 EUR")
    assert settlement.credit_issue(given(), Account((eur("240"), eur("-240"))), ["T1"], AT) is None


def test_refunds_never_exceed_the_charge_less_the_credits_issued() -> None:
    account = Account((eur("240"),), (eur("200"),))
    assert account.left("EUR") == eur("40") and account.balance("EUR") == eur("240")
    account.check_refund(eur("40"))
    with pytest.raises(Refused) as refused:
        account.check_refund(eur("40.01"))
    assert refused.value.refusal == Refusal.REFUND_EXCEEDS_CHARGED and "200.00 EUR given as credits" in refused.value.detail


def test_a_redemption_takes_what_remains_up_to_what_is_due() -> None:
    credit = issued("120.00")
    part = settlement.credit_redemption(credit, payment("54.00"), AT)
    assert part is not None and part.was == credit
    assert (part.credit.remaining, part.credit.redeemed, part.credit.state) == (eur("66"), eur("54"), "active")
    [entry] = part.entries
    assert entry == JournalEntry(effect_key="CF-BBBBBBBB:credit_redemption", reservation_id="RES-2", partner_id="ptn_1",
                                 product_id="PRD-2", flow_code="CF-BBBBBBBB", credit_id=credit.credit_id,
                                 category="credit_redemption", amount=eur("-54"))
    assert [t.type for t in part.triggers] == [CREDIT_REDEEMED] and part.credit.paid_for("CF-BBBBBBBB") == eur("54")
    whole = settlement.credit_redemption(part.credit, payment("300.00"), AT)
    assert whole is not None and (whole.credit.remaining, whole.credit.state, whole.entries[0].amount) == (
        eur("0"), "used", eur("-66"))


def test_a_credit_that_no_longer_pays_pays_nothing_when_the_change_is_recorded() -> None:
    credit = issued()
    assert settlement.credit_redemption(None, payment("10"), AT) is None
    assert settlement.credit_redemption(credit, payment("10", "CHF"), AT) is None
    assert settlement.credit_redemption(credit, payment("10", partner_id="ptn_2"), AT) is None
    assert settlement.credit_redemption(credit, payment("10"), credit.expires_at) is None  # past expiry, not recorded yet
    expired = settlement.credit_expiry(credit, credit.expires_at)
    assert expired is not None and settlement.credit_redemption(expired.credit, payment("10"), AT) is None


def test_what_remains_expires_once_and_a_used_credit_does_not() -> None:
    credit = issued("120.00")
    part = settlement.credit_redemption(credit, payment("20"), AT)
    assert part is not None
    expiry = settlement.credit_expiry(part.credit, credit.expires_at)
    assert expiry is not None and expiry.entries == ()  # expiry moves no cash
    after = expiry.credit
    assert (after.state, after.remaining, after.expired, after.redeemed) == ("expired", eur("0"), eur("100"), eur("20"))
    assert [m.kind for m in after.movements] == ["issued", "redeemed", "expired"] and after.movements[-1].at == credit.expires_at
    assert [t.type for t in expiry.triggers] == [CREDIT_EXPIRED] and expiry.triggers[0].flow_code is None
    assert settlement.credit_expiry(after, credit.expires_at) is None
    used = settlement.credit_redemption(credit, payment("500"), AT)
    assert used is not None and settlement.credit_expiry(used.credit, credit.expires_at) is None


def test_a_partner_pays_with_an_active_credit_in_the_currency_due() -> None:
    credit = issued()
    check_payable(credit, eur("10"), AT)
    with pytest.raises(Refused) as currency:
        check_payable(credit, Money.of("10", "CHF"), AT)
    assert currency.value.refusal == Refusal.CREDIT_CURRENCY_MISMATCH
    for not_active, at in ((credit, credit.expires_at), (credit_ledger.expired(credit, AT), AT),
                           (credit_ledger.redeemed(credit, credit.remaining, "CF-X", AT), AT)):
        with pytest.raises(Refused) as refused:
            check_payable(not_active, eur("10"), at)
        assert refused.value.refusal == Refusal.CREDIT_NOT_ACTIVE


def test_a_change_is_paid_with_a_credit_only_when_modified_with_something_due() -> None:
    def change(status: str, credit_id: str | None) -> FlowRecord:
        return FlowRecord(code="CF-BBBBBBBB", kind=FlowKind.CHANGE, product_id="PRD-2", reservation_id="RES-2",
                          partner_id="ptn_1", status=status, terminal=True, at=AT,
                          info={"resolution": "manual", "total_due": eur("30").model_dump(mode="json"), "credit_id": credit_id})

    charges = transition_effects(change("modified", "crd_x")).charges
    found = paid_with_credit(change("modified", "crd_x"), charges)
    assert found is not None and (found.credit_id, found.due) == ("crd_x", eur("30"))
    assert paid_with_credit(change("modified", None), charges) is None
    assert paid_with_credit(change("failed", "crd_x"), ()) is None
    assert paid_with_credit(change("modified", "crd_x"), ()) is None  # nothing due: nothing taken


def test_the_invariants_catch_an_unbalanced_credit_and_a_stray_entry() -> None:
    credit = issued("120.00")
    part = settlement.credit_redemption(credit, payment("20"), AT)
    assert part is not None
    assert credit_ledger.violations([part.credit], part.entries) == []
    assert credit_ledger.violations([part.credit], []) != []  # a redemption without its entry
    assert credit_ledger.violations([credit], part.entries) != []  # an entry without its redemption
    broken = part.credit.model_copy(update={"remaining": eur("120")})
    assert any("is not" in problem for problem in credit_ledger.violations([broken], part.entries))
