"""What a request may carry (domain.input_bounds, docs/api.md#conventions), as properties:

- any reservation a request may carry is sold, cancelled product by product (automatic penalties,
  flow refunds capped by the account, deposits given back) and recorded: no rule raises, every
  amount fits the journal's column, and the books stay within the arithmetic's ceiling;
- a reservation whose sale would not fit, one currency at a time, is refused;
- any time or date a request may carry survives the arithmetic done on it (to UTC, plus or minus
  the longest window a setting can give), and every other is refused, never an overflow.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from domain.durations import MAX_DURATION
from domain.input_bounds import FIRST_YEAR, FROM_REQUEST, LAST_YEAR, MAX_REQUEST_AMOUNT, CalendarDate, Instant
from domain.journal import Account, JournalEntry, balances, sale_entries
from domain.money import MAX_ABS_AMOUNT, Money, PositiveMoney, format_decimal, minor_units
from domain.penalty import penalty_for, refund_for
from domain.positions import cancellation_positions
from domain.products import ReservationSpec
from domain.vat import vat_included
from store.schema import payments, refunds

AMOUNT_COLUMN = payments.c.amount.type.length
CURRENCIES = ("EUR", "JPY", "KWD", "CLF")  # 2, 0, 3 and 4 decimal places
AT = datetime(2027, 1, 1, tzinfo=timezone.utc)


def amount_text(units: int, currency: str) -> str:
    return format_decimal(Decimal(units).scaleb(-minor_units(currency)))


def largest_units(currency: str) -> int:
    """The most minor units one amount (and one reservation, per currency) may carry."""
    return int(MAX_REQUEST_AMOUNT.scaleb(minor_units(currency))) - 1


@st.composite
def units_up_to(draw: st.DrawFn, most: int) -> int:
    # The bound itself and its neighbours are where the overflow was: draw them often.
    return draw(st.one_of(st.just(most), st.integers(max(1, most - 100), most), st.integers(1, most)))


@st.composite
def reservations(draw: st.DrawFn) -> dict[str, Any]:
    """A reservation as a partner may send it: products in one or two currencies, each amount within
    the bound; half the time each currency's prices and deposits fit together, else they may not."""
    count = draw(st.integers(1, 6))
    currencies = draw(st.lists(st.sampled_from(CURRENCIES), min_size=1, max_size=2, unique=True))
    split = draw(st.booleans())
    products = []
    for n in range(count):
        currency = currencies[n % len(currencies)]
        share = largest_units(currency) // (-(-count // len(currencies)) if split else 1)
        price = draw(units_up_to(share))
        deposit = draw(st.one_of(st.none(), st.integers(1, share - price))) if price < share else None
        departure = AT + timedelta(days=draw(st.integers(0, 400)))
        product: dict[str, Any] = {
            "kind": "flight", "carrier": "ZZ",
            "segments": [{"origin": "MAD", "destination": "CDG", "departure": departure.isoformat(),
                          "arrival": (departure + timedelta(hours=2)).isoformat(), "flight_number": "ZZ101"}],
            "price": {"amount": amount_text(price, currency), "currency": currency},
            "vat_rate": draw(st.sampled_from(["0", "0.081", "0.10", "0.2", "1"])),
            "cancellation_policy": {"mode": "automatic", "tiers": [
                {"hours_before_start": draw(st.integers(0, 10_000)),
                 "penalty_percent": draw(st.sampled_from(["0", "12.5", "33.333", "50", "99.999", "100"]))}]},
            "change_policy": {"changeable": True, "change_fee": {"amount": amount_text(draw(units_up_to(share)), currency),
                                                                 "currency": currency}},
        }
        if deposit is not None:
            product["deposit"] = {"amount": amount_text(deposit, currency), "currency": currency}
        products.append(product)
    return {"travellers": [{"traveller_id": "T1", "name": "Ada"}], "products": products}


def fits(money: Money) -> bool:
    return len(format_decimal(money.amount)) <= AMOUNT_COLUMN and abs(money.amount) < MAX_ABS_AMOUNT


