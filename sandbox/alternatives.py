"""How the sandbox airline and hotel answer a change search, deterministically for given dates.

- Flights: the same route, segment structure, flight and connection times, moved to the
  requested ``departure_date`` at three departures a day, 07:00, 13:00 and 19:00 in the first
  departure's UTC offset, priced at 95 %, 110 % and 125 % of the fare paid. A round trip (last
  destination = first origin) has a return leg, starting after the longest ground time between
  segments; ``return_date`` moves it to the same slot as the outbound (07:00 with 07:00, ...),
  and without ``return_date`` it stays as booked. ``return_date`` on a one-way trip is refused.
- Hotels: the same hotel for the requested nights, at the nightly rate paid.
- Other services: no alternatives (an agent changes them by checkout).

Refused as ``date_incompatible``: a date before today (in the first departure's offset; UTC for
hotels), a return before the departure, check-out not after check-in, or dates leaving no
departure still in the future or no return after the outbound lands.

Each alternative is priced by the rule every supplier shares, ``domain.change_pricing``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

from domain.change_pricing import ChangeAlternative, ChangeSearch, DateIncompatible, SearchInvalid, priced_alternative
from domain.money import Money, round_half_up
from domain.products import FlightProduct, HotelProduct, ProductSpec, Segment

# (local departure time, fare as a share of the fare paid): one row per daily departure.
FLIGHT_SLOTS: tuple[tuple[time, Decimal], ...] = (
    (time(7, 0), Decimal("0.95")),
    (time(13, 0), Decimal("1.10")),
    (time(19, 0), Decimal("1.25")),
)


def alternatives(product: ProductSpec, search: ChangeSearch, now: datetime) -> list[ChangeAlternative]:
    """The alternatives for ``product`` on the searched dates (rules in the module docstring)."""
    if isinstance(product, FlightProduct):
        return _flight_alternatives(product, search, now)
    if isinstance(product, HotelProduct):
        return [_hotel_alternative(product, search, now)]
    return []


def _flight_alternatives(product: FlightProduct, search: ChangeSearch, now: datetime) -> list[ChangeAlternative]:
    for name in ("check_in", "check_out"):
        if getattr(search, name) is not None:
            raise SearchInvalid(name, "is for hotels: a flight takes departure_date and return_date")
    if search.departure_date is None:
        raise SearchInvalid("departure_date", "Field required")
    outbound, inbound = split_legs(product.segments)
    if search.return_date is not None and not inbound:
        raise DateIncompatible("return_date given for a one-way flight")
    first = product.segments[0].departure
    today = now.astimezone(first.tzinfo).date()
    if search.departure_date < today or (search.return_date is not None and search.return_date < today):
        raise DateIncompatible("the dates are in the past")
    if search.return_date is not None and search.return_date < search.departure_date:
        raise DateIncompatible("return_date is before departure_date")

    found = []
    for index, (slot, share) in enumerate(FLIGHT_SLOTS):
        moved = _move_leg(outbound, search.departure_date, slot, index)
        back = _move_leg(inbound, search.return_date, slot, index) if search.return_date else list(inbound)
        if moved[0].departure <= now or (back and back[0].departure <= moved[-1].arrival):
            continue
        fare = product.price.multiply(share)
        itinerary = product.model_copy(update={"segments": [*moved, *back], "price": fare})
        found.append(priced_alternative(product, itinerary))
    if not found:
        raise DateIncompatible("no departure on these dates is still to come, or the return leaves before arriving")
    return found


def _hotel_alternative(product: HotelProduct, search: ChangeSearch, now: datetime) -> ChangeAlternative:
    for name in ("departure_date", "return_date"):
        if getattr(search, name) is not None:
            raise SearchInvalid(name, "is for flights: a hotel takes check_in and check_out")
    for name in ("check_in", "check_out"):
        if getattr(search, name) is None:
            raise SearchInvalid(name, "Field required")
    assert search.check_in is not None and search.check_out is not None
    if search.check_in < now.astimezone(timezone.utc).date():
        raise DateIncompatible("check_in is in the past")
    if search.check_out <= search.check_in:
        raise DateIncompatible("check_out must be after check_in")
    paid_nights = (product.check_out - product.check_in).days
    nights = (search.check_out - search.check_in).days
    currency = product.price.currency
    fare = Money.of(round_half_up(Fraction(product.price.amount) * nights / paid_nights, currency), currency)
    itinerary = product.model_copy(update={"check_in": search.check_in, "check_out": search.check_out, "price": fare})
    return priced_alternative(product, itinerary)


def split_legs(segments: Sequence[Segment]) -> tuple[list[Segment], list[Segment]]:
    """Outbound and return legs: a round trip returns after its longest ground time; one-way has no return."""
    if len(segments) < 2 or segments[-1].destination != segments[0].origin:
        return list(segments), []
    gaps = [segments[i + 1].departure - segments[i].arrival for i in range(len(segments) - 1)]
    turn = gaps.index(max(gaps)) + 1
    return list(segments[:turn]), list(segments[turn:])


def _move_leg(leg: list[Segment], day: date | None, slot: time, index: int) -> list[Segment]:
    """The leg moved so that it departs on ``day`` at ``slot`` (local to its first departure), times kept."""
    if not leg or day is None:
        return list(leg)
    start = leg[0].departure
    shift: timedelta = datetime.combine(day, slot, tzinfo=start.tzinfo) - start
    return [
        segment.model_copy(
            update={
                "departure": segment.departure + shift,
                "arrival": segment.arrival + shift,
                "flight_number": _flight_number(segment.flight_number, index),
            }
        )
        for segment in leg
    ]


def _flight_number(original: str, index: int) -> str:
    """Each daily departure is its own flight: ZZ101 at 07:00, ZZ1101 at 13:00, ZZ2101 at 19:00."""
    return f"{original[:2]}{(int(original[2:]) + 1000 * index) % 10000}"
