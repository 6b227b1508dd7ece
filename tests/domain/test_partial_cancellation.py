"""Partial cancellation's money (docs/settlement.md#partial-cancellation), for any fares, any subset and
any sequence of cancellations of one product: the shares sum to the price, a refund never exceeds what
its travellers paid nor the product what was paid for it, the reversed share's VAT is exactly the
negation of the sale's share, and the journal balances (``domain.journal.invariant_violations``) after
every step, decided with ``domain.settlement`` as the store decides."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain import settlement
from domain.codes import FlowKind
from domain.flow_info import FlowRecord
from domain.journal import balances, invariant_violations
from domain.money import Money, minor_units
from domain.partial_cancellation import cancellation_share, remaining_share, share_of
from domain.penalty import CancellationTier, penalty_for, refund_for
from domain.positions import cancellation_positions
from domain.products import FlightProduct, ReservationSpec
from domain.refusals import Refusal, Refused
from domain.settlement import SoldProduct
from domain.travellers import Fare, equal_split, rescaled, total
from domain.vat import vat_included
from tests.domain.test_settlement_books import AT, CURRENCIES, Books

VAT_RATES = ("0", "0.025", "0.081", "0.10", "0.19", "0.2", "0.255")
PERCENTS = ("0", "10", "12.5", "33.3", "50", "99.99", "100")


def money(units: int, currency: str) -> Money:
    return Money.of(Decimal(units).scaleb(-minor_units(currency)), currency)


def product(price: Money, traveller_ids: list[str], fares: list[Fare] | None, vat_rate: str = "0.10",
            partial: bool | None = None) -> FlightProduct:
    policy: dict[str, Any] = {"mode": "automatic"}
    if partial is not None:
        policy["partial"] = partial
    return FlightProduct.model_validate({
        "kind": "flight", "carrier": "ZZ",
        "segments": [{"origin": "MAD", "destination": "CDG", "departure": "2031-12-20T08:00:00+01:00",
                      "arrival": "2031-12-20T10:00:00+01:00", "flight_number": "ZZ101"}],
        "price": price.model_dump(mode="json"), "vat_rate": vat_rate, "cancellation_policy": policy,
        "traveller_ids": traveller_ids, "fares": None if fares is None else [f.model_dump(mode="json") for f in fares],
    })


@st.composite
def sold(draw: st.DrawFn) -> FlightProduct:
    """A product of one to eight travellers, its fares given or left to the equal split."""
    currency = draw(st.sampled_from(CURRENCIES))
    ids = [f"T{n}" for n in range(1, draw(st.integers(1, 8)) + 1)]
    if draw(st.booleans()):
        units = draw(st.lists(st.integers(0, 10**9), min_size=len(ids), max_size=len(ids)))
        assume(sum(units) > 0)
        fares = [Fare(traveller_id=t, amount=money(u, currency)) for t, u in zip(ids, units, strict=True)]
        return product(money(sum(units), currency), ids, fares, draw(st.sampled_from(VAT_RATES)))
    return product(money(draw(st.integers(1, 10**11)), currency), ids, None, draw(st.sampled_from(VAT_RATES)))


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 10**11), st.sampled_from(CURRENCIES), st.integers(1, 20))
def test_the_equal_split_sums_to_the_price_the_first_travellers_taking_the_remainder(
    units: int, currency: str, travellers: int
) -> None:
    fares = equal_split(money(units, currency), [f"T{n}" for n in range(travellers)])
    assert total(f.amount for f in fares) == money(units, currency)
    minors = [f.amount.minor for f in fares]
    assert minors == sorted(minors, reverse=True) and minors[0] - minors[-1] <= 1


def test_the_equal_split_of_the_contract() -> None:
    assert [str(f.amount) for f in equal_split(Money.of("100.00", "EUR"), ["T1", "T2", "T3"])] == [
        "33.34 EUR", "33.33 EUR", "33.33 EUR"]


@settings(max_examples=300, deadline=None)
@given(sold(), st.integers(0, 10**11))
def test_rescaled_fares_sum_to_the_new_price(item: FlightProduct, new_units: int) -> None:
    fares = item.fares_for([])
    new_price = money(new_units, item.price.currency)
    moved = rescaled(fares, new_price)
    assert total(f.amount for f in moved) == new_price
    assert [f.traveller_id for f in moved] == [f.traveller_id for f in fares]
    assert all(not f.amount.is_negative() for f in moved)


@settings(max_examples=300, deadline=None)
@given(sold(), st.data())
def test_any_sequence_of_partial_cancellations_keeps_the_books(item: FlightProduct, data: st.DataObject) -> None:
    fares = item.fares_for([])
    ids = [f.traveller_id for f in fares]
    price = item.price
    assert total(f.amount for f in fares) == price
    books = Books()
    sale = settlement.sale("res_1", "ptn_1", [("prd_1", item)])
    books.book(sale.entries)
    stored = SoldProduct("prd_1", "res_1", "ptn_1", item.model_dump(mode="json"))
    cancelled: dict[str, str] = {}
    refunded = Money.zero(price.currency)
    penalties = Money.zero(price.currency)
    for step in range(1, data.draw(st.integers(1, len(ids)), label="cancellations") + 1):
        if len(cancelled) == len(ids):
            break
        still = [t for t in ids if t not in cancelled]
        chosen = data.draw(st.lists(st.sampled_from(still), unique=True, max_size=len(still)), label="travellers")
        share = cancellation_share(item, fares, cancelled, chosen)
        assert set(share.traveller_ids) == (set(chosen) or set(still))
        # The share is what they paid; with the rest it makes the price.
        assert share.paid == share_of(fares, share.traveller_ids)
        assert (share.paid + remaining_share(fares, cancelled | dict.fromkeys(share.traveller_ids, ""))
                if share.remaining else share.paid) == remaining_share(fares, cancelled)

        percent = data.draw(st.sampled_from(PERCENTS), label="penalty percent")
        tiers = [CancellationTier(hours_before_start=10_000, penalty_percent=Decimal(percent))]
        penalty = penalty_for(tiers, share.paid, timedelta(days=30))
        refund = refund_for(share.paid, penalty)
        assert Money.zero(price.currency).amount <= refund.amount <= share.paid.amount

        code = f"CAN-STEP{step:04d}"
        positions = cancellation_positions(code=code, product_id="prd_1", reservation_id="res_1", product=item,
                                           paid=share.paid, penalty=penalty, cancelled_at=AT,
                                           traveller_ids=list(share.traveller_ids))
        original, fee = positions.original_position, positions.cancellation_fee_position
        assert original.quantity == len(share.traveller_ids)
        assert original.amount == -share.paid
        assert original.vat_amount == -vat_included(share.paid, item.vat_rate)
        assert original.net_amount == -(share.paid - vat_included(share.paid, item.vat_rate))
        assert original.amount + fee.amount == -refund == -positions.refund

        info = {"code": code, "status": "cancelled", "refund": refund.model_dump(mode="json"),
                "traveller_ids": list(share.traveller_ids)}
        record = FlowRecord(code=code, kind=FlowKind.CANCELLATION, product_id="prd_1", reservation_id="res_1",
                            partner_id="ptn_1", status="cancelled", terminal=True, info=info, at=AT)
        books.transition(record, stored)
        books.transition(record, stored)  # recorded again, as a retried activity would: booked once
        cancelled |= dict.fromkeys(share.traveller_ids, code)
        refunded = refunded + refund
        penalties = penalties + penalty

        entries = books.entries["res_1"]
        assert invariant_violations(entries, books.posted("res_1")) == []
        assert refunded.amount <= price.amount
        assert balances(entries)[price.currency] == price - refunded
        flow_refunds = [r for r in books.refunds.values() if r.flow_code == code]
        assert [(r.amount, r.traveller_ids) for r in flow_refunds] == (
            [(refund, list(share.traveller_ids))] if refund.amount > 0 else [])
    # What the partner finally pays: the penalties, and the fares of whoever still travels.
    still_paid = remaining_share(fares, cancelled) if len(cancelled) < len(ids) else Money.zero(price.currency)
    assert balances(books.entries["res_1"])[price.currency] == penalties + still_paid


def test_a_subset_when_the_policy_cancels_whole_products_only() -> None:
    fares = equal_split(Money.of("90.00", "EUR"), ["T1", "T2", "T3"])
    item = product(Money.of("90.00", "EUR"), ["T1", "T2", "T3"], None, partial=False)
    with pytest.raises(Refused) as refused:
        cancellation_share(item, fares, {}, ["T1"])
    assert refused.value.refusal == Refusal.CANCELLATION_DISALLOWED and "partial_not_allowed" in refused.value.detail
    assert cancellation_share(item, fares, {}, []).paid == Money.of("90.00", "EUR")
    assert cancellation_share(item, fares, {}, ["T3", "T1", "T2"]).traveller_ids == ("T1", "T2", "T3")


def test_who_may_be_named() -> None:
    fares = equal_split(Money.of("90.00", "EUR"), ["T1", "T2", "T3"])
    item = product(Money.of("90.00", "EUR"), ["T1", "T2", "T3"], None)
    with pytest.raises(Refused) as stranger:
        cancellation_share(item, fares, {}, ["T1", "T9", "T1"])
    assert stranger.value.refusal == Refusal.INVALID_FIELDS
    assert [e["field"] for e in stranger.value.errors or []] == ["traveller_ids[1]", "traveller_ids[2]"]
    with pytest.raises(Refused) as gone:
        cancellation_share(item, fares, {"T2": "CAN-1"}, ["T2"])
    assert gone.value.refusal == Refusal.CANCELLATION_DISALLOWED and "already_cancelled" in gone.value.detail


def test_hotels_cancel_whole_unless_their_policy_says_otherwise() -> None:
    spec = ReservationSpec.model_validate({
        "travellers": [{"traveller_id": "T1", "name": "Ada"}, {"traveller_id": "T2", "name": "Grace"}],
        "products": [{"kind": "hotel", "hotel": "Lutetia", "check_in": "2031-06-01", "check_out": "2031-06-03",
                      "price": {"amount": "600", "currency": "EUR"}, "vat_rate": "0.10",
                      "cancellation_policy": {"mode": "manual", **partial}} for partial in ({}, {"partial": True})],
    })
    assert [p.partial_cancellation() for p in spec.sold()] == [False, True]
