"""Changes (docs/api.md#changes): what each request checks and does. Automatic: allowance →
alternatives → context (pre-book) → book. Manual: an agent issues a checkout, the partner pre-books
and books it. Both are one flow, ``workflows.change.ChangeWorkflow``; the prices are
``domain.change_pricing``'s and the supplier's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, NamedTuple

from pydantic import BaseModel, TypeAdapter

from domain.allowance import change_allowance
from domain.change_flow import (
    CHECKOUT_CONTEXT_PREFIX,
    CHECKOUT_PREFIX,
    CONTEXT_PREFIX,
    Booking,
    ChangeInfo,
    ChangeInput,
    Prebooking,
    code_of,
)
from domain.change_pricing import ChangeAlternative, ChangeSearch, DateIncompatible, SearchInvalid, fingerprint
from domain.codes import ITINERARY_ID, FlowKind
from domain.credit_ledger import Credit
from domain.flow_info import is_terminal
from domain.involuntary import without_change_fee
from domain.money import Money
from domain.partial_cancellation import for_remaining
from domain.products import FlightProduct, ProductSpec, Segment
from domain.refusals import Refusal, Refused, invalid_field, not_found
from services import credits
from services.bootstrap import Deps
from services.flow_start import NewFlow, StillWorking, flow_in_progress, opening, start_flow, update_flow
from services.involuntary import rescheduling_open
from services.requester import Requester
from services.visibility import product_state, visible_flow, visible_product
from store.change_offers import ChangeOffer
from store.reservation_records import ProductRecord
from workflows.change import ChangeWorkflow

_PRODUCT: TypeAdapter[ProductSpec] = TypeAdapter(ProductSpec)


class Changeability(NamedTuple):
    """Why the product may not be changed now (none: it may), and whether an agent changes it by checkout."""

    reasons: list[str]
    manual: bool


@dataclass(frozen=True)
class ChangeBooked:
    """A booked change: its final info, the product as the change left it, and the credit it was
    paid with, as the change left it (``Credit.paid_for`` says how much it paid)."""

    info: ChangeInfo
    product: dict[str, Any] | None
    credit: Credit | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _refusals(deps: Deps, product: ProductRecord) -> list[str]:
    return change_allowance(await product_state(deps, product), product.spec.change_policy.changeable, _now())


async def _refuse_unless_changeable(deps: Deps, product: ProductRecord) -> None:
    """Refused ``flow_in_progress`` or ``change_disallowed`` (reasons in the detail) unless the allowance allows."""
    reasons = await _refusals(deps, product)
    if "flow_in_progress" in reasons:
        raise flow_in_progress()
    if reasons:
        raise Refused(Refusal.CHANGE_DISALLOWED, f"the product cannot be changed: {', '.join(reasons)}")


async def allowance(deps: Deps, requester: Requester, product_id: str) -> Changeability:
    product = await visible_product(deps, requester.principal, product_id)
    return Changeability(await _refusals(deps, product), product.spec.change_policy.manual)


async def search_alternatives(
    deps: Deps, requester: Requester, product_id: str, search: ChangeSearch
) -> list[tuple[ChangeOffer, ChangeAlternative]]:
    """The supplier's itineraries for the searched dates, each kept as an offer (``itn_…``) valid for
    ``AFTERSALES_QUOTE_TTL`` against the product as it is now."""
    product = await visible_product(deps, requester.principal, product_id)
    await _refuse_unless_changeable(deps, product)
    if product.spec.change_policy.manual:
        raise Refused(Refusal.MANUAL_CHANGE, "this product is changed by the service center: an agent issues a checkout")
    now = _now()
    try:
        found = await deps.supplier.change_alternatives(product.product_id, search, now)
    except DateIncompatible as exc:
        raise Refused(Refusal.DATE_INCOMPATIBLE, str(exc)) from None
    except SearchInvalid as exc:
        raise invalid_field(exc.field, exc.message) from None
    if await rescheduling_open(deps, product.product_id):
        # The airline is changing the flight: a change now carries no fee (docs/flows.md#involuntary-cancellations).
        found = [without_change_fee(alternative) for alternative in found]
    # The travellers who remain are those the change concerns (docs/api.md#partial-cancellation).
    found = [for_remaining(alternative, product.spec.price, product.fares(), product.cancelled_travellers or {})
             for alternative in found]
    expires_at = now + deps.settings.quote_ttl
    base = fingerprint(product.details)
    offers = [
        ChangeOffer(
            itinerary_id=requester.new_id(ITINERARY_ID), product_id=product.product_id, partner_id=requester.principal.principal_id,
            base_fingerprint=base, itinerary=alternative.itinerary.model_dump(mode="json"),
            created_at=now, expires_at=expires_at, **alternative.charges.model_dump(mode="json"),
        )
        for alternative in found
    ]
    await deps.store.change_offers.save(offers)
    return list(zip(offers, found, strict=True))


async def create_context(deps: Deps, requester: Requester, itinerary_id: str) -> ChangeInfo:
    """Pre-book an offered itinerary: a change flow holds its price (and the product) for
    ``AFTERSALES_CHANGE_CONTEXT_TTL``."""

    async def prepare(code: str) -> NewFlow:
        offer = await deps.store.change_offers.offer(itinerary_id)
        if offer is None or offer.partner_id != requester.principal.principal_id:
            raise not_found("itinerary")
        product = await visible_product(deps, requester.principal, offer.product_id)
        await _refuse_unless_changeable(deps, product)
        now = _now()
        if offer.expires_at <= now:
            raise Refused(Refusal.ITINERARY_EXPIRED, "the alternative has expired: search alternatives again")
        if offer.base_fingerprint != fingerprint(product.details):
            raise Refused(Refusal.ITINERARY_SUPERSEDED, "the product changed since this alternative was offered")
        return NewFlow(FlowKind.CHANGE, ChangeInput(
            **opening(deps, code, product),
            resolution="automatic",
            total_due=Money.model_validate(offer.total_due),
            expires_at=now + deps.settings.change_context_ttl,
            itinerary=_PRODUCT.validate_python(offer.itinerary),
            itinerary_id=offer.itinerary_id,
            fare_difference=Money.model_validate(offer.fare_difference),
            change_fee=Money.model_validate(offer.change_fee),
        ))

    info = (await start_flow(deps, requester, FlowKind.CHANGE, prepare)).info
    assert isinstance(info, ChangeInfo)
    return info


async def book_context(
    deps: Deps, requester: Requester, context_id: str, invoice_hint: str | None, credit_id: str | None = None
) -> ChangeBooked | StillWorking:
    """Book a change context, paid with the credit ``credit_id`` when one is named."""
    info, recorded = await _change(deps, requester, CONTEXT_PREFIX, context_id, "change context")
    return await _book(deps, requester, info, recorded, Booking(invoice_hint=invoice_hint, credit_id=credit_id))


async def issue_checkout(
    deps: Deps, requester: Requester, product_id: str, description: str, amount: Money, segments: list[Segment] | None
) -> ChangeInfo:
    """An agent prices a manual change: a change flow (manual resolution) whose checkout waits for the
    partner until ``AFTERSALES_CHECKOUT_TTL``."""

    async def prepare(code: str) -> NewFlow:
        product = await visible_product(deps, requester.principal, product_id)
        spec = product.spec
        if amount.currency != spec.price.currency:
            raise invalid_field("amount.currency", f"must be the product's currency, {spec.price.currency}")
        if amount.is_negative():
            raise invalid_field("amount.amount", "must not be negative")
        itinerary = None
        if segments is not None:
            if not isinstance(spec, FlightProduct):
                raise invalid_field("segments", "only a flight has segments")
            itinerary = _PRODUCT.validate_python({**spec.model_dump(), "segments": segments})
        await _refuse_unless_changeable(deps, product)
        return NewFlow(FlowKind.CHANGE, ChangeInput(
            **opening(deps, code, product),
            resolution="manual",
            total_due=amount,
            expires_at=_now() + deps.settings.checkout_ttl,
            itinerary=itinerary,
            description=description,
            agent_id=requester.principal.principal_id,
            payment_methods=await deps.supplier.payment_methods(product.product_id),
        ))

    info = (await start_flow(deps, requester, FlowKind.CHANGE, prepare)).info
    assert isinstance(info, ChangeInfo)
    return info


async def prebook(deps: Deps, requester: Requester, checkout_id: str, transaction_id: str) -> ChangeInfo | StillWorking:
    """The partner pre-books an agent's checkout: the change as pre-booked, with its checkout context."""
    info, recorded = await _change(deps, requester, CHECKOUT_PREFIX, checkout_id, "checkout")
    prebooked = await _update(deps, requester, info, ChangeWorkflow.prebook, Prebooking(transaction_id=transaction_id))
    if prebooked is None:
        # Taken, and still being recorded: the same pre-book again (same Idempotency-Key) answers the context.
        return StillWorking(recorded)
    # A finished flow answers from the store (a repeated pre-book gets the same context), so the
    # workflow's own transaction check is made here.
    if is_terminal(prebooked.status) and transaction_id != prebooked.reservation_id:
        raise invalid_field("transaction_id", "is not the reservation this checkout was issued for")
    if prebooked.status == "expired":
        raise Refused(Refusal.CHECKOUT_EXPIRED, "the checkout has expired: ask the service center for a new one")
    if prebooked.checkout_context_id is None:
        raise Refused(Refusal.NOT_AWAITING_PREBOOK, f"checkout of {prebooked.code} is {prebooked.status}")
    return prebooked


