"""Which entries a sale and each flow transition book (docs/settlement.md#the-payments-journal), and the books' checks."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.codes import FlowKind
from domain.flow_info import FlowRecord
from domain.journal import Account, JournalEntry, PostedRefund, gapless, invariant_violations, sale_entries, transition_effects
from domain.money import Money
from domain.products import FlightProduct
from domain.refusals import Refusal, Refused

AT = datetime(2026, 6, 1, tzinfo=timezone.utc)


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def json_money(amount: str) -> dict[str, str]:
    return eur(amount).model_dump(mode="json")


def record(kind: FlowKind, status: str, code: str = "CAN-AAAAAAAA", **info: Any) -> FlowRecord:
    return FlowRecord(code=code, kind=kind, product_id="PRD-1", reservation_id="RES-1", partner_id="ptn_1",
                      status=status, terminal=True, info={"code": code, "status": status, **info}, at=AT)


def flight(price: str = "240.00", deposit: str | None = None) -> FlightProduct:
    return FlightProduct.model_validate({
        "kind": "flight", "carrier": "ZZ",
        "segments": [{"origin": "MAD", "destination": "CDG", "departure": "2026-12-20T08:00:00+01:00",
                      "arrival": "2026-12-20T10:00:00+01:00", "flight_number": "ZZ101"}],
        "price": json_money(price), "vat_rate": "0.081", "cancellation_policy": {"mode": "automatic"},
        **({"deposit": json_money(deposit)} if deposit else {}),
    })


def entry(amount: str, key: str, refund_id: str | None = None) -> JournalEntry:
    return JournalEntry(effect_key=key, reservation_id="RES-1", partner_id="ptn_1", category="refund" if refund_id else "fare",
                        amount=eur(amount), refund_id=refund_id)


def test_a_sale_books_each_fare_and_each_deposit() -> None:
    booked = sale_entries("RES-1", "ptn_1", [("PRD-1", flight()), ("PRD-2", flight("99.90", deposit="50"))])
    assert [(e.effect_key, e.category, e.amount, e.vat_rate) for e in booked] == [
        ("sale:PRD-1:fare", "fare", eur("240"), Decimal("0.081")),
        ("sale:PRD-2:fare", "fare", eur("99.90"), Decimal("0.081")),
        ("sale:PRD-2:deposit", "deposit", eur("50"), None),
    ]
    assert {e.reservation_id for e in booked} == {"RES-1"} and {e.partner_id for e in booked} == {"ptn_1"}


def test_a_cancellation_with_a_refund_posts_it() -> None:
    effects = transition_effects(record(FlowKind.CANCELLATION, "cancelled", refund=json_money("120"), penalty=json_money("120")))
    assert effects.charges == () and effects.refund is not None
    assert (effects.refund.flow_code, effects.refund.amount, effects.refund.reason) == ("CAN-AAAAAAAA", eur("120"), "cancellation")


@pytest.mark.parametrize("status", ["processing", "awaiting_agent_quote", "awaiting_partner_decision", "rejected",
                                    "no_response", "expired", "failed"])
def test_other_cancellation_statuses_move_no_money(status: str) -> None:
    assert not transition_effects(record(FlowKind.CANCELLATION, status, refund=json_money("120")))


def test_a_cancellation_without_refund_moves_no_money() -> None:
    assert not transition_effects(record(FlowKind.CANCELLATION, "cancelled", refund=json_money("0")))
    assert not transition_effects(record(FlowKind.CANCELLATION, "cancelled"))  # a record that carries nothing


def test_a_booked_change_books_its_fee_and_a_positive_fare_difference() -> None:
    dearer = transition_effects(record(FlowKind.CHANGE, "modified", code="CF-AAAAAAAA", resolution="automatic",
                                       fare_difference=json_money("24"), change_fee=json_money("30"),
                                       total_due=json_money("54")))
    assert [(c.effect_key, c.category, c.amount, c.flow_code) for c in dearer.charges] == [
        ("CF-AAAAAAAA:fee", "fee", eur("30"), "CF-AAAAAAAA"),
        ("CF-AAAAAAAA:fare_difference", "fare_difference", eur("24"), "CF-AAAAAAAA")]
    cheaper = transition_effects(record(FlowKind.CHANGE, "modified", code="CF-AAAAAAAA", resolution="automatic",
                                        fare_difference=json_money("-12"), change_fee=json_money("30"),
                                        total_due=json_money("30")))
    assert [c.category for c in cheaper.charges] == ["fee"]
    checkout = transition_effects(record(FlowKind.CHANGE, "modified", code="CF-AAAAAAAA", resolution="manual",
                                         total_due=json_money("75")))
    assert [(c.category, c.amount) for c in checkout.charges] == [("fee", eur("75"))]
    assert not transition_effects(record(FlowKind.CHANGE, "expired", code="CF-AAAAAAAA", resolution="manual",
                                         total_due=json_money("75")))
    free = record(FlowKind.CHANGE, "modified", code="CF-AAAAAAAA", resolution="automatic",
                  fare_difference=json_money("0"), change_fee=json_money("0"), total_due=json_money("0"))
    assert not transition_effects(free)


def rescheduling(status: str, chosen: str) -> FlowRecord:
    alternatives = [{"alternative_id": "proposed", "kind": "accept_proposed", "segments": [], "refund": None},
                    {"alternative_id": "refund", "kind": "refund", "segments": [], "refund": json_money("240")}]
    return record(FlowKind.RESCHEDULING, status, code="RS-AAAAAAAA", alternatives=alternatives, alternative_id=chosen)


def test_a_rescheduling_refunds_the_full_price_only_for_the_refund_alternative() -> None:
    for status in ("accepted", "auto_accepted"):
        effects = transition_effects(rescheduling(status, "refund"))
        assert effects.refund is not None and (effects.refund.amount, effects.refund.reason) == (eur("240"), "rescheduling")
    assert not transition_effects(rescheduling("accepted", "proposed"))
    assert not transition_effects(rescheduling("failed", "refund"))
    assert not transition_effects(record(FlowKind.SPECIAL_REQUEST, "confirmed", code="SR-AAAAAAAA"))


def test_charges_take_the_products_vat_rate() -> None:
    effects = transition_effects(record(FlowKind.CHANGE, "modified", code="CF-AAAAAAAA", resolution="manual",
                                        total_due=json_money("75")))
    assert [c.vat_rate for c in effects.with_vat_rate(Decimal("0.10")).charges] == [Decimal("0.10")]


def test_an_account_refunds_up_to_what_was_charged() -> None:
    account = Account((eur("240"), eur("30"), eur("-100")))
    assert (account.charged("EUR"), account.refunded("EUR"), account.balance("EUR")) == (eur("270"), eur("100"), eur("170"))
    assert account.currencies() == ["EUR"]
    account.check_refund(eur("170"))
    with pytest.raises(Refused) as refused:
        account.check_refund(eur("170.01"))
    assert refused.value.refusal == Refusal.REFUND_EXCEEDS_CHARGED
    with pytest.raises(Refused):
        account.check_refund(Money.of("1", "USD"))  # nothing charged in USD
    assert account.flow_refund(eur("120")) == (eur("120"), "")
    capped, note = account.flow_refund(eur("200"))
    assert capped == eur("170") and "capped" in note
    assert Account((eur("100"), eur("-100"))).flow_refund(eur("50"))[0] is None


def test_the_invariant_finds_what_is_wrong() -> None:
    fine = [entry("240", "sale:PRD-1:fare"), entry("-100", "refund:rfd_1", "rfd_1")]
    assert invariant_violations(fine, [PostedRefund("rfd_1", 1, eur("100"))]) == []
    assert invariant_violations(fine, []) != []  # an entry for a refund that is not posted
    assert invariant_violations(fine[:1], [PostedRefund("rfd_1", 1, eur("100"))]) != []  # a posted refund not booked
    assert invariant_violations(fine, [PostedRefund("rfd_1", 1, eur("90"))]) != []  # booked for another amount
    too_much = [entry("240", "sale:PRD-1:fare"), entry("-300", "refund:rfd_1", "rfd_1")]
    assert invariant_violations(too_much, [PostedRefund("rfd_1", 1, eur("300"))]) != []
    twice = [entry("240", "sale:PRD-1:fare"), entry("240", "sale:PRD-1:fare")]
    assert invariant_violations(twice, []) != []


def test_gapless() -> None:
    assert gapless([]) and gapless([3, 1, 2])
    assert not gapless([1, 3]) and not gapless([1, 1, 2]) and not gapless([0, 1])


@given(st.lists(st.integers(min_value=-(10**9), max_value=10**9), max_size=30), st.integers(min_value=1, max_value=10**9))
def test_a_flow_refund_never_takes_the_balance_below_zero(amounts: list[int], requested: int) -> None:
    charged = [Money.of(Decimal(a).scaleb(-2), "EUR") for a in amounts if a > 0]
    account = Account(tuple(charged))
    posted, _ = account.flow_refund(Money.of(Decimal(requested).scaleb(-2), "EUR"))
    if posted is None:
        assert account.balance("EUR").amount == 0
    else:
        assert 0 < posted.amount <= account.balance("EUR").amount
        assert Account((*charged, -posted)).balance("EUR").amount >= 0
