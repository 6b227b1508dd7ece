"""Change alternatives and their price (domain.change_pricing, sandbox.alternatives), and the change flow's public ids."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, get_args

import pytest

from domain.change_flow import CHECKOUT_PREFIX, CONTEXT_PREFIX, ChangeInfo, ChangeStatus, code_of, public_id
from domain.change_pricing import ChangeSearch, DateIncompatible, SearchInvalid, charges_for
from domain.money import Money
from domain.products import ChangePolicy, FlightProduct, HotelProduct
from sandbox.alternatives import alternatives, split_legs

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
CET = timezone(timedelta(hours=1))
FEE = ChangePolicy(changeable=True, change_fee=Money.of("30", "EUR"))


def segment(origin: str, destination: str, departure: datetime, number: str) -> dict[str, Any]:
    return {"origin": origin, "destination": destination, "departure": departure,
            "arrival": departure + timedelta(hours=2, minutes=5), "flight_number": number}


def a_flight(*segments: dict[str, Any], price: str = "240", currency: str = "EUR") -> FlightProduct:
    return FlightProduct.model_validate({
        "kind": "flight", "carrier": "ZZ", "segments": list(segments) or [
            segment("MAD", "CDG", datetime(2026, 12, 20, 8, 0, tzinfo=CET), "ZZ101")],
        "price": {"amount": price, "currency": currency}, "vat_rate": "0.081",
        "cancellation_policy": {"mode": "automatic"},
        "change_policy": {"changeable": True, "change_fee": {"amount": "30", "currency": currency}},
    })


def a_hotel(price: str = "600") -> HotelProduct:
    return HotelProduct.model_validate({
        "kind": "hotel", "hotel": "Hotel Lutetia", "check_in": "2026-12-20", "check_out": "2026-12-23",
        "price": {"amount": price, "currency": "EUR"}, "vat_rate": "0.10", "cancellation_policy": {"mode": "manual"},
        "change_policy": {"changeable": True},
    })


@pytest.mark.parametrize(("new_fare", "difference", "due"), [
    ("300", "60.00", "90.00"),
    ("240", "0.00", "30.00"),
    ("228", "-12.00", "30.00"),  # a cheaper fare is not refunded: the fee is still due
    ("100", "-140.00", "30.00"),
])
def test_total_due_is_the_positive_fare_difference_plus_the_fee(new_fare: str, difference: str, due: str) -> None:
    charges = charges_for(Money.of("240", "EUR"), Money.of(new_fare, "EUR"), FEE)
    assert charges.fare_difference == Money.of(difference, "EUR")
    assert charges.total_due == Money.of(due, "EUR")


def test_no_fee_named_is_a_zero_fee() -> None:
    charges = charges_for(Money.of("240", "EUR"), Money.of("200", "EUR"), ChangePolicy(changeable=True))
    assert charges.change_fee == Money.zero("EUR") and charges.total_due == Money.zero("EUR")


def test_three_departures_a_day_in_the_first_departures_offset() -> None:
    found = alternatives(a_flight(), ChangeSearch(departure_date=date(2026, 12, 22)), NOW)

    assert [a.itinerary.segments[0].departure for a in found] == [
        datetime(2026, 12, 22, hour, 0, tzinfo=CET) for hour in (7, 13, 19)]
    assert [a.itinerary.segments[0].flight_number for a in found] == ["ZZ101", "ZZ1101", "ZZ2101"]
    assert all(a.itinerary.segments[0].arrival - a.itinerary.segments[0].departure == timedelta(hours=2, minutes=5)
               for a in found)
    assert [a.charges.total_due.amount for a in found] == [Decimal("30.00"), Decimal("54.00"), Decimal("90.00")]
    # The product's price after the change is the fare paid: never lowered by a cheaper fare.
    assert [a.itinerary.price.amount for a in found] == [Decimal("240.00"), Decimal("264.00"), Decimal("300.00")]


def test_round_trip_moves_each_leg_to_its_date() -> None:
    out = segment("MAD", "CDG", datetime(2026, 12, 20, 8, 0, tzinfo=CET), "ZZ101")
    back = segment("CDG", "MAD", datetime(2026, 12, 27, 18, 0, tzinfo=CET), "ZZ102")
    trip = a_flight(out, back)

    moved = alternatives(trip, ChangeSearch(departure_date=date(2026, 12, 21), return_date=date(2026, 12, 28)), NOW)
    assert [[s.departure.date() for s in a.itinerary.segments] for a in moved] == [
        [date(2026, 12, 21), date(2026, 12, 28)]] * 3
    outbound_only = alternatives(trip, ChangeSearch(departure_date=date(2026, 12, 21)), NOW)
    assert all(a.itinerary.segments[1] == trip.segments[1] for a in outbound_only)


def test_round_trip_turns_after_the_longest_ground_time() -> None:
    day = datetime(2026, 12, 20, 8, 0, tzinfo=CET)
    legs = [
        segment("MAD", "LHR", day, "ZZ1"),
        segment("LHR", "JFK", day + timedelta(hours=4), "ZZ2"),
        segment("JFK", "LHR", day + timedelta(days=6), "ZZ3"),
        segment("LHR", "MAD", day + timedelta(days=6, hours=4), "ZZ4"),
    ]
    outbound, inbound = split_legs(a_flight(*legs).segments)
    assert [s.flight_number for s in outbound] == ["ZZ1", "ZZ2"] and [s.flight_number for s in inbound] == ["ZZ3", "ZZ4"]
    assert split_legs(a_flight(*legs[:2]).segments)[1] == []


@pytest.mark.parametrize("search", [
    ChangeSearch(departure_date=date(2026, 11, 22)),  # yesterday
    ChangeSearch(departure_date=date(2026, 12, 21), return_date=date(2026, 12, 22)),  # one-way has no return
    ChangeSearch(departure_date=date(2026, 11, 23)),  # today, after its last departure (it is 21:00 CET)
], ids=["past", "one-way-return", "today-gone"])
def test_dates_that_give_no_flight_are_incompatible(search: ChangeSearch) -> None:
    late = NOW.replace(hour=20)
    with pytest.raises(DateIncompatible):
        alternatives(a_flight(), search, late)


def test_return_before_departure_is_incompatible() -> None:
    out = segment("MAD", "CDG", datetime(2026, 12, 20, 8, 0, tzinfo=CET), "ZZ101")
    back = segment("CDG", "MAD", datetime(2026, 12, 27, 18, 0, tzinfo=CET), "ZZ102")
    with pytest.raises(DateIncompatible):
        alternatives(a_flight(out, back),
                     ChangeSearch(departure_date=date(2026, 12, 22), return_date=date(2026, 12, 21)), NOW)
    with pytest.raises(DateIncompatible):  # moved past the booked return, which stays
        alternatives(a_flight(out, back), ChangeSearch(departure_date=date(2026, 12, 28)), NOW)


def test_hotel_keeps_the_nightly_rate_paid() -> None:
    [longer] = alternatives(a_hotel("100"), ChangeSearch(check_in=date(2026, 12, 21), check_out=date(2026, 12, 25)), NOW)
    assert (longer.itinerary.check_in, longer.itinerary.check_out) == (date(2026, 12, 21), date(2026, 12, 25))
    # 100 / 3 nights × 4 = 133.333… → 133.33 (rounded once, half up)
    assert longer.charges.fare_difference == Money.of("33.33", "EUR")
    assert longer.itinerary.price == Money.of("133.33", "EUR")
    with pytest.raises(DateIncompatible):
        alternatives(a_hotel(), ChangeSearch(check_in=date(2026, 12, 23), check_out=date(2026, 12, 23)), NOW)


@pytest.mark.parametrize(("product", "search", "field"), [
    (a_flight(), ChangeSearch(check_in=date(2026, 12, 21)), "check_in"),
    (a_flight(), ChangeSearch(), "departure_date"),
    (a_hotel(), ChangeSearch(departure_date=date(2026, 12, 21)), "departure_date"),
    (a_hotel(), ChangeSearch(check_in=date(2026, 12, 21)), "check_out"),
])
def test_fields_of_the_other_kind_are_named(product: FlightProduct | HotelProduct, search: ChangeSearch,
                                            field: str) -> None:
    with pytest.raises(SearchInvalid) as invalid:
        alternatives(product, search, NOW)
    assert invalid.value.field == field


def test_public_ids_name_their_flow() -> None:
    assert public_id(CONTEXT_PREFIX, "CF-7K2Q0A1B") == "CTX-7K2Q0A1B"
    assert code_of(CONTEXT_PREFIX, "CTX-7K2Q0A1B") == "CF-7K2Q0A1B"
    assert code_of(CHECKOUT_PREFIX, "CTX-7K2Q0A1B") is None  # a context id is not a checkout id
    assert code_of(CONTEXT_PREFIX, "CTX-../../x") is None


@pytest.mark.parametrize("status", get_args(ChangeStatus))
def test_a_change_waits_for_the_partner_until_it_expires_while_unbooked(status: str) -> None:
    expires = datetime(2027, 3, 1, 9, 0, tzinfo=timezone.utc)
    info = ChangeInfo.model_construct(status=status, expires_at=expires)
    unbooked = status in ("awaiting_booking", "checkout_issued", "checkout_prebooked")
    assert info.waiting_until() == (expires if unbooked else None)