async def book_checkout(
    deps: Deps, requester: Requester, checkout_context_id: str, payment_method: str, credit_id: str | None = None
) -> ChangeBooked | StillWorking:
    """Book (pay) a pre-booked checkout; ``payment_method`` ``credit`` pays it with the credit ``credit_id``."""
    info, recorded = await _change(deps, requester, CHECKOUT_CONTEXT_PREFIX, checkout_context_id, "checkout context")
    return await _book(deps, requester, info, recorded, Booking(payment_method=payment_method, credit_id=credit_id))


async def _change(deps: Deps, requester: Requester, prefix: str, public_id: str, what: str) -> tuple[ChangeInfo, dict[str, Any]]:
    """The change a public id names (``CTX-…`` an automatic change's context; ``CHK-…`` and ``CCX-…``
    an agent's checkout and its context), as stored, if the caller may see it."""
    recorded = await visible_flow(deps, requester.principal, code_of(prefix, public_id), FlowKind.CHANGE, what)
    info = ChangeInfo.model_validate(recorded)
    if (info.resolution == "manual") != (prefix != CONTEXT_PREFIX):
        raise not_found(what)
    return info, recorded


async def _update(deps: Deps, requester: Requester, info: ChangeInfo, update: Any, argument: BaseModel) -> ChangeInfo | None:
    """The workflow's answer while the change runs, its final state once it has finished; None when
    it took the input and is still working on it after the sync wait."""
    return await update_flow(deps, requester, info.code, update, argument, on_closed=_final_state)


