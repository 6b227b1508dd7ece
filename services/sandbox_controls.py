"""What the sandbox's own endpoints do (docs/api.md#sandbox): a reservation created in the embedded
supplier, and the sandbox airline's schedule change, received like any supplier's push."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from domain.codes import SANDBOX_CHANGE_ID
from domain.products import FlightProduct, ReservationSpec
from domain.refusals import not_found
from domain.rescheduling_flow import ChangeKind, ScheduleChange, shifted
from services.bootstrap import Deps
from services.requester import Requester
from services.reschedulings import receive_schedule_change
from services.visibility import visible_product, visible_reservation


async def create_reservation(deps: Deps, requester: Requester, spec: ReservationSpec) -> dict[str, Any]:
    """The reservation as the partner reads it back; its ids come from the request's (a retry under
    the same Idempotency-Key creates nothing twice)."""
    reservation_id = await deps.store.reservations.create(requester.principal.principal_id, spec, requester.ids)
    return await visible_reservation(deps, requester.principal, reservation_id)


async def mock_schedule_change(deps: Deps, requester: Requester, product_id: str, kind: ChangeKind, delay_minutes: int) -> str:
    """The sandbox airline moves (``time_change``, by ``delay_minutes``) or cancels one of the
    partner's flights; the rescheduling flow's code."""
    product = await visible_product(deps, requester.principal, product_id)
    flight = product.spec
    if not isinstance(flight, FlightProduct):
        raise not_found("flight product")
    proposed = shifted(flight.segments, timedelta(minutes=delay_minutes)) if kind == "time_change" else []
    change = ScheduleChange(
        # Each mock is a new change, as a real airline's next push would be.
        change_id=requester.new_id(SANDBOX_CHANGE_ID),
        product_id=product.product_id,
        kind=kind,
        proposed_segments=proposed,
    )
    # The same entry point a supplier's push takes in production.
    return await receive_schedule_change(deps, change)
