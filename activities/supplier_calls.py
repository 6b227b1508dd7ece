"""Calls to the supplier on a flow's behalf."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.ports import Supplier, SupplierRefused
from domain.activity_names import (
    APPLY_CHANGE,
    ASK_SPECIAL_REQUEST,
    CANCEL_AT_SUPPLIER,
    RESCHEDULE_AT_SUPPLIER,
    SUBMIT_SPECIAL_REQUEST,
    SUPPLIER_REFUSED,
)
from domain.products import ProductSpec, Segment
from domain.special_request_flow import SpecialRequestAsk, SupplierAnswer


class SupplierActivities:
    def __init__(self, supplier: Supplier) -> None:
        self._supplier = supplier

    @activity.defn(name=CANCEL_AT_SUPPLIER)
    async def cancel_at_supplier(self, product_id: str, flow_code: str) -> None:
        try:
            await self._supplier.cancel_product(product_id, flow_code)
        except SupplierRefused as refused:
            raise _refusal(refused) from refused

    @activity.defn(name=RESCHEDULE_AT_SUPPLIER)
    async def reschedule_at_supplier(self, product_id: str, segments: list[Segment], flow_code: str) -> None:
        try:
            await self._supplier.reschedule_product(product_id, segments, flow_code)
        except SupplierRefused as refused:
            raise _refusal(refused) from refused

    @activity.defn(name=APPLY_CHANGE)
    async def apply_change(self, product_id: str, itinerary: ProductSpec | None, flow_code: str) -> None:
        try:
            await self._supplier.apply_change(product_id, itinerary, flow_code)
        except SupplierRefused as refused:
            raise _refusal(refused) from refused

    @activity.defn(name=SUBMIT_SPECIAL_REQUEST)
    async def submit_special_request(self, ask: SpecialRequestAsk) -> timedelta:
        """How long until the airline answers: the flow asks for the answer then."""
        return await self._supplier.submit_special_request(ask)

    @activity.defn(name=ASK_SPECIAL_REQUEST)
    async def ask_special_request(self, ask: SpecialRequestAsk) -> SupplierAnswer:
        return await self._supplier.answer_special_request(ask)


def _refusal(refused: SupplierRefused) -> ApplicationError:
    """A refusal is an answer, not an outage: the flow turns it into ``failed``, and BENIGN keeps
    it out of error logs and failure metrics."""
    return ApplicationError(
        refused.reason, type=SUPPLIER_REFUSED, non_retryable=True, category=ApplicationErrorCategory.BENIGN
    )
