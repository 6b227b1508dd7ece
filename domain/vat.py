"""VAT contained in a gross amount (docs/settlement.md#cancellation-positions)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from domain.money import Money, round_half_up


def vat_included(gross: Money, rate: Decimal) -> Money:
    """``gross × rate / (1 + rate)`` rounded half-up once, on the exact quotient.

    The division rarely terminates (0.081 / 1.081), so it is done on fractions:
    rounding a 28-digit approximation first could flip a result that sits on a half
    cent. Half-up is symmetric, so a reversed (negative) position gets exactly the
    negated VAT of the original.
    """
    if isinstance(rate, bool) or not isinstance(rate, (Decimal, int)):
        raise TypeError(f"rate must be a Decimal, never a float, got {type(rate).__name__}")
    if isinstance(rate, Decimal) and not rate.is_finite():
        raise ValueError(f"rate must be finite, got {rate}")
    if rate < 0:
        raise ValueError(f"rate must not be negative, got {rate}")
    exact_rate = Fraction(rate)
    vat = round_half_up(Fraction(gross.amount) * exact_rate / (1 + exact_rate), gross.currency)
    return Money.of(vat, gross.currency)
