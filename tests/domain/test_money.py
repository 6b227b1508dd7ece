from __future__ import annotations

import json
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from temporalio.contrib.pydantic import pydantic_data_converter

from domain.money import MINOR_UNITS, Money, minor_units, round_half_up

CURRENCIES = sorted(MINOR_UNITS)


@st.composite
def money(draw: st.DrawFn, currency: str | None = None, min_units: int = -(10**12), max_units: int = 10**12) -> Money:
    code = currency or draw(st.sampled_from(CURRENCIES))
    units = draw(st.integers(min_value=min_units, max_value=max_units))
    return Money.of(Decimal(units).scaleb(-minor_units(code)), code)


class Priced(BaseModel):
    price: Money


# --- currency table -------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "digits"),
    [
        ("EUR", 2), ("USD", 2), ("GBP", 2), ("CHF", 2), ("HUF", 2), ("JPY", 0), ("KRW", 0), ("ISK", 0),
        ("VND", 0), ("XOF", 0), ("XAF", 0), ("CLP", 0), ("KWD", 3), ("BHD", 3), ("JOD", 3), ("OMR", 3),
        ("TND", 3), ("LYD", 3), ("IQD", 3), ("CLF", 4), ("UYW", 4),
    ],
)  # fmt: skip
def test_minor_units_of_known_currencies(code: str, digits: int) -> None:
    assert minor_units(code) == digits


def test_currency_table_is_the_full_active_list() -> None:
    assert len(MINOR_UNITS) >= 150
    assert all(len(code) == 3 and code.isascii() and code.isupper() for code in MINOR_UNITS)
    assert set(MINOR_UNITS.values()) == {0, 2, 3, 4}


@pytest.mark.parametrize("code", ["XXX", "XAU", "XDR", "XTS", "EURO", "eur", "", "EU"])
def test_minor_units_refuses_unknown_currency(code: str) -> None:
    with pytest.raises(ValueError, match="unknown currency"):
        minor_units(code)


# --- parsing (docs/api.md#conventions) ----------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "stored", "wire"),
    [
        ("240", "EUR", Decimal("240.00"), "240.00"),
        ("240.5", "EUR", Decimal("240.50"), "240.50"),
        ("240.00", "EUR", Decimal("240.00"), "240.00"),
        ("0", "EUR", Decimal("0.00"), "0.00"),
        ("-12.3", "EUR", Decimal("-12.30"), "-12.30"),
        ("1200", "JPY", Decimal("1200"), "1200"),
        ("1.250", "KWD", Decimal("1.250"), "1.250"),
        ("1.25", "KWD", Decimal("1.250"), "1.250"),
        ("7", "KWD", Decimal("7.000"), "7.000"),
        ("0.0001", "CLF", Decimal("0.0001"), "0.0001"),
        (Decimal("240"), "EUR", Decimal("240.00"), "240.00"),
        (Decimal("1E+3"), "JPY", Decimal("1000"), "1000"),
    ],
)
def test_accepted_amounts_are_stored_at_minor_units(
    amount: str | Decimal, currency: str, stored: Decimal, wire: str
) -> None:
    value = Money.of(amount, currency)
    assert value.amount == stored
    assert value.amount.as_tuple().exponent == -minor_units(currency)
    assert json.loads(value.model_dump_json()) == {"amount": wire, "currency": currency}
    assert value.model_dump(mode="json") == {"amount": wire, "currency": currency}


def test_python_dump_keeps_decimal() -> None:
    dumped = Money.of("240", "EUR").model_dump()
    assert dumped == {"amount": Decimal("240.00"), "currency": "EUR"}
    assert isinstance(dumped["amount"], Decimal)


def test_json_key_order_matches_the_contract() -> None:
    assert Money.of("240", "EUR").model_dump_json() == '{"amount":"240.00","currency":"EUR"}'


