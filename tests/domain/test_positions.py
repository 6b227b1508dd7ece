"""Cancellation positions with VAT (docs/settlement.md#cancellation-positions)."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from domain.money import MINOR_UNITS, Money, minor_units
from domain.positions import cancellation_positions, fee_title, position, product_title, reversal
from domain.products import FlightProduct, HotelProduct, OtherProduct

CURRENCIES = sorted(MINOR_UNITS)
START = datetime(2026, 12, 20, 8, 0, tzinfo=timezone(timedelta(hours=1)))
FLIGHT = FlightProduct.model_validate({
    "kind": "flight", "carrier": "ZZ",
    "segments": [{"origin": "MAD", "destination": "CDG", "departure": START.isoformat(),
                  "arrival": (START + timedelta(hours=2)).isoformat(), "flight_number": "ZZ101"}],
    "price": {"amount": "240.00", "currency": "EUR"}, "vat_rate": "0.081",
    "cancellation_policy": {"mode": "automatic"},
})


def money(units: int, currency: str) -> Money:
    return Money.of(Decimal(units).scaleb(-minor_units(currency)), currency)


rates = st.decimals(min_value=0, max_value=Decimal("0.27"), places=4)
currencies = st.sampled_from(CURRENCIES)
units = st.integers(min_value=-(10**12), max_value=10**12)


def test_the_seed_example() -> None:
    # Seed 003: a -27 CHF original position at 8.1 % carries -2.023127 of VAT, the 24.30 fee 1.8208…
    original = position("Auto-3.5t MBU", Money.of("-27", "CHF"), Decimal("0.081"))
    assert (original.vat_amount, original.net_amount) == (Money.of("-2.02", "CHF"), Money.of("-24.98", "CHF"))
    fee = position("Stornierungsgebühr 6 Tage vor Reise", Money.of("24.30", "CHF"), Decimal("0.081"))
    assert (fee.vat_amount, fee.net_amount) == (Money.of("1.82", "CHF"), Money.of("22.48", "CHF"))


def test_a_cancelled_flight() -> None:
    cancelled_at = START - timedelta(days=6, hours=3)
    found = cancellation_positions(
        code="CAN-AAAAAAAA", product_id="PRD-1", reservation_id="RES-1", product=FLIGHT,
        paid=Money.of("240", "EUR"), penalty=Money.of("120", "EUR"), cancelled_at=cancelled_at,
    )
    original, fee = found.original_position, found.cancellation_fee_position
    assert original.title == "Flight ZZ101 MAD-CDG 2026-12-20" and original.quantity == 1
    assert (original.amount, original.vat_amount, original.net_amount) == (
        Money.of("-240", "EUR"), Money.of("-17.98", "EUR"), Money.of("-222.02", "EUR"))
    assert fee.title == "Cancellation fee, 6 days before start"
    assert (fee.amount, fee.vat_amount, fee.net_amount) == (
        Money.of("120", "EUR"), Money.of("8.99", "EUR"), Money.of("111.01", "EUR"))
    assert found.refund == Money.of("120", "EUR")
    assert found.model_dump(mode="json")["original_position"]["vat_rate"] == "0.081"


def test_a_fee_of_zero_is_still_a_position() -> None:
    found = cancellation_positions(
        code="CAN-AAAAAAAA", product_id="PRD-1", reservation_id="RES-1", product=FLIGHT,
        paid=Money.of("240", "EUR"), penalty=Money.zero("EUR"), cancelled_at=START - timedelta(days=60),
    )
    assert found.cancellation_fee_position.amount == Money.zero("EUR")
    assert found.cancellation_fee_position.vat_amount == Money.zero("EUR")
    assert found.refund == Money.of("240", "EUR")


def test_titles() -> None:
    assert fee_title(START, START - timedelta(days=1)) == "Cancellation fee, 1 day before start"
    assert fee_title(START, START - timedelta(hours=23)) == "Cancellation fee, 0 days before start"
    assert fee_title(START, START + timedelta(minutes=1)) == "Cancellation fee, after start"
    hotel = HotelProduct(kind="hotel", hotel="Hotel Lutetia", check_in=date(2026, 12, 20), check_out=date(2026, 12, 23),
                         price=Money.of("600", "EUR"), vat_rate=Decimal("0.10"),
                         cancellation_policy={"mode": "manual"})  # type: ignore[arg-type]
    assert product_title(hotel) == "Hotel Lutetia, 2026-12-20 to 2026-12-23 (3 nights)"
    other = OtherProduct(kind="other", name="Airport transfer", starts_at=START, ends_at=START + timedelta(hours=1),
                         price=Money.of("30", "EUR"), vat_rate=Decimal("0.10"),
                         cancellation_policy={"mode": "none"})  # type: ignore[arg-type]
    assert product_title(other) == "Airport transfer 2026-12-20"


@given(currencies, units, rates)
def test_a_position_adds_up_and_its_reversal_is_its_exact_negation(currency: str, gross_units: int, rate: Decimal) -> None:
    gross = money(gross_units, currency)
    sale = position("sale", gross, rate)
    assert sale.vat_amount + sale.net_amount == sale.amount == gross
    assert abs(sale.vat_amount.amount) <= abs(gross.amount)
    assert sale.vat_amount.amount == 0 or (sale.vat_amount.amount > 0) == (gross.amount > 0)
    # Half a minor unit from the exact VAT at most, rounded half-up away from zero.
    exact = gross.amount * rate / (1 + rate)
    assert abs(sale.vat_amount.amount - exact) <= Decimal(1).scaleb(-minor_units(currency)) / 2 + Decimal("1e-20")
    undone = reversal(sale)
    assert undone == position("sale", -gross, rate)  # computed afresh, it gives the same figures
    assert (undone.amount, undone.vat_amount, undone.net_amount) == (-sale.amount, -sale.vat_amount, -sale.net_amount)
    assert reversal(undone) == sale


@given(currencies, st.integers(min_value=0, max_value=10**12), st.data(), rates)
def test_positions_add_up_to_the_refund(currency: str, paid_units: int, data: st.DataObject, rate: Decimal) -> None:
    penalty_units = data.draw(st.integers(min_value=0, max_value=paid_units))
    paid, penalty = money(paid_units, currency), money(penalty_units, currency)
    product = FLIGHT.model_copy(update={"price": paid, "vat_rate": rate})
    found = cancellation_positions(
        code="CAN-AAAAAAAA", product_id="PRD-1", reservation_id="RES-1", product=product, paid=paid, penalty=penalty,
        cancelled_at=START - timedelta(days=3),
    )
    original, fee = found.original_position, found.cancellation_fee_position
    assert original.amount + fee.amount == -found.refund
    assert found.refund == paid - penalty
    assert original == reversal(position(original.title, paid, rate))
    assert original.vat_amount + original.net_amount == original.amount
    assert fee.vat_amount + fee.net_amount == fee.amount == penalty
