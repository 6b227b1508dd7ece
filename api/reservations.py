"""Reservations (docs/api.md#reservations): reading one, with its products and every post-sale flow."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Union

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, create_model

from api.app_keys import DEPS
from api.endpoints import Reply, Resource
from domain.codes import FlowKind
from domain.products import FlightProduct, HotelProduct, OtherProduct, ProductStatus, ReservationStatus, Traveller
from domain.travellers import TravellerState
from services.requester import Requester
from services.visibility import visible_reservation

resource = Resource("reservations")


class _Sold(BaseModel):
    """What a product shows besides what was sold: its id, its status, and when it starts and ends (UTC)."""

    model_config = ConfigDict(extra="forbid")

    product_id: str
    status: ProductStatus
    start: datetime = Field(description="the first departure / check-in (hotels: 00:00 UTC of the check-in date)")
    end: datetime = Field(description="the last arrival / check-out")
    travellers: list[TravellerState] = Field(
        description="each traveller the product covers, with its status and fare (docs/api.md#partial-cancellation)")


def _sold(product: type[BaseModel]) -> type[BaseModel]:
    """A product as it is now (docs/api.md#reservations): every field of its kind as sold (the kind's
    own fields, so a field added to what is sold is shown too), changed by changes and reschedulings
    since, besides its id, status, start and end."""
    return create_model(  # type: ignore[call-overload,no-any-return]  # fields given by name, as the kind has them
        "Sold" + product.__name__.removesuffix("Product"),
        __base__=_Sold,
        __doc__=f"A {product.__name__.removesuffix('Product').lower()} product as it is now.",
        **{name: (field.annotation, field) for name, field in product.model_fields.items()},
    )


# Models made at import: to the type checker, what they validate is just "a product as it is now".
if TYPE_CHECKING:
    SoldProduct = BaseModel
else:
    SoldProduct = Annotated[Union[tuple(_sold(product) for product in (FlightProduct, HotelProduct, OtherProduct))],  # noqa: UP007
                            Field(discriminator="kind")]


class ReservationFlow(BaseModel):
    """A post-sale flow of the reservation with its current status (docs/flows.md)."""

    code: str
    kind: FlowKind
    product_id: str
    status: str
    created_at: datetime
    updated_at: datetime


class Reservation(BaseModel):
    """A reservation with its products and every post-sale flow, newest first."""

    reservation_id: str
    status: ReservationStatus
    created_at: datetime
    travellers: list[Traveller]
    products: list[SoldProduct]
    flows: list[ReservationFlow]


@resource.route("GET", "/v1/reservations/{reservation_id}", summary="Read a reservation",
                roles=("partner", "agent", "admin"), answers={200: Reservation})
async def get_reservation(request: web.Request, requester: Requester) -> Reply:
    return Reply(200, await visible_reservation(request.app[DEPS], requester.principal, request.match_info["reservation_id"]))
