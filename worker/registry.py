"""What the worker runs: every workflow, and the activities wired to their real ports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from activities.flows import FlowActivities
from activities.supplier import SupplierActivities
from activities.triggers import TriggerActivities
from config.settings import Settings
from store.facade import Store
from store.suppliers import build_supplier
from workflows.cancellation import CancellationWorkflow
from workflows.change import ChangeWorkflow
from workflows.rescheduling import ReschedulingWorkflow
from workflows.special_request import SpecialRequestWorkflow
from workflows.triggers import TriggerDeliveryWorkflow

WORKFLOWS: list[type] = [
    CancellationWorkflow,
    ChangeWorkflow,
    ReschedulingWorkflow,
    SpecialRequestWorkflow,
    TriggerDeliveryWorkflow,
]


def build_activities(
    settings: Settings, store: Store, http: aiohttp.ClientSession | None = None
) -> list[Callable[..., Any]]:
    """``http`` is the worker's long-lived session for webhook deliveries (one connection pool)."""
    flows = FlowActivities(store.flows)
    supplier = SupplierActivities(build_supplier(settings, store.engine))
    triggers = TriggerActivities(store.events, http)
    return [
        flows.record_flow,
        flows.acquire_product,
        supplier.cancel_at_supplier,
        supplier.reschedule_at_supplier,
        supplier.apply_change,
        supplier.ask_special_request,
        triggers.deliver_event,
        triggers.mark_failed,
    ]
