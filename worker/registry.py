"""What the worker runs: every workflow, and the activities wired to their real ports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from activities.ports import EventOutbox, FlowStore, Supplier
from activities.supplier_calls import SupplierActivities
from activities.supplier_factory import build_supplier
from activities.transitions import FlowActivities
from activities.webhooks import TriggerActivities
from config.settings import Settings
from store.facade import Store
from workflows.cancellation import CancellationWorkflow
from workflows.change import ChangeWorkflow
from workflows.rescheduling import ReschedulingWorkflow
from workflows.special_request import SpecialRequestWorkflow
from workflows.trigger_delivery import TriggerDeliveryWorkflow

WORKFLOWS: list[type] = [
    CancellationWorkflow,
    ChangeWorkflow,
    ReschedulingWorkflow,
    SpecialRequestWorkflow,
    TriggerDeliveryWorkflow,
]


def activities_over(
    flows: FlowStore, supplier: Supplier, outbox: EventOutbox, http: aiohttp.ClientSession | None = None
) -> list[Callable[..., Any]]:
    """Every activity, over the given ports: the worker passes the real ones, tests pass fakes."""
    flow_activities = FlowActivities(flows)
    supplier_activities = SupplierActivities(supplier)
    triggers = TriggerActivities(outbox, http)
    return [
        flow_activities.record_flow,
        flow_activities.acquire_product,
        supplier_activities.cancel_at_supplier,
        supplier_activities.reschedule_at_supplier,
        supplier_activities.apply_change,
        supplier_activities.submit_special_request,
        supplier_activities.ask_special_request,
        triggers.deliver_event,
        triggers.mark_failed,
    ]


def build_activities(
    settings: Settings, store: Store, http: aiohttp.ClientSession | None = None
) -> list[Callable[..., Any]]:
    """``http`` is the worker's long-lived session for webhook deliveries (one connection pool)."""
    return activities_over(store.flows, build_supplier(settings, store.engine), store.events, http)
