"""Money as the contract defines it (docs/api.md#conventions): a decimal string plus an ISO 4217 code.

Amounts never pass through a float: a float cannot hold ``0.10`` exactly, and an
after-sales refund that is off by one cent is a support ticket. Every value that
crosses JSON (API bodies, Temporal payloads, database rows) is therefore a decimal
string, and every rounding is an explicit half-up to the currency's minor unit.
"""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    PlainValidator,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from domain.input_bounds import MAX_REQUEST_AMOUNT, from_request

# ISO 4217 list one (active codes with a defined minor unit). Funds, precious metals,
# SDR and test codes (XAU, XDR, XTS, XXX, ...) have no minor unit and are not money
# a traveller can be charged, so they are left out on purpose. Codes in a changeover
# (ANG/XCG, ZWL/ZWG, SLL/SLE, BGN/EUR) keep both sides so stored bookings still load.
MINOR_UNITS: dict[str, int] = {
    "AED": 2, "AFN": 2, "ALL": 2, "AMD": 2, "ANG": 2, "AOA": 2, "ARS": 2, "AUD": 2,
    "AWG": 2, "AZN": 2, "BAM": 2, "BBD": 2, "BDT": 2, "BGN": 2, "BHD": 3, "BIF": 0,
    "BMD": 2, "BND": 2, "BOB": 2, "BOV": 2, "BRL": 2, "BSD": 2, "BTN": 2, "BWP": 2,
    "BYN": 2, "BZD": 2, "CAD": 2, "CDF": 2, "CHE": 2, "CHF": 2, "CHW": 2, "CLF": 4,
    "CLP": 0, "CNY": 2, "COP": 2, "COU": 2, "CRC": 2, "CUC": 2, "CUP": 2, "CVE": 2,
    "CZK": 2, "DJF": 0, "DKK": 2, "DOP": 2, "DZD": 2, "EGP": 2, "ERN": 2, "ETB": 2,
    "EUR": 2, "FJD": 2, "FKP": 2, "GBP": 2, "GEL": 2, "GHS": 2, "GIP": 2, "GMD": 2,
    "GNF": 0, "GTQ": 2, "GYD": 2, "HKD": 2, "HNL": 2, "HTG": 2, "HUF": 2, "IDR": 2,
    "ILS": 2, "INR": 2, "IQD": 3, "IRR": 2, "ISK": 0, "JMD": 2, "JOD": 3, "JPY": 0,
    "KES": 2, "KGS": 2, "KHR": 2, "KMF": 0, "KPW": 2, "KRW": 0, "KWD": 3, "KYD": 2,
    "KZT": 2, "LAK": 2, "LBP": 2, "LKR": 2, "LRD": 2, "LSL": 2, "LYD": 3, "MAD": 2,
    "MDL": 2, "MGA": 2, "MKD": 2, "MMK": 2, "MNT": 2, "MOP": 2, "MRU": 2, "MUR": 2,
    "MVR": 2, "MWK": 2, "MXN": 2, "MXV": 2, "MYR": 2, "MZN": 2, "NAD": 2, "NGN": 2,
    "NIO": 2, "NOK": 2, "NPR": 2, "NZD": 2, "OMR": 3, "PAB": 2, "PEN": 2, "PGK": 2,
    "PHP": 2, "PKR": 2, "PLN": 2, "PYG": 0, "QAR": 2, "RON": 2, "RSD": 2, "RUB": 2,
    "RWF": 0, "SAR": 2, "SBD": 2, "SCR": 2, "SDG": 2, "SEK": 2, "SGD": 2, "SHP": 2,
    "SLE": 2, "SLL": 2, "SOS": 2, "SRD": 2, "SSP": 2, "STN": 2, "SVC": 2, "SYP": 2,
    "SZL": 2, "THB": 2, "TJS": 2, "TMT": 2, "TND": 3, "TOP": 2, "TRY": 2, "TTD": 2,
    "TWD": 2, "TZS": 2, "UAH": 2, "UGX": 0, "USD": 2, "USN": 2, "UYI": 0, "UYU": 2,
    "UYW": 4, "UZS": 2, "VED": 2, "VES": 2, "VND": 0, "VUV": 0, "WST": 2, "XAF": 0,
    "XCD": 2, "XCG": 2, "XOF": 0, "XPF": 0, "YER": 2, "ZAR": 2, "ZMW": 2, "ZWG": 2,
    "ZWL": 2,
}  # fmt: skip

