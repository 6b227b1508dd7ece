"""Changes (docs/api.md#changes): allowance → alternatives → context
(pre-book) → book, and the change's flow info. The agent's checkout path is in ``api.checkouts``;
both drive ``workflows.change.ChangeWorkflow`` through the helpers here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from api.access import product_state, visible_flow, visible_product
from api.app_keys import SETTINGS, STORE, SUPPLIER
from api.endpoints import Reply, Resource
from api.flow_start import NewFlow, opening, start_flow, update_flow
from api.problems import invalid_field, not_found, refused
from api.request_ids import token
from domain.allowance import change_allowance
from domain.change_flow import CONTEXT_PREFIX, Booking, ChangeInfo, ChangeInput, code_of
from domain.change_pricing import ChangeSearch, DateIncompatible, SearchInvalid, fingerprint
from domain.codes import ITINERARY_ID, FlowKind
from domain.money import Money
from domain.products import ProductSpec
from domain.refusals import Refusal
from store.accounts import Principal
from store.change_offers import ChangeOffer
from store.reservation_records import ProductRecord
from workflows.change import ChangeWorkflow

resource = Resource("changes")
_PRODUCT: TypeAdapter[ProductSpec] = TypeAdapter(ProductSpec)
_SHOWN = {"flight": {"carrier", "segments"}, "hotel": {"hotel", "check_in", "check_out"}}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChangeAllowance(BaseModel):
    product_id: str
    allowed: bool
    manual: bool = Field(description="true: an agent changes it by checkout; false: alternatives → context → book")
    reasons: list[str]


class AlternativeItem(BaseModel):
    """One itinerary: ``carrier`` and ``segments`` for a flight, ``hotel``, ``check_in``, ``check_out`` for a hotel."""

    model_config = ConfigDict(extra="allow")
    itinerary_id: str
    price: Money = Field(description="the product's price after the change: price + max(fare_difference, 0)")
    fare_difference: Money
    change_fee: Money
    total_due: Money = Field(description="max(fare_difference, 0) + change_fee: a cheaper fare is not refunded")
    expires_at: datetime


class Alternatives(BaseModel):
    items: list[AlternativeItem]


class NewContext(_Body):
    itinerary_id: str = Field(min_length=1, max_length=60)


class ChangeContext(BaseModel):
    context_id: str
    code: str
    product_id: str
    itinerary_id: str
    total_due: Money
    expires_at: datetime


class BookContext(_Body):
    invoice_hint: str | None = Field(default=None, max_length=200)


class BookedChange(BaseModel):
    code: str
    status: str
    product: dict[str, Any] | None = None


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _refusals(request: web.Request, product: ProductRecord, spec: ProductSpec) -> list[str]:
    return change_allowance(await product_state(request, product), spec.change_policy.changeable, _now())


async def refuse_unless_changeable(request: web.Request, product: ProductRecord, spec: ProductSpec) -> None:
    """409 ``flow_in_progress`` or ``change_disallowed`` (reasons in the detail) unless the allowance allows."""
    reasons = await _refusals(request, product, spec)
    if "flow_in_progress" in reasons:
        raise refused(Refusal.FLOW_IN_PROGRESS, "the product has an active flow; try again when it ends")
    if reasons:
        raise refused(Refusal.CHANGE_DISALLOWED, f"the product cannot be changed: {', '.join(reasons)}")


async def change_info(request: web.Request, who: Principal, prefix: str, public_id: str, what: str) -> ChangeInfo:
    """The change a public id names (``CTX-…`` an automatic change's context; ``CHK-…`` and ``CCX-…``
    an agent's checkout and its context), as stored, if the caller may see it."""
    info = ChangeInfo.model_validate(await visible_flow(request, who, code_of(prefix, public_id), FlowKind.CHANGE, what))
    if (info.resolution == "manual") != (prefix != CONTEXT_PREFIX):
        raise not_found(what)
    return info


async def run_change_update(
    request: web.Request, info: ChangeInfo, update: Any, argument: BaseModel
) -> ChangeInfo | None:
    """The workflow's answer while the change runs, its final state once it has finished; None when
    it took the input and is still working on it after the sync wait."""
    answer: ChangeInfo | None = await update_flow(request, info.code, update, argument, on_closed=lambda final: final)
    return answer


async def book(request: web.Request, info: ChangeInfo, booking: Booking) -> Reply:
    """Book a change and answer with its outcome; booking the same context again answers the same."""
    booked = await run_change_update(request, info, ChangeWorkflow.book, booking)
    if booked is None:
        return Reply(202, BookedChange(code=info.code, status="processing"))
    info = booked
    if info.status == "expired":
        if info.resolution == "manual":
            raise refused(Refusal.CHECKOUT_EXPIRED, "the checkout has expired: ask the service center for a new one")
        raise refused(Refusal.CONTEXT_EXPIRED, "the change context has expired: search alternatives again")
    if info.status == "failed":
        raise refused(Refusal.CHANGE_FAILED, f"the supplier refused the change: {info.failure}")
    if info.status != "modified":
        raise refused(Refusal.NOT_AWAITING_BOOKING, f"change {info.code} is {info.status}")
    product = await request.app[STORE].reservations.product(info.product_id)
    return Reply(200, BookedChange(code=info.code, status=info.status, product=product.view() if product else None))


def _itinerary_fields(itinerary: ProductSpec) -> dict[str, Any]:
    """What an alternative shows of the product it would make: ``segments`` or the hotel's fields, and its price."""
    return itinerary.model_dump(mode="json", include=_SHOWN.get(itinerary.kind, set()) | {"price"})


@resource.route("GET", "/v1/products/{product_id}/change-allowance", summary="May this product be changed",
                roles=("partner", "agent"), answers={200: ChangeAllowance})
async def get_allowance(request: web.Request, who: Principal) -> Reply:
    product = await visible_product(request, who, request.match_info["product_id"])
    spec: ProductSpec = product.spec
    reasons = await _refusals(request, product, spec)
    return Reply(200, ChangeAllowance(product_id=product.product_id, allowed=not reasons,
                                      manual=spec.change_policy.manual, reasons=reasons))


@resource.route("POST", "/v1/products/{product_id}/change-alternatives", summary="Itineraries to change to",
                roles=("partner",), body=ChangeSearch, answers={200: Alternatives})
async def search_alternatives(request: web.Request, who: Principal, body: ChangeSearch) -> Reply:
    product = await visible_product(request, who, request.match_info["product_id"])
    spec: ProductSpec = product.spec
    await refuse_unless_changeable(request, product, spec)
    if spec.change_policy.manual:
        raise refused(Refusal.MANUAL_CHANGE, "this product is changed by the service center: an agent issues a checkout")
    now = _now()
    try:
        found = await request.app[SUPPLIER].change_alternatives(product.product_id, body, now)
    except DateIncompatible as exc:
        raise refused(Refusal.DATE_INCOMPATIBLE, str(exc)) from None
    except SearchInvalid as exc:
        raise invalid_field(exc.field, exc.message) from None
    expires_at = now + request.app[SETTINGS].quote_ttl
    base = fingerprint(product.details)
    offers = [
        ChangeOffer(
            itinerary_id=token(request, ITINERARY_ID), product_id=product.product_id, partner_id=who.principal_id,
            base_fingerprint=base, itinerary=found_one.itinerary.model_dump(mode="json"),
            created_at=now, expires_at=expires_at, **found_one.charges.model_dump(mode="json"),
        )
        for found_one in found
    ]
    await request.app[STORE].change_offers.save(offers)
    items = [
        AlternativeItem(itinerary_id=offer.itinerary_id, expires_at=expires_at,
                        **_itinerary_fields(alternative.itinerary), **alternative.charges.model_dump())
        for offer, alternative in zip(offers, found, strict=True)
    ]
    return Reply(200, Alternatives(items=items))


@resource.route("POST", "/v1/change-contexts", summary="Pre-book an alternative: hold its price",
                roles=("partner",), body=NewContext, answers={201: ChangeContext})
async def create_context(request: web.Request, who: Principal, body: NewContext) -> Reply:
    async def prepare(code: str) -> NewFlow:
        offer = await request.app[STORE].change_offers.offer(body.itinerary_id)
        if offer is None or offer.partner_id != who.principal_id:
            raise not_found("itinerary")
        product = await visible_product(request, who, offer.product_id)
        spec: ProductSpec = product.spec
        await refuse_unless_changeable(request, product, spec)
        now = _now()
        if offer.expires_at <= now:
            raise refused(Refusal.ITINERARY_EXPIRED, "the alternative has expired: search alternatives again")
        if offer.base_fingerprint != fingerprint(product.details):
            raise refused(Refusal.ITINERARY_SUPERSEDED, "the product changed since this alternative was offered")
        return NewFlow(FlowKind.CHANGE, ChangeInput(
            **opening(request, code, product),
            resolution="automatic",
            total_due=Money.model_validate(offer.total_due),
            expires_at=now + request.app[SETTINGS].change_context_ttl,
            itinerary=_PRODUCT.validate_python(offer.itinerary),
            itinerary_id=offer.itinerary_id,
            fare_difference=Money.model_validate(offer.fare_difference),
            change_fee=Money.model_validate(offer.change_fee),
        ))

    info = (await start_flow(request, FlowKind.CHANGE, prepare)).info
    assert isinstance(info, ChangeInfo) and info.context_id is not None and info.itinerary_id is not None
    return Reply(201, ChangeContext(context_id=info.context_id, code=info.code, product_id=info.product_id,
                                    itinerary_id=info.itinerary_id, total_due=info.total_due,
                                    expires_at=info.expires_at))


@resource.route("POST", "/v1/change-contexts/{context_id}/book", summary="Book a pre-booked change",
                roles=("partner",), body=BookContext, answers={200: BookedChange, 202: BookedChange})
async def book_context(request: web.Request, who: Principal, body: BookContext) -> Reply:
    info = await change_info(request, who, CONTEXT_PREFIX, request.match_info["context_id"], "change context")
    return await book(request, info, Booking(invoice_hint=body.invoice_hint))


@resource.route("GET", "/v1/changes/{code}", summary="A change's flow info",
                roles=("partner", "agent"), answers={200: ChangeInfo})
async def get_change(request: web.Request, who: Principal) -> Reply:
    return Reply(200, await visible_flow(request, who, request.match_info["code"], FlowKind.CHANGE, "change"))
