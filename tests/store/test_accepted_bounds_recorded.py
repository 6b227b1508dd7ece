"""The largest reservation the input bounds accept is cancelled and recorded, on SQLite and PostgreSQL
(issue 24): twenty products whose prices and deposits add up to the bound itself, in currencies of
0, 2 and 4 decimal places, each cancelled by the transition its workflow records, half the refunds
taken as credits. Every payment, refund and credit is written (nothing refused: no column is too
narrow for what the bounds accept, store.schema), reads back exactly, and the journal keeps its
invariant. Then any accepted reservation (hypothesis) does the same."""

from __future__ import annotations

import random
import secrets
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.cancellation_flow import CancellationInfo
from domain.codes import EVENT_ID, FlowKind, new_flow_code
from domain.credit_ledger import CREDIT_VALIDITY, RefundTo, credit_terms
from domain.flow_info import FlowRecord, HistoryEntry
from domain.input_bounds import FROM_REQUEST
from domain.journal import JournalEntry, PostedRefund, balances, invariant_violations
from domain.money import Money, minor_units
from domain.penalty import penalty_for, refund_for
from domain.products import ReservationSpec
from store.repositories import Store
from store.schema import credits, events, payments, refunds
from tests.domain.test_input_bounds import amount_text, largest_units, reservations

AT = datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc)
RNG = secrets.SystemRandom()
MOST_PRODUCTS = 20  # ReservationSpec.products' max_length


def largest_reservation(currency: str) -> dict[str, Any]:
    """Twenty products, each with a deposit, that add up to exactly the most one reservation may carry."""
    most = largest_units(currency)
    share = most // (2 * MOST_PRODUCTS)
    amounts = [share] * (2 * MOST_PRODUCTS)
    amounts[0] += most - sum(amounts)
    return {"travellers": [{"traveller_id": "T1", "name": "Ada"}], "products": [{
        "kind": "other", "name": f"Transfer {n}", "starts_at": "2027-03-20T08:00:00+01:00",
        "ends_at": "2027-03-20T09:00:00+01:00", "vat_rate": "0.081",
        "price": {"amount": amount_text(amounts[2 * n], currency), "currency": currency},
        "deposit": {"amount": amount_text(amounts[2 * n + 1], currency), "currency": currency},
        "cancellation_policy": {"mode": "automatic", "tiers": [{"hours_before_start": 24, "penalty_percent": "33.333"}]},
    } for n in range(MOST_PRODUCTS)]}


def record(info: CancellationInfo, event_type: str | None = None) -> FlowRecord:
    return FlowRecord.of(info, FlowKind.CANCELLATION, AT, EVENT_ID.secure() if event_type else None, event_type)


async def cancel_every_product(store: Store, body: dict[str, Any], refund_to: list[RefundTo]) -> tuple[str, ReservationSpec]:
    """Sell ``body`` (accepted as a request) and cancel each product as its workflow records it."""
    spec = ReservationSpec.model_validate(body, context=FROM_REQUEST)
    partner, _ = await store.accounts.create_partner("Acme", None)
    reservation_id = await store.reservations.create(partner.partner_id, spec, random.Random(RNG.random()))
    for n, product in enumerate(await store.reservations.products_of(reservation_id)):
        sold = spec.products[n]
        code = new_flow_code(FlowKind.CANCELLATION, RNG)
        paid = sold.price
        penalty = penalty_for(sold.cancellation_policy.tiers, paid, sold.start - AT)
        refund = refund_for(paid, penalty)
        identity = {"code": code, "product_id": product.product_id, "reservation_id": reservation_id,
                    "partner_id": partner.partner_id, "resolution": "automatic", "paid": paid, "penalty": penalty,
                    "refund": refund}
        processing = CancellationInfo(**identity, status="processing", history=[HistoryEntry(at=AT, event="processing")])
        assert await store.flows.open(record(processing), {})
        done = CancellationInfo(**identity, status="cancelled", history=[*processing.history, HistoryEntry(at=AT, event="cancelled")],
                                **credit_terms(code, refund, refund_to[n % len(refund_to)], CREDIT_VALIDITY, AT))
        await store.flows.record_flow(record(done, "cancellation.completed"))
    return reservation_id, spec