# Amounts stay below 10**18 so that sums and products of two amounts fit in the
# default 28-digit decimal context and never get silently rounded. What a request may
# carry is far less (domain.input_bounds.MAX_REQUEST_AMOUNT), so that nothing computed
# from it comes near this ceiling.
MAX_ABS_AMOUNT = Decimal(10) ** 18

_DECIMAL_STRING_BODY = r"-?[0-9]+(\.[0-9]+)?"
_DECIMAL_STRING = re.compile(_DECIMAL_STRING_BODY)  # used with fullmatch: "$" would allow a trailing newline
DECIMAL_STRING_PATTERN = f"^{_DECIMAL_STRING_BODY}$"


def minor_units(currency: str) -> int:
    """Digits after the decimal point for ``currency``; ``ValueError`` when not ISO 4217."""
    try:
        return MINOR_UNITS[currency]
    except (KeyError, TypeError):
        raise ValueError(f"unknown currency {currency!r}: expected an ISO 4217 code like EUR") from None


def round_half_up(amount: Decimal | Fraction | int, currency: str) -> Decimal:
    """Round to the currency's minor unit, ties away from zero (docs/flows.md#penalty-rule, docs/settlement.md).

    Accepts an exact ``Fraction`` so callers that divide (VAT, percentages) can
    round the true quotient once, instead of a 28-digit approximation of it.
    """
    if isinstance(amount, float):
        raise TypeError("round_half_up takes a Decimal or Fraction, never a float")
    digits = minor_units(currency)
    scaled = Fraction(amount) * 10**digits
    units = (abs(scaled.numerator) * 2 + scaled.denominator) // (2 * scaled.denominator)
    if scaled < 0:
        units = -units
    # The Decimal constructor is exact (no context rounding), unlike scaleb/quantize.
    return Decimal(f"{units}e-{digits}") if digits else Decimal(units)


def parse_decimal(value: object) -> Decimal:
    """Accept a decimal string or a ``Decimal``; refuse numbers outright.

    JSON numbers are refused even when integral: a client that sends ``240`` today
    sends ``0.1`` tomorrow, and by then its float has already lost the cent.
    """
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, str):
        if not _DECIMAL_STRING.fullmatch(value):
            raise ValueError(f"expected a decimal string like '240.00', got {value!r}")
        result = Decimal(value)
    elif isinstance(value, (int, float)):  # bool is an int too
        raise ValueError('must be a decimal string like "240.00", not a number')
    else:
        raise ValueError(f"expected a decimal string, got {type(value).__name__}")
    if not result.is_finite():
        raise ValueError("must be a finite decimal, not NaN or Infinity")
    if abs(result) >= MAX_ABS_AMOUNT:
        raise ValueError("must be smaller than 10^18 in absolute value")
    return result


def _decimal_field(value: object, info: ValidationInfo) -> Decimal:
    result = parse_decimal(value)
    if from_request(info) and abs(result) >= MAX_REQUEST_AMOUNT:
        raise ValueError("must be smaller than 10^12 in absolute value (at most 12 digits before the point)")
    return result


def format_decimal(value: Decimal) -> str:
    """Plain notation (never ``1E+3``), keeping the digits the value carries."""
    return format(value, "f")


def _validate_currency(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"currency must be a string, got {type(value).__name__}")
    minor_units(value)
    return value


