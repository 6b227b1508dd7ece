"""What cancelling a product would cost and refund right now (docs/settlement.md#the-refund-procedure),
and the same terms an automatic cancellation quote gives.

``cancellation_terms`` is the one place the allowance and the penalty rule meet: the quote
(``POST …/cancellation-quotes``) and the refund procedure (``GET …/refund-procedure``) both ask it,
so the procedure answers exactly what a quote would, without creating one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel

from domain.allowance import Allowance, ProductState, cancellation_allowance
from domain.flow_info import Resolution
from domain.money import Money
from domain.penalty import penalty_for, refund_for
from domain.products import ProductSpec


@dataclass(frozen=True)
class CancellationTerms:
    """The allowance, and for an automatic policy the penalty and refund of cancelling now."""

    allowance: Allowance
    reasons: list[str]
    paid: Money
    penalty: Money | None = None
    refund: Money | None = None

    @property
    def resolution(self) -> Resolution | None:
        """Who decides the amounts: the tiers (automatic), an agent (manual); None when it cannot be cancelled."""
        if self.allowance == "disallowed":
            return None
        return "manual" if self.allowance == "unknown" else "automatic"


def cancellation_terms(state: ProductState, product: ProductSpec, now: datetime, paid: Money | None = None) -> CancellationTerms:
    """``paid``: the share cancelled (docs/api.md#partial-cancellation); None: the whole price."""
    paid = product.price if paid is None else paid
    allowance, reasons = cancellation_allowance(state, product.cancellation_policy.mode, now)
    if allowance != "allowed":
        return CancellationTerms(allowance, reasons, paid)
    penalty = penalty_for(product.cancellation_policy.tiers, paid, state.start - now)
    return CancellationTerms(allowance, reasons, paid, penalty, refund_for(paid, penalty))


class ProcedureTraveller(BaseModel):
    """One traveller still confirmed: what cancelling only them would cost and refund (docs/api.md#partial-cancellation)."""

    traveller_id: str
    price: Money
    penalty: Money | None
    difference: Money | None


class ProcedureItem(BaseModel):
    """One product of the refund procedure: ``difference`` is what would be refunded (price − penalty);
    ``price`` is what the travellers still confirmed paid, and ``travellers`` each of them."""

    product_id: str
    refundable: bool
    resolution: Literal["automatic", "manual"] | None
    price: Money
    penalty: Money | None
    difference: Money | None
    reasons: list[str]
    travellers: list[ProcedureTraveller] = []


class ProcedureTotal(BaseModel):
    currency: str
    price: Money
    penalty: Money
    difference: Money


class ProductProcedure(ProcedureItem):
    """``GET /v1/products/{product_id}/refund-procedure``."""

    reservation_id: str
    computed_at: AwareDatetime


class RefundProcedure(BaseModel):
    """``GET /v1/reservations/{reservation_id}/refund-procedure``."""

    reservation_id: str
    refundable: bool
    items: list[ProcedureItem]
    totals: list[ProcedureTotal]
    computed_at: AwareDatetime


def procedure_item(
    product_id: str, terms: CancellationTerms, travellers: Sequence[tuple[str, CancellationTerms]] = ()
) -> ProcedureItem:
    """Manual products are refundable with null amounts (an agent will quote); products that cannot be
    cancelled are not refundable and carry the allowance's reasons. ``travellers``: the terms of
    cancelling each traveller still confirmed alone."""
    return ProcedureItem(
        travellers=[ProcedureTraveller(traveller_id=traveller_id, price=alone.paid, penalty=alone.penalty,
                                       difference=alone.refund) for traveller_id, alone in travellers],
        product_id=product_id,
        refundable=terms.allowance != "disallowed",
        resolution=terms.resolution,
        price=terms.paid,
        penalty=terms.penalty,
        difference=terms.refund,
        reasons=terms.reasons,
    )


def procedure_totals(items: Sequence[ProcedureItem]) -> list[ProcedureTotal]:
    """The automatic refundable items summed per currency, in currency order."""
    totals: dict[str, ProcedureTotal] = {}
    for item in items:
        if item.resolution != "automatic" or item.penalty is None or item.difference is None:
            continue
        currency = item.price.currency
        zero = Money.zero(currency)
        total = totals.get(currency, ProcedureTotal(currency=currency, price=zero, penalty=zero, difference=zero))
        totals[currency] = ProcedureTotal(
            currency=currency,
            price=total.price + item.price,
            penalty=total.penalty + item.penalty,
            difference=total.difference + item.difference,
        )
    return [totals[c] for c in sorted(totals)]


def refund_procedure(reservation_id: str, items: list[ProcedureItem], now: datetime) -> RefundProcedure:
    return RefundProcedure(
        reservation_id=reservation_id,
        refundable=any(item.refundable for item in items),
        items=items,
        totals=procedure_totals(items),
        computed_at=now,
    )
