"""The special request flow's contract (docs/flows.md#special-request).

A special request ``SR-…`` is ``requested`` until the airline answers, then ``confirmed`` or
``declined``. It is not a mutating flow: it never takes the product's one-active-flow lock, so it
neither waits for nor blocks a cancellation or a change (the airline attaches it to whatever
itinerary the traveller ends up on).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel

from domain.flow_info import FlowInfo, FlowInput
from domain.products import SpecialRequestOption

SpecialRequestStatus = Literal["requested", "confirmed", "declined"]
SupplierVerdict = Literal["confirmed", "declined", "pending"]

SPECIAL_REQUEST_CONFIRMED = "special_request.confirmed"
SPECIAL_REQUEST_DECLINED = "special_request.declined"


class SpecialRequestInfo(FlowInfo):
    """``GET /v1/special-requests/{request_id}``; ``request_id`` is the flow code."""

    status: SpecialRequestStatus
    request_id: str
    option: SpecialRequestOption
    traveller_id: str
    note: str | None = None
    reason: str | None = None  # why the airline declined


class SpecialRequestInput(FlowInput):
    option: SpecialRequestOption
    traveller_id: str
    note: str | None = None
    # Flows started before the supplier said itself when it would answer waited this long;
    # newer flows ask the supplier (``submit_special_request``) and leave it None.
    supplier_delay: timedelta | None = None

    def initial_info(self) -> SpecialRequestInfo:
        return SpecialRequestInfo(
            **self.identity(),
            status="requested",
            request_id=self.code,
            option=self.option,
            traveller_id=self.traveller_id,
            note=self.note,
        )


class SpecialRequestAsk(BaseModel):
    """What the supplier is asked."""

    request_id: str
    product_id: str
    option_code: str
    traveller_id: str
    note: str | None = None


class SupplierAnswer(BaseModel):
    """The airline's answer; ``pending`` when it has not decided yet: ask again after ``retry_after``."""

    status: SupplierVerdict
    reason: str | None = None
    retry_after: timedelta | None = None
