"""Calls to the supplier on a flow's behalf.

Workflows call these methods by reference (``workflows.supplier_steps``). The names they are
registered under are what workflow histories and activities already scheduled carry: they never
change, whatever the methods are called.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import TypeVar

from opentelemetry.trace import SpanKind
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from config.telemetry import TRACER
from domain.products import ProductSpec, Segment
from domain.special_request_flow import SpecialRequestAsk, SupplierAnswer
from ports.supplier import Supplier, SupplierRefused

# The ApplicationError type of a refusal: the supplier answered no. Not retried; the flow ends ``failed``.
SUPPLIER_REFUSED = "supplier_refused"

# Heartbeats tell Temporal within SUPPLIER_HEARTBEAT_TIMEOUT (workflows.supplier_steps) that the
# worker making a supplier call has died, so another worker retries it at once instead of after the
# call's timeout.
HEARTBEAT_EVERY_S = 2.0
T = TypeVar("T")


async def _heartbeating(operation: str, call: Awaitable[T], **attributes: str) -> T:
    """Await the supplier's answer, heartbeating while it takes; a refusal becomes the flow's answer.

    The call runs in a client span ``supplier <operation>`` (docs/operations.md#traces): an adapter
    that speaks HTTP sends it on as ``traceparent`` (``config.telemetry.outgoing_headers``)."""
    with TRACER.start_as_current_span(f"supplier {operation}", kind=SpanKind.CLIENT, attributes={
        f"aftersales.{name}": value for name, value in attributes.items()
    }):
        # Created inside the span: the call's task runs in it.
        answer = asyncio.ensure_future(call)
        return await _answer(answer)


async def _answer(answer: asyncio.Future[T]) -> T:
    try:
        while True:
            done, _ = await asyncio.wait({answer}, timeout=HEARTBEAT_EVERY_S)
            if done:
                return answer.result()
            activity.heartbeat()
    except SupplierRefused as refused:
        raise _refusal(refused) from refused
    finally:
        answer.cancel()


class SupplierActivities:
    def __init__(self, supplier: Supplier) -> None:
        self._supplier = supplier

    @activity.defn(name="cancel_at_supplier")
    async def cancel_at_supplier(self, product_id: str, flow_code: str, traveller_ids: list[str] | None = None) -> None:
        """``traveller_ids``: the travellers to cancel (a partial cancellation); None: the whole product."""
        await _heartbeating("cancel_product", self._supplier.cancel_product(product_id, flow_code, traveller_ids),
                           product_id=product_id, flow_code=flow_code)

    @activity.defn(name="reschedule_at_supplier")
    async def reschedule_at_supplier(self, product_id: str, segments: list[Segment], flow_code: str) -> None:
        await _heartbeating("reschedule_product", self._supplier.reschedule_product(product_id, segments, flow_code),
                           product_id=product_id, flow_code=flow_code)

    @activity.defn(name="apply_change")
    async def apply_change(self, product_id: str, itinerary: ProductSpec | None, flow_code: str) -> None:
        await _heartbeating("apply_change", self._supplier.apply_change(product_id, itinerary, flow_code),
                           product_id=product_id, flow_code=flow_code)

    @activity.defn(name="submit_special_request")
    async def submit_special_request(self, ask: SpecialRequestAsk) -> timedelta:
        """How long until the airline answers: the flow asks for the answer then."""
        return await _heartbeating("submit_special_request", self._supplier.submit_special_request(ask),
                                  product_id=ask.product_id)

    @activity.defn(name="ask_special_request")
    async def ask_special_request(self, ask: SpecialRequestAsk) -> SupplierAnswer:
        return await _heartbeating("answer_special_request", self._supplier.answer_special_request(ask),
                                  product_id=ask.product_id)


def _refusal(refused: SupplierRefused) -> ApplicationError:
    """A refusal is an answer, not an outage: the flow turns it into ``failed``, and BENIGN keeps
    it out of error logs and failure metrics."""
    return ApplicationError(
        refused.reason, type=SUPPLIER_REFUSED, non_retryable=True, category=ApplicationErrorCategory.BENIGN
    )
