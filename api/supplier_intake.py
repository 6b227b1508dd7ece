"""Supplier pushes (docs/api.md#supplier-pushes), the gateway's side of the one entry point for
airline schedule changes (``services.reschedulings.receive_schedule_change``, docs/rescheduling.md).

- The admin registers a supplier with the carriers it sells (``POST /v1/admin/suppliers``): a key of
  role ``supplier`` bound to those carriers, and a secret the supplier signs its pushes with.
- The supplier pushes a change (``POST /v1/supplier/schedule-changes``) with its key **and** an
  ``Aftersales-Signature`` over the raw body (the scheme of docs/triggers.md). The signature is
  checked before the body is even parsed.
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.app_keys import DEPS
from api.endpoints import Reply, RequestGuard, Resource
from api.problems import Problem
from domain.disruptions import SchedulePush
from domain.signature import SIGNATURE_HEADER, verify
from services import accounts, disruptions, reschedulings
from services.requester import Requester
from store.accounts import Principal
from store.supplier_accounts import SupplierAccount

# As for triggers (docs/triggers.md): a signature older (or newer) than this is refused, so a
# captured push cannot be replayed later.
SIGNATURE_TOLERANCE_S = 300

admin_resource = Resource("admin")
resource = Resource("supplier")
SUPPLIER_ACCOUNT = web.RequestKey("supplier_account", SupplierAccount)


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
async def create_supplier(request: web.Request, requester: Requester, body: NewSupplierBody) -> Reply:
    created = await accounts.register_supplier(request.app[DEPS], body.name, body.carriers)
    account = created.account
    return Reply(201, SupplierCreated(supplier_id=account.supplier_id, name=account.name, carriers=list(account.carriers),
                                      api_key=created.api_key, signing_secret=account.signing_secret))


# --- the supplier pushes a change -------------------------------------------------------------

async def _signed_by_the_supplier(request: web.Request, who: Principal | None) -> None:
    """401 unless the raw body carries a fresh signature with the calling supplier's secret."""
    account = await accounts.supplier_account(request.app[DEPS], who.principal_id) if who is not None else None
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
    """A product's change answers its flow (``code``); a flight's, its disruption (``disruption_id``, ``affected``)."""

    status: Literal["received"]
    code: str | None = Field(default=None, description="the rescheduling flow (RS-…) a product's change started, or had started")
    disruption_id: str | None = Field(default=None,
                                      description="the disruption (dsr_…) a flight's change recorded, or had recorded")
    affected: int | None = Field(default=None,
                                 description="a flight's change: its products (not cancelled) when it was first received")


@resource.route("POST", "/v1/supplier/schedule-changes", summary="A supplier pushes a schedule change of a product or a flight",
                roles=("supplier",), body=SchedulePush, guard=SIGNED, answers={202: ChangeReceived})
async def push_schedule_change(request: web.Request, requester: Requester, body: SchedulePush) -> Reply:
    deps, supplier = request.app[DEPS], request[SUPPLIER_ACCOUNT]
    change, flight_change = body.of_product(), body.of_flight()
    if change is not None:
        code = await reschedulings.receive_schedule_change(deps, change, supplier)
        return Reply(202, ChangeReceived(status="received", code=code))
    assert flight_change is not None  # SchedulePush names one or the other
    disruption = await disruptions.receive_disruption(deps, flight_change, supplier)
    return Reply(202, ChangeReceived(status="received", disruption_id=disruption.disruption_id, affected=disruption.affected))
