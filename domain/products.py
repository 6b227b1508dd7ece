"""What was sold: reservations, travellers and products (flights, hotels, other services) with their policies.

These models validate the sandbox supplier's input and are what the supplier port hands back.
A product's start is its first departure / check-in; its end its last arrival / check-out.
"""

from __future__ import annotations

from datetime import datetime, time, timezone
from decimal import Decimal
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from domain.input_bounds import MAX_REQUEST_AMOUNT, CalendarDate, Instant, from_request
from domain.money import DecimalString, NonNegativeMoney, PositiveMoney, format_decimal
from domain.penalty import CancellationTier
from domain.travellers import Fare, equal_split, fare_problems

ReservationStatus = Literal["pending", "confirmed"]
ProductStatus = Literal["pending", "confirmed", "cancelled"]


def _rate_in_range(value: Decimal) -> Decimal:
    if not Decimal(0) <= value <= Decimal(1):
        raise ValueError("must be between 0 and 1")
    return value


# A decimal string from 0 to 1 (never a JSON number), and the schema says exactly that.
VAT_RATE_PATTERN = r"^0*(1(\.0+)?|0(\.[0-9]+)?)$"
VatRate = Annotated[
    DecimalString,
    AfterValidator(_rate_in_range),
    WithJsonSchema({"type": "string", "pattern": VAT_RATE_PATTERN, "examples": ["0.10", "0.081"]}),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Traveller(_Strict):
    traveller_id: str = Field(min_length=1, max_length=40)
    name: str = Field(min_length=1, max_length=200)


class Segment(_Strict):
    origin: str = Field(pattern=r"^[A-Z]{3}$", description="IATA airport code")
    destination: str = Field(pattern=r"^[A-Z]{3}$")
    departure: Instant
    arrival: Instant
    flight_number: str = Field(pattern=r"^[A-Z0-9]{2}[0-9]{1,4}$")

    @model_validator(mode="after")
    def _arrives_after_departing(self) -> Segment:
        if self.arrival <= self.departure:
            raise ValueError("arrival must be after departure")
        return self


class CancellationPolicy(_Strict):
    mode: Literal["automatic", "manual", "none"]
    tiers: list[CancellationTier] = Field(default_factory=list, max_length=20)
    partial: bool | None = Field(
        default=None,
        description="whether travellers may be cancelled one by one; absent: true for flights and `other`, false for hotels",
    )


class ChangePolicy(_Strict):
    changeable: bool
    manual: bool = False
    change_fee: NonNegativeMoney | None = None


class SpecialRequestOption(_Strict):
    code: str = Field(pattern=r"^[A-Z0-9]{2,8}$")
    name: str = Field(min_length=1, max_length=100)
    price: NonNegativeMoney | None = None


class _ProductBase(_Strict):
    price: PositiveMoney
    vat_rate: VatRate = Field(description="VAT included in the price, e.g. \"0.10\"")
    cancellation_policy: CancellationPolicy
    change_policy: ChangePolicy = ChangePolicy(changeable=False)
    special_request_options: list[SpecialRequestOption] = Field(default_factory=list, max_length=50)
    # A security deposit, charged with the sale and refundable once (docs/settlement.md#deposits);
    # left out when there is none.
    deposit: PositiveMoney | None = None
    # Who the product covers and what each paid (docs/api.md#travellers-and-fares): the reservation
    # fills in the defaults when it is created, so every stored product names both.
    traveller_ids: list[str] | None = Field(
        default=None, min_length=1, max_length=20,
        description="the travellers the product covers; absent: every traveller of the reservation",
    )
    fares: list[Fare] | None = Field(
        default=None, min_length=1, max_length=20,
        description="what each traveller paid, summing to the price; absent: the price split equally, "
                    "the remainder's minor units to the first travellers",
    )

    @model_validator(mode="after")
    def _travellers_and_fares(self) -> _ProductBase:
        if self.traveller_ids is not None and len(set(self.traveller_ids)) != len(self.traveller_ids):
            raise ValueError("traveller_ids name a traveller more than once")
        if self.fares is not None:
            covered = self.traveller_ids if self.traveller_ids is not None else [f.traveller_id for f in self.fares]
            problems = fare_problems(self.price, covered, self.fares)
            if problems:
                raise ValueError("; ".join(problems))
        return self

    def partial_cancellation(self) -> bool:
        """May its travellers be cancelled one by one: as the policy says, else flights and other services may, hotels not."""
        partial = self.cancellation_policy.partial
        return partial if partial is not None else not isinstance(self, HotelProduct)

    def fares_for(self, reservation_travellers: list[str]) -> list[Fare]:
        """Each covered traveller's fare, the defaults filled in from the reservation's travellers."""
        if self.fares is not None:
            return list(self.fares)
        return equal_split(self.price, self.traveller_ids or reservation_travellers)

    def with_travellers(self, reservation_travellers: list[str]) -> Self:
        """The product naming its travellers, their fares and whether they may be cancelled one by one, as it is stored."""
        fares = self.fares_for(reservation_travellers)
        policy = self.cancellation_policy.model_copy(update={"partial": self.partial_cancellation()})
        return self.model_copy(update={"traveller_ids": [f.traveller_id for f in fares], "fares": fares,
                                       "cancellation_policy": policy})

    @model_validator(mode="after")
    def _change_fee_in_price_currency(self) -> _ProductBase:
        # A change's total is fare difference + fee: one currency, or it cannot be added up.
        fee = self.change_policy.change_fee
        if fee is not None and fee.currency != self.price.currency:
            raise ValueError(f"change_policy.change_fee must be in the price's currency, {self.price.currency}")
        return self


class FlightProduct(_ProductBase):
    kind: Literal["flight"]
    carrier: str = Field(pattern=r"^[A-Z0-9]{2}$")
    segments: list[Segment] = Field(min_length=1, max_length=10)

    @property
    def start(self) -> datetime:
        return self.segments[0].departure

    @property
    def end(self) -> datetime:
        return self.segments[-1].arrival


class HotelProduct(_ProductBase):
    kind: Literal["hotel"]
    hotel: str = Field(min_length=1, max_length=200)
    check_in: CalendarDate
    check_out: CalendarDate

    @model_validator(mode="after")
    def _nights(self) -> HotelProduct:
        if self.check_out <= self.check_in:
            raise ValueError("check_out must be after check_in")
        return self

    @property
    def start(self) -> datetime:
        return datetime.combine(self.check_in, time(0), timezone.utc)

    @property
    def end(self) -> datetime:
        return datetime.combine(self.check_out, time(0), timezone.utc)


class OtherProduct(_ProductBase):
    """Any other service sold with the trip (transfer, insurance, activity)."""

    kind: Literal["other"]
    name: str = Field(min_length=1, max_length=200)
    starts_at: Instant
    ends_at: Instant

    @property
    def start(self) -> datetime:
        return self.starts_at

    @property
    def end(self) -> datetime:
        return self.ends_at


ProductSpec = Annotated[FlightProduct | HotelProduct | OtherProduct, Field(discriminator="kind")]


class ReservationSpec(_Strict):
    status: ReservationStatus = "confirmed"
    travellers: list[Traveller] = Field(min_length=1, max_length=20)
    products: list[ProductSpec] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _unique_travellers(self) -> ReservationSpec:
        ids = [t.traveller_id for t in self.travellers]
        if len(ids) != len(set(ids)):
            raise ValueError("traveller_id values must be unique")
        for index, product in enumerate(self.products):
            named = product.traveller_ids or [f.traveller_id for f in product.fares or []]
            strangers = [tid for tid in named if tid not in ids]
            if strangers:
                raise ValueError(f"products[{index}] names {', '.join(strangers)}, not a traveller of the reservation")
            if product.traveller_ids is None and product.fares is not None:
                problems = fare_problems(product.price, ids, product.fares)
                if problems:
                    raise ValueError(f"products[{index}]: " + "; ".join(problems))
        return self

    def sold(self) -> list[ProductSpec]:
        """The products as they are stored: each naming its travellers and their fares."""
        ids = [t.traveller_id for t in self.travellers]
        return [product.with_travellers(ids) for product in self.products]

    @field_validator("products")
    @classmethod
    def _sale_within_bounds(cls, products: list[ProductSpec], info: ValidationInfo) -> list[ProductSpec]:
        """What the sale books in one currency must fit as one amount would (domain.input_bounds): the
        reservation's books add to it, and every refund and position is computed from it."""
        if not from_request(info):
            return products
        totals: dict[str, Decimal] = {}
        for product in products:
            for money in (product.price, product.deposit):
                if money is not None:
                    totals[money.currency] = totals.get(money.currency, Decimal(0)) + money.amount
        for currency, total in sorted(totals.items()):
            if total >= MAX_REQUEST_AMOUNT:
                raise ValueError(f"prices and deposits in {currency} add up to {format_decimal(total)}: a reservation "
                                 f"carries less than 10^12 in each currency")
        return products
