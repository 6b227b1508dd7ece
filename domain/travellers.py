"""Who a product covers and what each traveller paid (docs/api.md#travellers-and-fares).

A product names the travellers it covers (``traveller_ids``, default: every traveller of the
reservation) and each one's fare (``fares``, default: the price split equally, the remainder's minor
units going to the first travellers in order, so 100.00 EUR for three is 33.34, 33.33, 33.33). The
fares always sum to the price: a partial cancellation refunds a traveller's share of it
(``domain.partial_cancellation``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.money import Money, NonNegativeMoney

TravellerStatus = Literal["confirmed", "cancelled"]


class Fare(BaseModel):
    """What one traveller paid of a product's price."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    traveller_id: str = Field(min_length=1, max_length=40)
    amount: NonNegativeMoney


class TravellerState(BaseModel):
    """One traveller of a product as the reservation shows it."""

    traveller_id: str
    status: TravellerStatus
    fare: Money


def equal_split(price: Money, traveller_ids: Sequence[str]) -> list[Fare]:
    """The price split equally in minor units; the remainder's units go one each to the first travellers."""
    if not traveller_ids:
        raise ValueError("a product covers at least one traveller")
    base, remainder = divmod(price.minor, len(traveller_ids))
    return [Fare(traveller_id=tid, amount=Money.of_minor(base + (1 if i < remainder else 0), price.currency))
            for i, tid in enumerate(traveller_ids)]


def fare_problems(price: Money, traveller_ids: Sequence[str], fares: Sequence[Fare]) -> list[str]:
    """What is wrong with ``fares`` for a product of ``price`` covering ``traveller_ids`` (empty: nothing).
    Every traveller of the product has exactly one fare, in the price's currency, and they sum to the price."""
    problems = []
    named = [fare.traveller_id for fare in fares]
    twice = sorted({tid for tid in named if named.count(tid) > 1})
    if twice:
        problems.append(f"fares name {', '.join(twice)} more than once")
    stranger = [tid for tid in named if tid not in traveller_ids]
    if stranger:
        problems.append(f"fares name {', '.join(stranger)}, not a traveller of the product")
    missing = [tid for tid in traveller_ids if tid not in named]
    if missing:
        problems.append(f"fares leave out {', '.join(missing)}, a traveller of the product")
    currencies = sorted({fare.amount.currency for fare in fares} - {price.currency})
    if currencies:
        problems.append(f"fares must be in the price's currency {price.currency}, not {', '.join(currencies)}")
    elif not problems and total(fare.amount for fare in fares) != price:
        problems.append(f"fares sum to {total(fare.amount for fare in fares)}, not to the price {price}")
    return problems


def total(amounts: Iterable[Money]) -> Money:
    """The sum of ``amounts``, all in one currency (at least one amount)."""
    items = list(amounts)
    result = Money.zero(items[0].currency)
    for amount in items:
        result = result + amount
    return result


def states(fares: Sequence[Fare], cancelled: Mapping[str, str], product_cancelled: bool) -> list[TravellerState]:
    """Each traveller of the product with its status: cancelled when a flow cancelled it (``cancelled``:
    traveller id → flow code) or the whole product is."""
    return [TravellerState(traveller_id=fare.traveller_id, fare=fare.amount,
                           status="cancelled" if product_cancelled or fare.traveller_id in cancelled else "confirmed")
            for fare in fares]



def rescaled(fares: Sequence[Fare], price: Money) -> list[Fare]:
    """The fares of a product whose price became ``price`` (a change, a rescheduling): each in proportion
    to what it was, rounded down to the minor unit, the remainder's units one each to the first
    travellers in order, so they sum to the new price as the equal split does."""
    old = sum(fare.amount.minor for fare in fares)
    if old == 0:
        return equal_split(price, [fare.traveller_id for fare in fares])
    units = [fare.amount.minor * price.minor // old for fare in fares]
    short = price.minor - sum(units)
    return [Fare(traveller_id=fare.traveller_id,
                 amount=Money.of_minor(unit + (1 if index < short else 0), price.currency))
            for index, (fare, unit) in enumerate(zip(fares, units, strict=True))]