async def books_hold(store: Store, reservation_id: str, spec: ReservationSpec) -> None:
    """What was written reads back exactly, and the books balance: sale − refunds, credits kept apart."""
    async with store.engine.connect() as conn:
        rows = (await conn.execute(sa.select(payments).where(payments.c.reservation_id == reservation_id))).all()
        posted = (await conn.execute(sa.select(refunds).where(refunds.c.reservation_id == reservation_id))).all()
        issued = (await conn.execute(sa.select(credits).where(credits.c.reservation_id == reservation_id))).all()
        completed = (await conn.execute(sa.select(sa.func.count()).select_from(events).where(
            events.c.type == "cancellation.completed", events.c.partner_id == rows[0].partner_id))).scalar_one()
    assert completed == len(spec.products)
    entries = [JournalEntry(effect_key=r.effect_key, reservation_id=r.reservation_id, partner_id=r.partner_id,
                            product_id=r.product_id, flow_code=r.flow_code, refund_id=r.refund_id, category=r.category,
                            amount=Money.of(r.amount, r.currency)) for r in rows]
    assert invariant_violations(entries, [PostedRefund(r.refund_id, r.number, Money.of(r.amount, r.currency))
                                          for r in posted if r.state == "posted"]) == []
    # Every product is cancelled: each refund or credit is its price less the penalty, exactly as written.
    given_back = sum((Money.of(r.amount, r.currency).amount for r in posted), Decimal(0)) + sum(
        (Money.of_minor(c.amount_minor, c.currency).amount for c in issued), Decimal(0))
    expected = sum((refund_for(p.price, penalty_for(p.cancellation_policy.tiers, p.price, p.start - AT)).amount
                    for p in spec.products), Decimal(0))
    assert given_back == expected
    # What the partner pays in each currency: the sale less the refunds posted (a credit moves no cash).
    paid: dict[str, Decimal] = {}
    for p in spec.products:
        for money in (p.price, p.deposit):
            if money is not None:
                paid[money.currency] = paid.get(money.currency, Decimal(0)) + money.amount
    for r in posted:
        if r.state == "posted":
            paid[r.currency] -= Money.of(r.amount, r.currency).amount
    assert {c: b.amount for c, b in balances(entries).items()} == paid
    assert all(c.amount_minor == c.remaining_minor > 0 for c in issued)


@pytest.mark.parametrize("currency", ["JPY", "EUR", "CLF"])  # 0, 2 and 4 decimal places
async def test_the_largest_accepted_reservation_is_cancelled_and_recorded(store: Store, currency: str) -> None:
    body = largest_reservation(currency)
    assert sum(Decimal(p["price"]["amount"]) + Decimal(p["deposit"]["amount"]) for p in body["products"]) == (
        Decimal(largest_units(currency)).scaleb(-minor_units(currency)))

    reservation_id, spec = await cancel_every_product(store, body, ["original_payment", "credit"])

    await books_hold(store, reservation_id, spec)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=reservations(), refund_to=st.lists(st.sampled_from(["original_payment", "credit"]), min_size=1, max_size=6))
async def test_any_accepted_reservation_is_cancelled_and_recorded(
    store: Store, body: dict[str, Any], refund_to: list[RefundTo]
) -> None:
    try:
        ReservationSpec.model_validate(body, context=FROM_REQUEST)
    except ValueError:
        return  # refused where it enters (tests/domain/test_input_bounds.py)
    reservation_id, spec = await cancel_every_product(store, body, refund_to)

    await books_hold(store, reservation_id, spec)


def test_the_largest_accepted_amounts_fit_their_columns() -> None:
    """Amounts are strings of 40 characters (payments, refunds) and credits BIGINT minor units: the most a
    reservation may carry, negated, in the currency with the most decimals, fits both with room to spare."""
    most = max(largest_units(c) for c in ("JPY", "EUR", "KWD", "CLF"))
    assert len("-" + amount_text(most, "CLF")) <= payments.c.amount.type.length == refunds.c.amount.type.length
    assert most <= 2**63 - 1
    assert isinstance(credits.c.amount_minor.type, sa.BigInteger)
    assert timedelta(0) < CREDIT_VALIDITY
