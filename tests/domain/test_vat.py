from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.money import MINOR_UNITS, Money, minor_units
from domain.vat import vat_included


@pytest.mark.parametrize(
    ("gross", "currency", "rate", "vat"),
    [
        # 240 × 0.081 / 1.081 = 17.9833…
        ("240.00", "EUR", "0.081", "17.98"),
        ("-240.00", "EUR", "0.081", "-17.98"),
        ("600.00", "EUR", "0.10", "54.55"),  # 54.5454…
        ("-600.00", "EUR", "0.10", "-54.55"),
        ("121.00", "EUR", "0.21", "21.00"),
        ("30.00", "EUR", "0.081", "2.25"),  # 2.2479…
        ("0.00", "EUR", "0.21", "0.00"),
        ("100.00", "EUR", "0", "0.00"),
        ("1200", "JPY", "0.10", "109"),  # 109.09…
        ("1.250", "KWD", "0.05", "0.060"),  # 0.05952…
        ("0.21", "EUR", "0.05", "0.01"),  # exactly 0.01
        ("0.105", "KWD", "0.05", "0.005"),  # exactly 0.005
    ],
)
def test_vat_included(gross: str, currency: str, rate: str, vat: str) -> None:
    assert vat_included(Money.of(gross, currency), Decimal(rate)) == Money.of(vat, currency)


@pytest.mark.parametrize(
    ("gross", "currency", "vat"),
    [
        ("0.01", "EUR", "0.01"),
        ("-0.01", "EUR", "-0.01"),
        ("0.03", "EUR", "0.02"),
        ("1", "JPY", "1"),
        ("3", "JPY", "2"),
        ("0.001", "KWD", "0.001"),
    ],
)
def test_exact_half_units_round_away_from_zero(gross: str, currency: str, vat: str) -> None:
    # At a 100 % rate the VAT is exactly half the gross, so odd minor amounts sit on a tie.
    assert vat_included(Money.of(gross, currency), Decimal(1)) == Money.of(vat, currency)


@pytest.mark.parametrize("rate", [0.081, "0.081", None])
def test_vat_rate_must_be_a_decimal(rate: object) -> None:
    with pytest.raises(TypeError):
        vat_included(Money.of("1", "EUR"), rate)  # type: ignore[arg-type]


@pytest.mark.parametrize("rate", [Decimal("-0.1"), Decimal("-1"), Decimal("NaN"), Decimal("Infinity")])
def test_vat_rate_must_be_finite_and_not_negative(rate: Decimal) -> None:
    with pytest.raises(ValueError):
        vat_included(Money.of("1", "EUR"), rate)


@given(
    st.sampled_from(sorted(MINOR_UNITS)),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.decimals(min_value=0, max_value=1, places=4),
)
def test_vat_properties(currency: str, units: int, rate: Decimal) -> None:
    gross = Money.of(Decimal(units).scaleb(-minor_units(currency)), currency)
    vat = vat_included(gross, rate)
    assert vat.currency == currency
    assert vat_included(-gross, rate) == -vat  # sign follows gross, symmetric rounding
    assert abs(vat.amount) <= abs(gross.amount)
    # Within half a minor unit of the exact value.
    exact = gross.amount * rate / (1 + rate)
    assert abs(vat.amount - exact) <= Decimal(1).scaleb(-minor_units(currency)) / 2 + Decimal("1e-20")
