"""What the worker runs: every workflow, and the activities wired to their real ports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp
from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.credit_expiries import CreditActivities
from activities.disruptions import DisruptionActivities
from activities.supplier_calls import SupplierActivities
from activities.transitions import FlowActivities
from activities.webhooks import PER_RECEIVER, TriggerActivities
from config.settings import Settings
from domain.disruptions import FanOutBatch, FanOutPage
from domain.webhook_urls import WebhookPolicy
from ports.disruptions import DisruptionFanOut
from ports.recording import CreditStore, EventOutbox, FlowStore
from ports.supplier import Supplier, build_supplier
from ports.webhook_guard import WebhookGuard
from services.disruptions import FanOut
from store.repositories import Store
from workflows.cancellation import CancellationWorkflow
from workflows.change import ChangeWorkflow
from workflows.credit_expiry import CreditExpiryWorkflow
from workflows.disruption import DisruptionFanOutWorkflow
from workflows.rescheduling import ReschedulingWorkflow
from workflows.special_request import SpecialRequestWorkflow
from workflows.trigger_delivery import TriggerDeliveryWorkflow

WORKFLOWS: list[type] = [
    CancellationWorkflow,
    ChangeWorkflow,
    ReschedulingWorkflow,
    SpecialRequestWorkflow,
    TriggerDeliveryWorkflow,
    CreditExpiryWorkflow,
    DisruptionFanOutWorkflow,
]

# The workflow sandbox re-imports, for every workflow run it starts or replays, each module it
# does not pass through (and compiles it from source when no bytecode is cached). Ours are
# deterministic and side-effect free at import: the workflows (only definitions and constants
# at module level; the state of a run lives in its instance) and the domain they compute with,
# with pydantic under the domain's models. Passed through, a run costs an instance, not an
# import; the sandbox's runtime restrictions (no I/O, no clock, no randomness) still apply.
# The activity classes a workflow references (and aiohttp, SQLAlchemy beneath them) are imported
# by the workflow modules under ``workflow.unsafe.imports_passed_through()``: never inside the
# sandbox, even under a runner that passes nothing of ours through (tests/workflows/test_replay.py).
# The worker, every test harness and the replayer use this one runner.
WORKFLOW_RUNNER = SandboxedWorkflowRunner(
    restrictions=SandboxRestrictions.default.with_passthrough_modules(
        "workflows", "domain", "pydantic", "pydantic_core", "annotated_types", "typing_inspection"
    )
)


def workflow_worker(client: Client, task_queue: str, activities: list[Callable[..., Any]], **options: Any) -> Worker:
    """A worker running every workflow of ours, in :data:`WORKFLOW_RUNNER`, with ``activities``."""
    return Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activities=activities,
                  workflow_runner=WORKFLOW_RUNNER, **options)


class _NoFlightProducts:
    """A fan-out over a store without flights, for harnesses that run no disruption."""

    async def start_batch(self, temporal: Client, page: FanOutPage) -> FanOutBatch:
        return FanOutBatch(found=0, last_product_id=None)


def activities_over(
    flows: FlowStore,
    supplier: Supplier,
    outbox: EventOutbox,
    credits: CreditStore,
    http: aiohttp.ClientSession | None = None,
    guard: WebhookGuard | None = None,
    fan_out: DisruptionFanOut | None = None,
    per_receiver: int = PER_RECEIVER,
) -> list[Callable[..., Any]]:
    """Every activity, over the given ports: the worker passes the real ones, tests pass fakes
    (and, without a ``guard``, the sandbox's rules for webhook addresses: loopback receivers).
    ``per_receiver``: deliveries in flight to one webhook URL at most."""
    flow_activities = FlowActivities(flows)
    supplier_activities = SupplierActivities(supplier)
    triggers = TriggerActivities(outbox, guard or WebhookGuard(WebhookPolicy.sandbox()), http, per_receiver)
    credit_activities = CreditActivities(credits)
    disruption_activities = DisruptionActivities(fan_out or _NoFlightProducts())
    return [
        flow_activities.record_flow,
        flow_activities.acquire_product,
        flow_activities.open_waiting,
        supplier_activities.cancel_at_supplier,
        supplier_activities.reschedule_at_supplier,
        supplier_activities.apply_change,
        supplier_activities.submit_special_request,
        supplier_activities.ask_special_request,
        triggers.deliver_event,
        triggers.mark_failed,
        credit_activities.expire_credit,
        disruption_activities.start_disruption_batch,
    ]


def build_activities(
    settings: Settings, store: Store, http: aiohttp.ClientSession | None = None, guard: WebhookGuard | None = None
) -> list[Callable[..., Any]]:
    """``http`` is the worker's long-lived session for webhook deliveries (one connection pool);
    ``guard`` checks webhook addresses at every delivery (tests pass one with a resolver of their own)."""
    return activities_over(store.flows, build_supplier(settings, store.engine), store.events, store.credits, http,
                           guard or WebhookGuard.for_settings(settings), FanOut(settings, store),
                           per_receiver=settings.webhook_receiver_concurrency)
