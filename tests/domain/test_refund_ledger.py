"""A refund's life, draft → posted | rejected, once (docs/settlement.md#the-refunds-ledger), and the refund procedure's
terms, which are a quote's (docs/settlement.md#the-refund-procedure)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain import refund_ledger
from domain.allowance import ProductState
from domain.journal import Account
from domain.money import Money
from domain.penalty import CancellationTier, penalty_for
from domain.products import FlightProduct
from domain.refund_terms import cancellation_terms, procedure_item, refund_procedure
from domain.refusals import Refusal, Refused

AT = datetime(2026, 6, 1, tzinfo=timezone.utc)


def draft(amount: str = "50") -> refund_ledger.Refund:
    return refund_ledger.draft(refund_id="rfd_1", reference_number=7, reservation_id="RES-1", partner_id="ptn_1",
                               amount=Money.of(amount, "EUR"), reason="goodwill", created_by="agent:agt_1", at=AT)


def test_a_draft_is_posted_once() -> None:
    first = draft()
    assert (first.state, first.reference_number, first.number) == ("draft", "7", None)
    done = refund_ledger.posted(first, 3, AT, "agent:agt_2")
    assert (done.state, done.number, done.posted_at, done.decided_by) == ("posted", "3", AT, "agent:agt_2")
    entry = refund_ledger.posting_entry(done, Decimal("0.10"))
    assert (entry.effect_key, entry.amount, entry.category, entry.refund_id) == (
        "refund:rfd_1", Money.of("-50", "EUR"), "refund", "rfd_1")
    for move in (lambda r: refund_ledger.posted(r, 4, AT, "x"), lambda r: refund_ledger.rejected(r, "no", AT, "x"),
                 lambda r: refund_ledger.edited(r, {"notes": "x"})):
        with pytest.raises(Refused) as refused:
            move(done)
        assert refused.value.refusal == Refusal.REFUND_NOT_DRAFT


def test_a_draft_is_rejected_once_and_never_booked() -> None:
    done = refund_ledger.rejected(draft(), "duplicate claim", AT, "admin")
    assert (done.state, done.rejection_reason, done.number, done.rejected_at) == ("rejected", "duplicate claim", None, AT)
    with pytest.raises(Refused):
        refund_ledger.posted(done, 1, AT, "admin")
    with pytest.raises(ValueError):
        refund_ledger.posting_entry(done)
    with pytest.raises(ValueError):
        refund_ledger.posting_entry(draft())


def test_only_some_fields_of_a_draft_are_edited() -> None:
    changed = refund_ledger.edited(draft(), {"amount": Money.of("60", "EUR"), "back_office_code": "BO-9"})
    assert (changed.amount, changed.back_office_code, changed.reason) == (Money.of("60", "EUR"), "BO-9", "goodwill")
    with pytest.raises(ValueError):
        refund_ledger.edited(draft(), {"state": "posted"})


def test_numbers_start_at_one() -> None:
    with pytest.raises(ValueError):
        refund_ledger.posted(draft(), 0, AT, "admin")


def test_amount_problems() -> None:
    account = Account((Money.of("240", "EUR"), Money.of("20000", "JPY")))
    assert refund_ledger.amount_problems(Money.of("10", "EUR"), account) == []
    assert refund_ledger.amount_problems(Money.of("10", "JPY"), account) == []
    assert [f for f, _ in refund_ledger.amount_problems(Money.of("0", "EUR"), account)] == ["amount.amount"]
    assert [f for f, _ in refund_ledger.amount_problems(Money.of("-1", "USD"), account)] == ["amount.amount", "amount.currency"]


@given(st.lists(st.sampled_from(["post", "reject", "edit"]), min_size=1, max_size=6))
def test_whatever_is_tried_a_refund_is_decided_at_most_once(moves: list[str]) -> None:
    refund = draft()
    decisions = 0
    for move in moves:
        try:
            if move == "post":
                refund = refund_ledger.posted(refund, 1, AT, "admin")
                decisions += 1
            elif move == "reject":
                refund = refund_ledger.rejected(refund, "no", AT, "admin")
                decisions += 1
            else:
                refund = refund_ledger.edited(refund, {"notes": "again"})
        except Refused:
            assert refund.state != "draft"
    assert decisions <= 1
    assert (refund.state == "draft") == (decisions == 0)


# --- the refund procedure's terms ----------------------------------------------------------------


def flight(mode: str = "automatic", price: str = "240.00") -> FlightProduct:
    return FlightProduct.model_validate({
        "kind": "flight", "carrier": "ZZ",
        "segments": [{"origin": "MAD", "destination": "CDG", "departure": (AT + timedelta(days=3)).isoformat(),
                      "arrival": (AT + timedelta(days=3, hours=2)).isoformat(), "flight_number": "ZZ101"}],
        "price": {"amount": price, "currency": "EUR"}, "vat_rate": "0.081",
        "cancellation_policy": {"mode": mode, "tiers": [{"hours_before_start": 168, "penalty_percent": "50"}]},
    })


def state(product: FlightProduct, status: str = "confirmed", busy: bool = False) -> ProductState:
    return ProductState(kind="flight", status=status, reservation_status="confirmed", start=product.start,
                        end=product.end, flow_in_progress=busy)


def test_terms_are_the_penalty_rule() -> None:
    product = flight()
    terms = cancellation_terms(state(product), product, AT)
    assert (terms.allowance, terms.resolution) == ("allowed", "automatic")
    assert terms.penalty == penalty_for(product.cancellation_policy.tiers, product.price, product.start - AT)
    assert (terms.penalty, terms.refund) == (Money.of("120", "EUR"), Money.of("120", "EUR"))
    manual = cancellation_terms(state(flight("manual")), flight("manual"), AT)
    assert (manual.resolution, manual.penalty, manual.refund) == ("manual", None, None)
    busy = cancellation_terms(state(product, busy=True), product, AT)
    assert (busy.resolution, busy.reasons) == (None, ["flow_in_progress"])


def test_procedure_totals_sum_the_automatic_refundable_items_per_currency() -> None:
    products = [flight(), flight(price="100.00"), flight("manual"), flight("none")]
    items = [procedure_item(f"PRD-{i}", cancellation_terms(state(p), p, AT)) for i, p in enumerate(products)]
    procedure = refund_procedure("RES-1", items, AT)
    assert procedure.refundable and [i.refundable for i in items] == [True, True, True, False]
    [total] = procedure.totals
    assert (total.currency, total.price, total.penalty, total.difference) == (
        "EUR", Money.of("340", "EUR"), Money.of("170", "EUR"), Money.of("170", "EUR"))
    assert not refund_procedure("RES-1", items[3:], AT).refundable


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=-48, max_value=400),
       st.lists(st.tuples(st.integers(min_value=0, max_value=500), st.decimals(min_value=0, max_value=100, places=2)),
                max_size=5))
def test_penalty_and_difference_always_make_the_price(units: int, hours_left: int, tiers: list[tuple[int, Decimal]]) -> None:
    product = flight().model_copy(update={
        "price": Money.of(Decimal(units).scaleb(-2), "EUR"),
        "cancellation_policy": flight().cancellation_policy.model_copy(
            update={"tiers": [CancellationTier(hours_before_start=h, penalty_percent=p) for h, p in tiers]}),
    })
    now = product.start - timedelta(hours=hours_left)
    item = procedure_item("PRD-1", cancellation_terms(state(product), product, now))
    if item.refundable:
        assert item.penalty is not None and item.difference is not None
        assert item.penalty + item.difference == item.price
        assert Decimal(0) <= item.difference.amount <= item.price.amount
    else:
        assert item.reasons == ["usage_dates_passed"]