def _final_state(final: ChangeInfo) -> ChangeInfo:
    return final


async def _book(
    deps: Deps, requester: Requester, info: ChangeInfo, recorded: dict[str, Any], booking: Booking
) -> ChangeBooked | StillWorking:
    """Book a change; booking the same context again answers the same."""
    if booking.credit_id is not None and not is_terminal(info.status):
        # Refused before the flow takes the booking; a change booked already answers as it did.
        await credits.check_payment(deps, requester, booking.credit_id, info.total_due)
    booked = await _update(deps, requester, info, ChangeWorkflow.book, booking)
    if booked is None:
        return StillWorking(recorded)
    if booked.status == "expired":
        if booked.resolution == "manual":
            raise Refused(Refusal.CHECKOUT_EXPIRED, "the checkout has expired: ask the service center for a new one")
        raise Refused(Refusal.CONTEXT_EXPIRED, "the change context has expired: search alternatives again")
    if booked.status == "failed":
        raise Refused(Refusal.CHANGE_FAILED, f"the supplier refused the change: {booked.failure}")
    if booked.status != "modified":
        raise Refused(Refusal.NOT_AWAITING_BOOKING, f"change {booked.code} is {booked.status}")
    product = await deps.store.reservations.product(booked.product_id)
    paid_with = None if booked.credit_id is None else await deps.store.credits.credit(booked.credit_id)
    return ChangeBooked(booked, product.view() if product else None, paid_with)
