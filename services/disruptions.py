"""Disruptions (docs/rescheduling.md#disruptions): a supplier's push naming a flight, every product booked on
it rescheduled as a one-product push would (``services.reschedulings``), and the disruption's progress.

The intake answers at once, whatever the number of products: it records the disruption (once per supplier
and change id), counts the affected products through the flight index, and starts the disruption's one
fan-out workflow (``workflows.disruption``, workflow id = the disruption id). The fan-out pages through
the products in batches; :func:`start_batch` starts each product's flow under the code its change names,
so nothing starts twice, and :func:`reconcile_launches` starts the fan-out of a disruption whose intake
died between recording it and starting its workflow.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import structlog
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from config.settings import Settings
from domain.disruptions import Disruption, FanOutBatch, FanOutInput, FanOutPage, FlightScheduleChange, disruption_id_for
from domain.products import FlightProduct
from domain.refusals import not_found
from services.bootstrap import Deps, bootstrap
from services.flow_start import ReconcilerPass, reconcile
from services.requester import Requester
from services.reschedulings import start_reschedulings
from store.repositories import Store
from store.supplier_accounts import SupplierAccount
from workflows.disruption import DisruptionFanOutWorkflow

log = structlog.get_logger("services.disruptions")

# A disruption recorded this long ago whose fan-out is not known to be started may never have been.
UNLAUNCHED_AFTER = timedelta(seconds=10)
RECONCILE_BATCH = 100
# Who may read any disruption; a supplier reads its own.
READERS = frozenset({"admin", "agent"})


async def receive_disruption(deps: Deps, push: FlightScheduleChange, supplier: SupplierAccount) -> Disruption:
    """Record the push (the first one of its change id wins) and start its fan-out; the disruption.

    A flight of a carrier the supplier does not sell is not its to change, and answers like an unknown one.
    """
    if not supplier.sells(push.flight.carrier):
        raise not_found("flight of your carriers")
    disruption_id = disruption_id_for(supplier.supplier_id, push.change_id)
    disruption = await deps.store.disruptions.get(disruption_id)
    if disruption is None:
        affected = await deps.store.flights.count_on(push.flight)
        disruption = await deps.store.disruptions.record(Disruption(
            disruption_id=disruption_id, supplier_id=supplier.supplier_id, change=push, affected=affected,
            created_at=datetime.now(timezone.utc)))
    # Also on a repeat: the first intake may have died before starting it (starting is idempotent).
    await launch(deps.temporal, deps.settings, deps.store, disruption.disruption_id)
    log.info("disruption_received", supplier_id=supplier.supplier_id, change_id=push.change_id,
             disruption_id=disruption.disruption_id, affected=disruption.affected)
    return disruption


async def launch(temporal: Client, settings: Settings, store: Store, disruption_id: str) -> None:
    """Start the disruption's fan-out unless it ran already (workflow id = the disruption id)."""
    try:
        await temporal.start_workflow(
            DisruptionFanOutWorkflow.run, FanOutInput(disruption_id=disruption_id), id=disruption_id,
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            # Finished: it started every flow once, and it must not run again.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        pass
    await store.disruptions.launched(disruption_id)


async def reconcile_launches(deps: Deps) -> int:
    """Start the fan-out of every disruption whose intake a crash interrupted; how many were looked at."""
    unlaunched = await deps.store.disruptions.unlaunched(datetime.now(timezone.utc) - UNLAUNCHED_AFTER, RECONCILE_BATCH)
    for disruption_id in unlaunched:
        await launch(deps.temporal, deps.settings, deps.store, disruption_id)
        log.info("disruption_launch_reconciled", disruption_id=disruption_id)
    return len(unlaunched)


async def reconcile_starts(deps: Deps, at: ReconcilerPass) -> int:
    """The gateway's reconciler round: the flows and the disruption fan-outs a crash left unstarted."""
    return await reconcile(deps, at) + await reconcile_launches(deps)


async def start_batch(deps: Deps, page: FanOutPage) -> FanOutBatch:
    """Start the rescheduling flow of each product of one page of the disruption's flight."""
    disruption = await deps.store.disruptions.get(page.disruption_id)
    if disruption is None:
        return FanOutBatch(found=0, last_product_id=None)
    push = disruption.change
    found = await deps.store.flights.products_on(push.flight, page.after_product_id, page.limit)
    changes = [(product, spec, push.for_product(product.product_id, spec.segments))
               for product in found if isinstance(spec := product.spec, FlightProduct)]
    await start_reschedulings(deps, changes, disruption.disruption_id)
    return FanOutBatch(found=len(found), last_product_id=found[-1].product_id if found else None)


class FanOut:
    """The fan-out activity's port (``ports.disruptions``) over the worker's store and settings."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self._settings = settings
        self._store = store
        self._deps: Deps | None = None

    async def start_batch(self, temporal: Client, page: FanOutPage) -> FanOutBatch:
        if self._deps is None or self._deps.temporal is not temporal:
            self._deps = bootstrap(self._settings, self._store, temporal)
        return await start_batch(self._deps, page)


# --- progress and lists ---------------------------------------------------------------------------

@dataclass(frozen=True)
class DisruptionProgress:
    disruption: Disruption
    started: int
    by_status: dict[str, int]


async def progress(deps: Deps, requester: Requester, disruption_id: str) -> DisruptionProgress:
    """The disruption with its flows counted by status: for its supplier, admins and agents (anyone
    else: not found, so its existence does not leak)."""
    who = requester.principal
    disruption = await deps.store.disruptions.get(disruption_id)
    if disruption is None or (who.role not in READERS and disruption.supplier_id != who.principal_id):
        raise not_found("disruption")
    by_status = await deps.store.disruptions.flows_by_status(disruption_id)
    return DisruptionProgress(disruption, sum(by_status.values()), by_status)


async def newest(deps: Deps, limit: int, after: tuple[datetime, str] | None
                 ) -> tuple[list[Disruption], tuple[datetime, str] | None]:
    """Every disruption, newest first: one page and where it ended when more follow."""
    return await deps.store.disruptions.page(limit, after)