@pytest.mark.parametrize(
    ("amount", "currency"),
    [
        ("1.2345", "EUR"),
        ("1.2500", "EUR"),
        ("1.001", "EUR"),
        ("1.5", "JPY"),
        ("1.0", "JPY"),
        ("1.2345", "KWD"),
        ("0.00001", "CLF"),
    ],
)
def test_more_digits_than_the_currency_has_are_refused(amount: str, currency: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Money.of(amount, currency)
    (error,) = caught.value.errors()
    assert error["loc"] == ("amount",)
    assert f"{currency} has {minor_units(currency)} decimal places" in error["msg"]


def test_too_many_digits_names_the_nested_amount_field() -> None:
    with pytest.raises(ValidationError) as caught:
        Priced.model_validate_json('{"price": {"amount": "1.2345", "currency": "EUR"}}')
    assert [e["loc"] for e in caught.value.errors()] == [("price", "amount")]


@pytest.mark.parametrize("amount", [240, 1.5, 0, True, 240.0, None, [], {"v": 1}])
def test_numbers_and_other_types_are_refused(amount: object) -> None:
    with pytest.raises(ValueError, match="decimal string"):
        Money(amount=amount, currency="EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "body",
    ['{"amount": 240, "currency": "EUR"}', '{"amount": 1.5, "currency": "EUR"}', '{"amount": 1e2, "currency": "EUR"}'],
)
def test_json_numbers_are_refused(body: str) -> None:
    with pytest.raises(ValidationError) as caught:
        Money.model_validate_json(body)
    (error,) = caught.value.errors()
    assert error["loc"] == ("amount",)
    assert "not a number" in error["msg"]


@pytest.mark.parametrize(
    "amount",
    ["NaN", "Infinity", "-Infinity", "inf", "1e2", "+1", " 1", "1 ", "1.", ".5", "", "1,00", "1_000", "١٢", "1.2.3", "--1"],
)
def test_malformed_strings_are_refused(amount: str) -> None:
    with pytest.raises(ValueError):
        Money.of(amount, "EUR")


@pytest.mark.parametrize("amount", [Decimal("NaN"), Decimal("sNaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_non_finite_decimals_are_refused(amount: Decimal) -> None:
    with pytest.raises(ValueError, match="finite"):
        Money.of(amount, "EUR")


@pytest.mark.parametrize("currency", ["XXX", "EURO", "eur", "Eur", "", "E1R", 978, None])
def test_unknown_currencies_are_refused(currency: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Money(amount="1", currency=currency)  # type: ignore[arg-type]
    assert [e["loc"] for e in caught.value.errors()] == [("currency",)]


def test_absurd_amounts_are_refused() -> None:
    with pytest.raises(ValueError):
        Money.of("1" + "0" * 18, "EUR")


def test_extra_fields_are_refused() -> None:
    with pytest.raises(ValidationError):
        Money.model_validate({"amount": "1", "currency": "EUR", "note": "x"})


def test_money_is_frozen() -> None:
    value = Money.of("1", "EUR")
    with pytest.raises(ValidationError):
        value.amount = Decimal("2")  # type: ignore[misc]


def test_negative_zero_is_normalised() -> None:
    assert Money.of("-0", "EUR").model_dump_json() == '{"amount":"0.00","currency":"EUR"}'
    assert (-Money.zero("EUR")).model_dump(mode="json")["amount"] == "0.00"


def test_json_schema_shows_amount_as_a_patterned_string() -> None:
    schema = Money.model_json_schema()
    amount = schema["properties"]["amount"]
    assert amount["type"] == "string"
    assert "pattern" in amount
    assert schema["properties"]["currency"]["type"] == "string"
    assert set(schema["required"]) == {"amount", "currency"}
    assert Money.model_json_schema(mode="serialization")["properties"]["amount"]["type"] == "string"


# --- round trips ------------------------------------------------------------------


@given(money())
def test_json_round_trip(value: Money) -> None:
    assert Money.model_validate_json(value.model_dump_json()) == value
    assert Money.model_validate(value.model_dump(mode="json")) == value
    assert Money.model_validate(value.model_dump()) == value


@given(money())
def test_temporal_pydantic_converter_round_trip(value: Money) -> None:
    converter = pydantic_data_converter.payload_converter
    payloads = converter.to_payloads([value, Priced(price=value)])
    assert json.loads(payloads[0].data) == value.model_dump(mode="json")
    assert converter.from_payloads(payloads, [Money, Priced]) == [value, Priced(price=value)]


@given(money())
def test_wire_amount_always_has_exactly_the_minor_digits(value: Money) -> None:
    wire = value.model_dump(mode="json")["amount"]
    digits = minor_units(value.currency)
    fraction = wire.split(".")[1] if "." in wire else ""
    assert len(fraction) == digits
    assert "E" not in wire and "e" not in wire


# --- rounding ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        (Decimal("0.005"), "EUR", Decimal("0.01")),
        (Decimal("0.0049999"), "EUR", Decimal("0.00")),
        (Decimal("-0.005"), "EUR", Decimal("-0.01")),
        (Decimal("2.5"), "JPY", Decimal("3")),
        (Decimal("-2.5"), "JPY", Decimal("-3")),
        (Decimal("1.0005"), "KWD", Decimal("1.001")),
        (Decimal("1.00049"), "KWD", Decimal("1.000")),
        (Decimal("240"), "EUR", Decimal("240.00")),
        (Fraction(1, 3), "EUR", Decimal("0.33")),
        (Fraction(2, 3), "EUR", Decimal("0.67")),
        (Fraction(-2, 3), "EUR", Decimal("-0.67")),
    ],
)
def test_round_half_up(amount: Decimal | Fraction, currency: str, expected: Decimal) -> None:
    result = round_half_up(amount, currency)
    assert result == expected
    assert result.as_tuple().exponent == -minor_units(currency)


def test_round_half_up_refuses_floats_and_unknown_currencies() -> None:
    with pytest.raises(TypeError):
        round_half_up(0.1, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown currency"):
        round_half_up(Decimal("1"), "XXX")


@given(
    st.decimals(min_value=-(10**12), max_value=10**12, allow_nan=False, allow_infinity=False, places=6),
    st.sampled_from(CURRENCIES),
)
def test_round_half_up_is_nearest_and_symmetric(amount: Decimal, currency: str) -> None:
    rounded = round_half_up(amount, currency)
    step = Decimal(1).scaleb(-minor_units(currency))
    assert abs(rounded - amount) <= step / 2
    assert round_half_up(-amount, currency) == -rounded


# --- arithmetic -------------------------------------------------------------------


def test_add_sub_neg() -> None:
    a, b = Money.of("240", "EUR"), Money.of("30.5", "EUR")
    assert a + b == Money.of("270.50", "EUR")
    assert a - b == Money.of("209.50", "EUR")
    assert b - a == Money.of("-209.50", "EUR")
    assert -a == Money.of("-240", "EUR")
    assert (b - a).is_negative() and not a.is_negative() and not Money.zero("EUR").is_negative()
    assert (a - a).is_zero() and not a.is_zero()


def test_different_currencies_do_not_mix() -> None:
    with pytest.raises(ValueError, match="currency mismatch"):
        Money.of("1", "EUR") + Money.of("1", "USD")
    with pytest.raises(ValueError, match="currency mismatch"):
        Money.of("1", "EUR") - Money.of("1", "USD")
    with pytest.raises(TypeError):
        Money.of("1", "EUR") + Decimal("1")  # type: ignore[operator]


def test_zero_and_of() -> None:
    assert Money.zero("JPY").model_dump(mode="json") == {"amount": "0", "currency": "JPY"}
    assert Money.zero("KWD").model_dump(mode="json") == {"amount": "0.000", "currency": "KWD"}
    assert Money.of(Decimal("1.5"), "EUR") == Money(amount="1.50", currency="EUR")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("amount", "currency", "minor"),
    [("240", "EUR", 24000), ("1200", "JPY", 1200), ("1.25", "KWD", 1250), ("-0.01", "EUR", -1), ("0", "CLF", 0)],
)
def test_minor(amount: str, currency: str, minor: int) -> None:
    assert Money.of(amount, currency).minor == minor


@pytest.mark.parametrize(
    ("amount", "currency", "factor", "expected"),
    [
        ("0.01", "EUR", Decimal("0.5"), "0.01"),
        ("0.03", "EUR", Decimal("0.5"), "0.02"),
        ("100", "EUR", Decimal("0.3333"), "33.33"),
        ("240", "EUR", Decimal("1.5"), "360.00"),
        ("-0.01", "EUR", Decimal("0.5"), "-0.01"),
        ("5", "JPY", Decimal("0.5"), "3"),
        ("1", "KWD", Decimal("0.0005"), "0.001"),
        ("10", "EUR", 3, "30.00"),
    ],
)
def test_multiply_rounds_half_up(amount: str, currency: str, factor: Decimal | int, expected: str) -> None:
    assert Money.of(amount, currency).multiply(factor) == Money.of(expected, currency)


def test_multiply_refuses_floats() -> None:
    with pytest.raises(TypeError):
        Money.of("1", "EUR").multiply(0.5)  # type: ignore[arg-type]


def test_str() -> None:
    assert str(Money.of("240", "EUR")) == "240.00 EUR"
    assert str(Money.of("1200", "JPY")) == "1200 JPY"


@given(st.sampled_from(CURRENCIES).flatmap(lambda c: st.tuples(money(c), money(c))))
def test_addition_properties(pair: tuple[Money, Money]) -> None:
    a, b = pair
    assert a + b == b + a
    assert (a + b) - b == a
    assert a + (-a) == Money.zero(a.currency)
    assert (a + b).minor == a.minor + b.minor
    assert (-a).minor == -a.minor
    assert a.is_negative() == (a.minor < 0)
    assert a.is_zero() == (a.minor == 0)
