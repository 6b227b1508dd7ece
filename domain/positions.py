"""Cancellation positions (docs/settlement.md#cancellation-positions): the credit-note lines of
a cancelled product, with VAT.

A cancellation gives two positions: the original sale reversed (``amount`` = −paid) and the
cancellation fee (``amount`` = +penalty, also when it is zero). VAT is included in gross amounts:
``vat_amount = amount × rate / (1 + rate)``, rounded half-up away from zero to the minor unit
(``domain.vat.vat_included``), so the reversal is exactly the negation of the sale, VAT included,
and ``original.amount + fee.amount = −refund``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, ConfigDict

from domain.money import DecimalString, Money
from domain.penalty import refund_for
from domain.products import FlightProduct, HotelProduct, ProductSpec
from domain.vat import vat_included
from domain.waivers import Waiver, WaiverCode


class Position(BaseModel):
    """One line of an invoice or a credit note; amounts are gross (VAT included)."""

    model_config = ConfigDict(frozen=True)

    title: str
    quantity: int = 1
    amount: Money
    vat_rate: DecimalString
    vat_amount: Money
    net_amount: Money


class FeePosition(Position):
    """The cancellation fee; with a waiver, its code and the penalty it gave up (docs/settlement.md#waivers)."""

    waiver_code: WaiverCode | None = None
    penalty_waived: Money | None = None


class CancellationPositions(BaseModel):
    """``GET /v1/cancellations/{code}/positions``."""

    code: str
    product_id: str
    reservation_id: str
    traveller_ids: list[str] | None = None
    original_position: Position
    cancellation_fee_position: FeePosition
    refund: Money


def position(title: str, amount: Money, vat_rate: DecimalString) -> Position:
    vat = vat_included(amount, vat_rate)
    return Position(title=title, amount=amount, vat_rate=vat_rate, vat_amount=vat, net_amount=amount - vat)


def reversal(sale: Position) -> Position:
    """The sale undone: every amount negated, nothing recomputed (so nothing can round differently)."""
    return sale.model_copy(update={"amount": -sale.amount, "vat_amount": -sale.vat_amount, "net_amount": -sale.net_amount})


def product_title(product: ProductSpec) -> str:
    """What was sold, as a credit note names it."""
    if isinstance(product, FlightProduct):
        first, last = product.segments[0], product.segments[-1]
        return f"Flight {first.flight_number} {first.origin}-{last.destination} {first.departure.date().isoformat()}"
    if isinstance(product, HotelProduct):
        nights = (product.check_out - product.check_in).days
        return f"{product.hotel}, {product.check_in.isoformat()} to {product.check_out.isoformat()} ({nights} nights)"
    return f"{product.name} {product.starts_at.date().isoformat()}"


def fee_title(start: datetime, cancelled_at: datetime) -> str:
    """``Cancellation fee, 6 days before start`` (whole days, rounded down)."""
    days = (start - cancelled_at) // timedelta(days=1)
    if days < 0:
        return "Cancellation fee, after start"
    return f"Cancellation fee, {days} day{'s' if days != 1 else ''} before start"


def cancellation_positions(
    *,
    code: str,
    product_id: str,
    reservation_id: str,
    product: ProductSpec,
    paid: Money,
    penalty: Money,
    cancelled_at: datetime,
    traveller_ids: list[str] | None = None,
    waiver: Waiver | None = None,
) -> CancellationPositions:
    """The original sale of ``paid`` reversed and the fee of ``penalty``, both at the product's VAT rate.

    ``traveller_ids``: the travellers cancelled (docs/api.md#partial-cancellation): ``paid`` is their
    share, and the original position's ``quantity`` their number; None (a flow started before
    travellers were named): one, the whole product."""
    sale = position(product_title(product), paid, product.vat_rate).model_copy(
        update={"quantity": len(traveller_ids) if traveller_ids else 1})
    original = reversal(sale)
    fee = FeePosition(**position(fee_title(product.start, cancelled_at), penalty, product.vat_rate).model_dump(),
                      waiver_code=waiver.code if waiver else None, penalty_waived=waiver.penalty_waived if waiver else None)
    return CancellationPositions(
        code=code, product_id=product_id, reservation_id=reservation_id, traveller_ids=traveller_ids,
        original_position=original,
        cancellation_fee_position=fee, refund=refund_for(paid, penalty),
    )
