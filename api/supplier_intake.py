"""The one entry point for airline schedule changes (docs/rescheduling.md): whoever receives a
supplier's push (a supplier adapter in production, the sandbox airline's mock) hands it to
:func:`receive_schedule_change`, which starts the product's rescheduling flow.

A push is delivered at least once. Its flow code is derived from the supplier's change id, so a
re-delivery finds the flow it started (running or finished) and starts nothing; the first delivery
wins if a re-delivery carries different content.
"""

from __future__ import annotations

from api.flow_start import FlowStarter, NewFlow
from domain.codes import FlowKind
from domain.products import FlightProduct
from domain.rescheduling_flow import ReschedulingInput, ScheduleChange, new_rescheduling
from store.facade import Store


class NotAFlightProduct(LookupError):
    """The change names no product we sold, or one that is not a flight: there is nothing to reschedule."""


async def receive_schedule_change(starter: FlowStarter, store: Store, change: ScheduleChange) -> str:
    """Index the change's flow and start it; the flow code. Never refused for a busy product: the
    flow waits for the product's other flow to end (``waiting_for_product``)."""
    product = await store.reservations.product(change.product_id)
    flight = product.spec if product is not None else None
    if product is None or not isinstance(flight, FlightProduct):
        raise NotAFlightProduct(change.product_id)
    info = new_rescheduling(change, flight, product.reservation_id, product.partner_id)
    settings = starter.settings
    flow_input = ReschedulingInput(info=info, window=settings.rescheduling_window,
                                   webhook_retry_for=settings.webhook_retry_for)
    # Indexed before the workflow starts, so the reservation lists the flow as soon as we answer.
    await starter.start(NewFlow(FlowKind.RESCHEDULING, flow_input, exclusive=False))
    return info.code