DecimalString = Annotated[
    Decimal,
    PlainValidator(_decimal_field),
    PlainSerializer(format_decimal, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "pattern": DECIMAL_STRING_PATTERN, "examples": ["240.00"]}),
]
"""A Decimal that travels as a JSON string; reusable for rates and percentages."""

CurrencyCode = Annotated[
    str,
    PlainValidator(_validate_currency),
    WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code", "examples": ["EUR"]}),
]


class Money(BaseModel):
    """An amount in one currency, always held at exactly the currency's minor units."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount: DecimalString
    currency: CurrencyCode

    @model_validator(mode="after")
    def _to_minor_units(self) -> Self:
        digits = minor_units(self.currency)
        exponent = self.amount.as_tuple().exponent
        assert isinstance(exponent, int)  # finiteness is checked by parse_decimal
        if -exponent > digits:
            raise self.refused(
                f"too many decimal places: {self.currency} has {digits} decimal places, got {format_decimal(self.amount)}"
            )
        # Fewer digits are allowed in requests ("240" EUR) but answers always carry
        # exactly the minor units, so normalise once here. Also drops a "-0.00" sign.
        normalised = round_half_up(self.amount, self.currency)
        object.__setattr__(self, "amount", normalised)
        return self

    def refused(self, message: str) -> ValidationError:
        """A validation error located at ``amount``, so that a 422 names the exact field
        (``products[0].price.amount``), not the whole Money object."""
        error = PydanticCustomError("money_amount", message)
        return ValidationError.from_exception_data(
            type(self).__name__, [InitErrorDetails(type=error, loc=("amount",), input=format_decimal(self.amount))]
        )

    @classmethod
    def of(cls, amount: str | Decimal, currency: str) -> Money:
        return cls(amount=amount, currency=currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls.of(Decimal(0), currency)

    @classmethod
    def of_minor(cls, units: int, currency: str) -> Money:
        """``units`` minor units (24000 EUR is 240.00 EUR): how a store that counts in integers reads an amount back."""
        return cls.of(Decimal(units).scaleb(-minor_units(currency)), currency)

    @property
    def minor(self) -> int:
        """Amount in minor units (24000 for 240.00 EUR), e.g. for payment providers."""
        return int(self.amount.scaleb(minor_units(self.currency)))

    def is_negative(self) -> bool:
        return self.amount < 0

    def is_zero(self) -> bool:
        return self.amount == 0

    def multiply(self, factor: Decimal | int) -> Money:
        """Scale by an exact factor and round half-up once to the minor unit."""
        if isinstance(factor, float):
            raise TypeError("multiply takes a Decimal factor, never a float")
        return Money.of(round_half_up(Fraction(self.amount) * Fraction(factor), self.currency), self.currency)

    def _same_currency(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise ValueError(f"currency mismatch: {self.currency} and {other.currency}")
        return other

    def __add__(self, other: Money) -> Money:
        return Money.of(self.amount + self._same_currency(other).amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money.of(self.amount - self._same_currency(other).amount, self.currency)

    def __neg__(self) -> Money:
        return Money.of(-self.amount, self.currency)

    def __str__(self) -> str:
        return f"{format_decimal(self.amount)} {self.currency}"


# The signs a request may give (docs/api.md#conventions). Like the other bounds of a request they
# hold for what a client sends, not for what is computed from it: a hotel's price for fewer nights
# may round to zero, and it must still load.


def _positive(money: Money, info: ValidationInfo) -> Money:
    if from_request(info) and money.amount <= 0:
        raise money.refused("must be greater than zero")
    return money


def _not_negative(money: Money, info: ValidationInfo) -> Money:
    if from_request(info) and money.amount < 0:
        raise money.refused("must not be negative")
    return money


PositiveMoney = Annotated[Money, AfterValidator(_positive)]
"""What is charged for something sold (a price, a deposit): more than nothing, or leave it out."""

NonNegativeMoney = Annotated[Money, AfterValidator(_not_negative)]
"""A fee that may be waived: zero or more."""
