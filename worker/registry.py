"""What the worker runs: every workflow, and the activities wired to their real ports."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from activities.flows import FlowActivities
from activities.ports import Supplier
from activities.supplier import SupplierActivities
from activities.triggers import TriggerActivities
from config.settings import Settings
from store.facade import Store
from store.sandbox_supplier import SandboxSupplier
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


def build_supplier(settings: Settings, engine: AsyncEngine) -> Supplier:
    """The sandbox supplier by default; ``AFTERSALES_SUPPLIER=package.module:factory`` plugs in a real one.

    The factory is called with ``(settings, engine)`` and returns an object of the Supplier port.
    """
    if settings.supplier == "sandbox":
        return SandboxSupplier(engine)
    module_name, _, attribute = settings.supplier.partition(":")
    factory = getattr(importlib.import_module(module_name), attribute)
    return factory(settings, engine)


def build_activities(settings: Settings, store: Store) -> list[Callable[..., Any]]:
    flows = FlowActivities(store.flows)
    supplier = SupplierActivities(build_supplier(settings, store.engine))
    triggers = TriggerActivities(store.events)
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
