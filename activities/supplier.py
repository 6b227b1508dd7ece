"""Calls to the supplier on a flow's behalf."""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.ports import Supplier, SupplierRefused
from domain.flows import CANCEL_AT_SUPPLIER, SUPPLIER_REFUSED


class SupplierActivities:
    def __init__(self, supplier: Supplier) -> None:
        self._supplier = supplier

    @activity.defn(name=CANCEL_AT_SUPPLIER)
    async def cancel_at_supplier(self, product_id: str, flow_code: str) -> None:
        try:
            await self._supplier.cancel_product(product_id, flow_code)
        except SupplierRefused as refused:
            # A refusal is an answer, not an outage: the flow turns it into ``failed``, and
            # BENIGN keeps it out of error logs and failure metrics.
            raise ApplicationError(
                refused.reason, type=SUPPLIER_REFUSED, non_retryable=True, category=ApplicationErrorCategory.BENIGN
            ) from refused
