"""Supplier pushes (docs/api.md#supplier-pushes) and the one entry point for airline schedule changes
(docs/rescheduling.md).

- The admin registers a supplier with the carriers it sells (``POST /v1/admin/suppliers``): a key of
  role ``supplier`` bound to those carriers, and a secret the supplier signs its pushes with.
- The supplier pushes a change (``POST /v1/supplier/schedule-changes``) with its key **and** an
  ``Aftersales-Signature`` over the raw body (the scheme of docs/triggers.md). The signature is
  checked before the body is even parsed.
- Whoever receives a change (that route, or the sandbox airline's mock) hands it to
  :func:`receive_schedule_change`, which starts the product's rescheduling flow.

A push is delivered at least once. Its flow code is derived from the product and the supplier's
change id, so a re-delivery (also a concurrent one) finds the flow it started, running or
finished, and starts nothing; the first delivery wins if a re-delivery carries different content.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from typing import Annotated, Literal

import structlog
from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.app_keys import STORE
from api.endpoints import Reply, RequestGuard, Resource
from api.flow_start import FlowStarter, NewFlow, starter
from api.problems import Problem, not_found
from domain.codes import FlowKind
from domain.flow_info import is_terminal
from domain.products import FlightProduct
from domain.rescheduling_flow import ReschedulingInput, ScheduleChange, new_rescheduling
from domain.signature import SIGNATURE_HEADER, verify
from store.accounts import Principal
from store.repositories import Store
from store.supplier_accounts import SupplierAccount

log = structlog.get_logger("api.supplier_intake")

# As for triggers (docs/triggers.md): a signature older (or newer) than this is refused, so a
# captured push cannot be replayed later.
SIGNATURE_TOLERANCE_S = 300

admin_resource = Resource("admin")
resource = Resource("supplier")
SUPPLIER_ACCOUNT = web.RequestKey("supplier_account", SupplierAccount)


class NotAFlightProduct(LookupError):
    """The change names no flight product we sold (of the pushing supplier's carriers): there is nothing to reschedule."""


async def receive_schedule_change(
    starter: FlowStarter, store: Store, change: ScheduleChange, carriers: Collection[str] | None = None
) -> str:
    """Index the change's flow and start it; the flow code. Never refused for a busy product: the
    flow waits for the product's other flow to end (``waiting_for_product``).

    ``carriers``: the carriers the sender sells (None: any, the sandbox airline); a product of
    another carrier is not the sender's to change.
    """
    product = await store.reservations.product(change.product_id)
    flight = product.spec if product is not None else None
    if product is None or not isinstance(flight, FlightProduct) or (carriers is not None and flight.carrier not in carriers):
        raise NotAFlightProduct(change.product_id)
    info = new_rescheduling(change, flight, product.reservation_id, product.partner_id)
    existing = await store.flows.flow(info.code)
    if existing is not None and is_terminal(existing.status):
        # Re-delivered after its flow ended: the same answer, and nothing starts again (even once
        # Temporal no longer remembers the finished workflow).
        return info.code
    settings = starter.settings
    flow_input = ReschedulingInput(info=info, window=settings.rescheduling_window,
                                   webhook_retry_for=settings.webhook_retry_for,
                                   action_time_limit=change.action_time_limit)
    # Indexed before the workflow starts, so the reservation lists the flow as soon as we answer.
    await starter.start(NewFlow(FlowKind.RESCHEDULING, flow_input, exclusive=False))
    return info.code


# --- the admin registers a supplier -----------------------------------------------------------

CarrierCode = Annotated[str, Field(pattern=r"^[A-Z0-9]{2}$")]


class NewSupplierBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    carriers: list[CarrierCode] = Field(min_length=1, max_length=100,
                                        description="IATA codes of the carriers it sells, e.g. [\"ZZ\"]")


class SupplierCreated(BaseModel):
    supplier_id: str
    name: str
    carriers: list[str]
    api_key: str = Field(description="Shown only in this answer")
    signing_secret: str = Field(description="Signs the supplier's pushes; shown only in this answer")


@admin_resource.route("POST", "/v1/admin/suppliers", summary="Register a supplier that pushes schedule changes",
                      roles=("admin",), body=NewSupplierBody, answers={201: SupplierCreated})
async def create_supplier(request: web.Request, who: Principal, body: NewSupplierBody) -> Reply:
    created = await request.app[STORE].suppliers.create(body.name, body.carriers)
    account = created.account
    log.info("supplier_created", supplier_id=account.supplier_id, carriers=list(account.carriers))
    return Reply(201, SupplierCreated(supplier_id=account.supplier_id, name=account.name, carriers=list(account.carriers),
                                      api_key=created.api_key, signing_secret=account.signing_secret))


# --- the supplier pushes a change -------------------------------------------------------------

async def _signed_by_the_supplier(request: web.Request, who: Principal | None) -> None:
    """401 unless the raw body carries a fresh signature with the calling supplier's secret."""
    account = await request.app[STORE].suppliers.find(who.principal_id) if who is not None else None
    if account is None:
        raise Problem(401, "unauthorized", "unknown API key")
    header = request.headers.get(SIGNATURE_HEADER, "")
    # aiohttp keeps the body it read: the declared model parses the same bytes afterwards.
    raw = await request.read()
    if not verify(account.signing_secret, header, raw, SIGNATURE_TOLERANCE_S, time.time()):
        raise Problem(401, "invalid_signature",
                      f"{SIGNATURE_HEADER} must sign this exact body with your signing secret, dated within 5 minutes")
    request[SUPPLIER_ACCOUNT] = account


SIGNED = RequestGuard(
    header=SIGNATURE_HEADER,
    description="t=<unix seconds>,v1=<hex HMAC-SHA256(signing_secret, \"<t>.<raw body>\")>; older than 5 minutes: 401",
    check=_signed_by_the_supplier,
)


class ChangeReceived(BaseModel):
    status: Literal["received"]
    code: str = Field(description="the rescheduling flow (RS-…) this change started, or had started")


@resource.route("POST", "/v1/supplier/schedule-changes", summary="A supplier pushes a schedule change",
                roles=("supplier",), body=ScheduleChange, guard=SIGNED, answers={202: ChangeReceived})
async def push_schedule_change(request: web.Request, who: Principal, body: ScheduleChange) -> Reply:
    account = request[SUPPLIER_ACCOUNT]
    try:
        code = await receive_schedule_change(starter(request), request.app[STORE], body, account.carriers)
    except NotAFlightProduct:
        # Another carrier's product answers like an unknown one: existence does not leak.
        raise not_found("flight product of your carriers") from None
    log.info("schedule_change_received", supplier_id=account.supplier_id, change_id=body.change_id,
             product_id=body.product_id, flow_code=code)
    return Reply(202, ChangeReceived(status="received", code=code))
