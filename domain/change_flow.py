"""The change flow's contract (docs/flows.md#change): what the gateway starts it with, what it shows, what it accepts.

One flow ``CF-…`` holds either path of a change:

- automatic (context creation, then booking it): ``awaiting_booking`` → ``modified`` |
  ``expired`` (the context's TTL passed) | ``failed`` (the supplier refused);
- manual (PreBookCheckout / BookCheckout, an agent's checkout): ``checkout_issued`` →
  ``checkout_prebooked`` → ``modified`` | ``failed``; ``expired`` from either when the checkout's
  TTL passes first.

The public ids of a flow are its code's eight characters under another prefix (``CF-7K2Q…`` has
context ``CTX-7K2Q…``, checkout ``CHK-7K2Q…`` and checkout context ``CCX-7K2Q…``), so the gateway
finds the flow from any of them without another table.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

from domain.codes import FlowKind, parse_flow_code
from domain.flow_info import FlowInfo, FlowInput, Resolution
from domain.money import Money
from domain.products import ProductSpec

ChangeStatus = Literal["awaiting_booking", "checkout_issued", "checkout_prebooked", "modified", "expired", "failed"]
# Where the flow waits for the partner to book, until it expires.
WAITING_FOR_BOOKING: frozenset[ChangeStatus] = frozenset({"awaiting_booking", "checkout_issued", "checkout_prebooked"})

# Trigger types (docs/triggers.md) a change emits.
CHANGE_CHECKOUT_ISSUED = "change.checkout_issued"
CHANGE_COMPLETED = "change.completed"
CHANGE_EXPIRED = "change.expired"
CHANGE_FAILED = "change.failed"

CONTEXT_PREFIX = "CTX-"
CHECKOUT_PREFIX = "CHK-"
CHECKOUT_CONTEXT_PREFIX = "CCX-"


def public_id(prefix: str, code: str) -> str:
    return prefix + code.removeprefix(f"{FlowKind.CHANGE.prefix}-")


def code_of(prefix: str, public: str) -> str | None:
    """The change code a context, checkout or checkout context id names; None when it names none."""
    if not public.startswith(prefix):
        return None
    code = f"{FlowKind.CHANGE.prefix}-" + public.removeprefix(prefix)
    try:
        parse_flow_code(code)
    except ValueError:
        return None
    return code


class ChangeInfo(FlowInfo):
    """The change's flow info (``GET /v1/changes/{code}``). ``total_due`` is the checkout's amount on the manual path."""

    status: ChangeStatus
    resolution: Resolution
    total_due: Money
    expires_at: AwareDatetime
    # The product as the change makes it; None for a checkout that changes no itinerary.
    itinerary: ProductSpec | None = None
    # Automatic path.
    context_id: str | None = None
    itinerary_id: str | None = None
    fare_difference: Money | None = None
    change_fee: Money | None = None
    invoice_hint: str | None = None
    # Manual path.
    checkout_id: str | None = None
    checkout_context_id: str | None = None
    description: str | None = None
    agent_id: str | None = None
    payment_methods: list[str] = Field(default_factory=list)
    payment_method: str | None = None
    # The credit the partner pays with (docs/settlement.md#credits): it pays what it can when the change is recorded.
    credit_id: str | None = None
    failure: str | None = None  # the supplier's reason when it refused

    def waiting_until(self) -> datetime | None:
        # The partner's booking is awaited until the context or checkout expires.
        return self.expires_at if self.status in WAITING_FOR_BOOKING else None


class ChangeInput(FlowInput):
    """Everything a change flow needs, fixed when the gateway starts it.

    ``expires_at`` is absolute: the gateway has already told the partner, so the flow keeps that promise.
    """

    resolution: Resolution
    total_due: Money
    expires_at: AwareDatetime
    itinerary: ProductSpec | None = None
    itinerary_id: str | None = None
    fare_difference: Money | None = None
    change_fee: Money | None = None
    description: str | None = None
    agent_id: str | None = None
    # How the partner may pay an agent's checkout: the supplier's answer when the checkout is issued.
    payment_methods: list[str] = Field(default_factory=list)

    def initial_info(self) -> ChangeInfo:
        manual = self.resolution == "manual"
        return ChangeInfo(
            **self.identity(),
            status="checkout_issued" if manual else "awaiting_booking",
            resolution=self.resolution,
            total_due=self.total_due,
            expires_at=self.expires_at,
            itinerary=self.itinerary,
            context_id=None if manual else public_id(CONTEXT_PREFIX, self.code),
            itinerary_id=self.itinerary_id,
            fare_difference=self.fare_difference,
            change_fee=self.change_fee,
            checkout_id=public_id(CHECKOUT_PREFIX, self.code) if manual else None,
            description=self.description,
            agent_id=self.agent_id,
            payment_methods=list(self.payment_methods) if manual else [],
        )


class Prebooking(BaseModel):
    """The partner's PreBookCheckout: it names the reservation (its ``transaction_id``) it pays for."""

    transaction_id: str


class Booking(BaseModel):
    """Context_book (``invoice_hint``) or BookCheckout (``payment_method``), either paid with a credit (``credit_id``)."""

    invoice_hint: str | None = None
    payment_method: str | None = None
    credit_id: str | None = None
