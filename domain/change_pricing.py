"""What a change costs (docs/api.md#changes): pure rules, no I/O.

How an alternative is priced, whichever supplier offers it:

- ``fare_difference`` = new fare − fare paid; it may be negative.
- ``change_fee`` = the product's ``change_policy.change_fee`` (zero when the policy names none).
- ``total_due`` = ``max(fare_difference, 0) + change_fee``: a cheaper itinerary is not refunded
  (the residual fare is forfeited, as airlines do on voluntary changes) but the fee is always due,
  so ``total_due`` is never negative. After the change the product's ``price`` is the fare paid,
  ``price + max(fare_difference, 0)``.

Which itineraries exist is the supplier's answer (the sandbox's rules are in ``sandbox.alternatives``).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from pydantic import BaseModel, ConfigDict, TypeAdapter

from domain.input_bounds import CalendarDate
from domain.money import Money
from domain.products import ChangePolicy, FlightProduct, HotelProduct, ProductSpec
from domain.travellers import rescaled

_PRODUCT: TypeAdapter[ProductSpec] = TypeAdapter(ProductSpec)


class DateIncompatible(ValueError):
    """The requested dates cannot give an alternative (422 ``date_incompatible``)."""


class SearchInvalid(ValueError):
    """A search field does not fit the product's kind (a plain 422 naming the field)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class ChangeSearch(BaseModel):
    """The dates a partner asks alternatives for: flights use the first two, hotels the last two."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    departure_date: CalendarDate | None = None
    return_date: CalendarDate | None = None
    check_in: CalendarDate | None = None
    check_out: CalendarDate | None = None


class ChangeCharges(BaseModel):
    """What a change costs the partner (rules in the module docstring)."""

    model_config = ConfigDict(frozen=True)

    fare_difference: Money
    change_fee: Money
    total_due: Money


class ChangeAlternative(BaseModel):
    """One itinerary the product could change to: the product as it would be, and what it costs."""

    model_config = ConfigDict(frozen=True)

    itinerary: ProductSpec
    charges: ChangeCharges


def charges_for(paid: Money, new_fare: Money, policy: ChangePolicy) -> ChangeCharges:
    fare_difference = new_fare - paid
    change_fee = policy.change_fee or Money.zero(paid.currency)
    due = fare_difference if not fare_difference.is_negative() else Money.zero(paid.currency)
    return ChangeCharges(fare_difference=fare_difference, change_fee=change_fee, total_due=due + change_fee)


def priced_alternative(
    product: FlightProduct | HotelProduct, itinerary: FlightProduct | HotelProduct
) -> ChangeAlternative:
    """``itinerary`` carries the new fare; the alternative carries the price the product will have."""
    charges = charges_for(product.price, itinerary.price, product.change_policy)
    fare_paid = product.price + (charges.total_due - charges.change_fee)
    # Re-validated: model_copy skips validation, and the moved itinerary must still be a valid product.
    # Its travellers' fares follow the new price (domain.travellers.rescaled).
    fares = None if product.fares is None else rescaled(product.fares, fare_paid)
    valid = _PRODUCT.validate_python({**itinerary.model_dump(), "price": fare_paid, "fares": fares})
    return ChangeAlternative(itinerary=valid, charges=charges)


def fingerprint(details: dict[str, Any]) -> str:
    """Names one version of a product's details, so an offer priced against another version is refused."""
    return hashlib.sha256(json.dumps(details, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