@settings(max_examples=300, deadline=None)
@given(reservations(), st.lists(st.integers(-1000, 10_000), min_size=6, max_size=6))
def test_any_reservation_a_request_may_carry_is_cancelled_and_recorded(body: dict[str, Any], hours: list[int]) -> None:
    try:
        spec = ReservationSpec.model_validate(body, context=FROM_REQUEST)
    except ValidationError:
        event("refused")  # a sale over the bound: test_a_sale_that_would_not_fit_is_refused
        return
    sold = [(f"PRD-{n}", product) for n, product in enumerate(spec.products)]
    entries = sale_entries("RES-1", "ptn_1", sold)
    for n, (product_id, product) in enumerate(sold):
        now = product.start - timedelta(hours=hours[n])
        paid = product.price
        penalty = penalty_for(product.cancellation_policy.tiers, paid, product.start - now)
        refund = refund_for(paid, penalty)
        positions = cancellation_positions(code=f"CAN-{n}", product_id=product_id, reservation_id="RES-1",
                                           product=product, paid=paid, penalty=penalty, cancelled_at=now)
        for line in (positions.original_position, positions.cancellation_fee_position):
            assert all(fits(m) for m in (line.amount, line.vat_amount, line.net_amount))
        assert fits(vat_included(product.change_policy.change_fee or paid, product.vat_rate))
        account = Account.of(entries)
        posted, _note = account.flow_refund(refund)
        if posted is not None:
            entries.append(JournalEntry(effect_key=f"refund:{n}", reservation_id="RES-1", partner_id="ptn_1",
                                        product_id=product_id, category="refund", amount=-posted))
        if product.deposit is not None:
            Account.of(entries).check_refund(product.deposit)
            entries.append(JournalEntry(effect_key=f"deposit:{n}", reservation_id="RES-1", partner_id="ptn_1",
                                        product_id=product_id, category="refund", amount=-product.deposit))
    assert all(fits(entry.amount) for entry in entries)
    for currency, total in balances(entries).items():
        assert fits(total) and total.amount >= 0, currency
    assert refunds.c.amount.type.length == AMOUNT_COLUMN


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(CURRENCIES), st.integers(1, 5), st.data())
def test_a_sale_that_would_not_fit_is_refused(currency: str, count: int, data: st.DataObject) -> None:
    most = largest_units(currency)
    units = [data.draw(st.integers(1, most)) for _ in range(count)]
    units[0] = max(units[0], most + 1 - sum(units[1:]))  # together, at least the bound
    body = {"travellers": [{"traveller_id": "T1", "name": "Ada"}], "products": [
        {"kind": "other", "name": "Transfer", "starts_at": "2027-03-20T08:00:00+01:00", "ends_at": "2027-03-20T09:00:00+01:00",
         "price": {"amount": amount_text(u, currency), "currency": currency}, "vat_rate": "0.1",
         "cancellation_policy": {"mode": "none"}} for u in units]}
    with pytest.raises(ValidationError) as refused:
        ReservationSpec.model_validate(body, context=FROM_REQUEST)
    assert {error["loc"][0] for error in refused.value.errors()} == {"products"}
    if all(u <= most for u in units):
        # Read back (not from a request), the same sale loads: the bounds are the request's only.
        assert ReservationSpec.model_validate(body).products


INSTANT: TypeAdapter[datetime] = TypeAdapter(Instant)
CALENDAR_DATE: TypeAdapter[date] = TypeAdapter(CalendarDate)
OFFSETS = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda minutes: timezone(timedelta(minutes=minutes)))


@settings(max_examples=500, deadline=None)
@given(st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=OFFSETS))
def test_any_time_a_request_may_carry_survives_the_windows_and_the_rest_is_refused(at: datetime) -> None:
    text = at.isoformat()
    try:
        accepted = INSTANT.validate_python(text, context=FROM_REQUEST)
    except ValidationError:
        assert not FIRST_YEAR <= at.year <= LAST_YEAR
        return
    assert FIRST_YEAR <= accepted.year <= LAST_YEAR and accepted == at
    in_utc = accepted.astimezone(timezone.utc)
    assert in_utc + MAX_DURATION > in_utc - MAX_DURATION


@settings(max_examples=300, deadline=None)
@given(st.dates())
def test_any_date_a_request_may_carry_survives_the_windows_and_the_rest_is_refused(day: date) -> None:
    text = f"{day.year:04d}-{day.month:02d}-{day.day:02d}"
    try:
        accepted = CALENDAR_DATE.validate_python(text, context=FROM_REQUEST)
    except ValidationError:
        assert not FIRST_YEAR <= day.year <= LAST_YEAR
        return
    start = datetime.combine(accepted, time(0), timezone.utc)
    assert start + MAX_DURATION > start - MAX_DURATION


@pytest.mark.parametrize("value", [1_800_000_000, "1800000000", "2027-03-20T08:00:00", "2027-03-20T08:00+01:00",
                                   "2027-03-20", "2027-03-20T08:00:00+01:00:00", True, None, 1.5])
def test_a_time_is_an_rfc_3339_string_with_an_offset(value: object) -> None:
    with pytest.raises(ValidationError):
        INSTANT.validate_python(value)


@pytest.mark.parametrize("value", ["2026-12-20T10:00:00+01:00", "2026-12-20T00:00:00", "20261220", 1_800_000_000,
                                   datetime(2026, 12, 20)])
def test_a_date_is_yyyy_mm_dd(value: object) -> None:
    with pytest.raises(ValidationError):
        CALENDAR_DATE.validate_python(value)


def test_values_read_back_are_not_held_to_the_request_bounds() -> None:
    # A workflow's payload or a stored record loads whatever year, amount or sign it carries (a
    # hotel's price for fewer nights may round to zero).
    assert INSTANT.validate_python("2300-01-01T00:00:00+00:00").year == 2300
    assert Money.model_validate({"amount": "1000000000000", "currency": "EUR"}).amount == MAX_REQUEST_AMOUNT
    with pytest.raises(ValidationError):
        Money.model_validate({"amount": "1000000000000", "currency": "EUR"}, context=FROM_REQUEST)
    price = TypeAdapter(PositiveMoney)
    assert price.validate_python({"amount": "0.00", "currency": "EUR"}).is_zero()
    with pytest.raises(ValidationError):
        price.validate_python({"amount": "0.00", "currency": "EUR"}, context=FROM_REQUEST)
