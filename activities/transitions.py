"""Persisting flow transitions: the only way a workflow's state reaches the database; and the
product lock a flow that waits its turn takes. Workflows call these methods by reference; the
names they are registered under are what histories and scheduled activities carry, so they never change."""

from __future__ import annotations

from datetime import datetime, timezone

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from domain.flow_info import FlowRecord, WaitingOpened
from ports.recording import FlowStore, RecordRefused

log = structlog.get_logger("transitions")

# Retryable on purpose: a flow that waits its turn tries again (the ApplicationError type of "busy").
PRODUCT_BUSY = "product_busy"
# Not retryable: the store refused the record for good (ports.recording.RecordRefused). The flow parks
# until an operator asks it to record again (workflows.flow_transitions, docs/operations.md#a-refused-record).
RECORD_REFUSED = "record_refused"
# The worker's counter of those refusals, by flow kind (docs/operations.md#metrics); "_total" in the name,
# as the SDK exporter adds no suffix.
RECORDS_REFUSED = "aftersales_records_refused_total"


class FlowActivities:
    def __init__(self, store: FlowStore) -> None:
        self._store = store

    @activity.defn(name="record_flow")
    async def record_flow(self, record: FlowRecord) -> bool:
        try:
            push = await self._store.record_flow(record)
        except RecordRefused as refused:
            raise _refusal(record, refused) from refused
        log.info("flow_transition", **_keyed(record))  # one line per transition
        return push

    @activity.defn(name="open_waiting")
    async def open_waiting(self, waiting: FlowRecord, offered: FlowRecord) -> WaitingOpened:
        """A flow that waits its turn (a schedule change) opens in one write: ``waiting`` recorded, the
        product's lock tried and, once taken, ``offered`` recorded with its event (``FlowStore.open_waiting``).
        Never refused for a busy product: the flow then waits its turn with ``acquire_product``."""
        try:
            lock, push = await self._store.open_waiting(waiting, offered)
        except RecordRefused as refused:
            raise _refusal(waiting, refused) from refused
        log.info("flow_transition", **_keyed(waiting))
        if lock == "acquired":
            log.info("flow_transition", **_keyed(offered))
        return WaitingOpened(lock=lock, push=push)

    @activity.defn(name="acquire_product")
    async def acquire_product(self, product_id: str, flow_code: str) -> bool:
        """True once the flow holds the product's lock; False when the product was cancelled meanwhile."""
        outcome = await self._store.acquire(product_id, flow_code, datetime.now(timezone.utc))
        if outcome == "busy":
            # Retryable on purpose: the retry policy is the wait for the holder's flow to end.
            # BENIGN, because waiting is the expected outcome, not an error to log per attempt.
            raise ApplicationError(
                f"product {product_id} has another active flow",
                type=PRODUCT_BUSY,
                category=ApplicationErrorCategory.BENIGN,
            )
        return outcome == "acquired"


def _keyed(record: FlowRecord) -> dict[str, object]:
    """A transition's log fields, keyed the way operators search: flow code and partner."""
    return {"flow_code": record.code, "partner_id": record.partner_id, "kind": str(record.kind),
            "status": record.status, "event_type": record.event_type, "event_id": record.event_id}


def _refusal(record: FlowRecord, refused: RecordRefused) -> ApplicationError:
    """The store's refusal of ``record`` for good, as the flow hears it; loud once per refusal: an alert
    on the counter, the line names the flow."""
    log.error("record_refused", **_keyed(record), reason=str(refused))
    activity.metric_meter().create_counter(
        RECORDS_REFUSED, "Flow transitions the store refused for good, by flow kind: each parks its flow"
    ).add(1, {"kind": str(record.kind)})
    return ApplicationError(
        f"the store refused flow {record.code}'s move to {record.status}: {refused}",
        type=RECORD_REFUSED,
        non_retryable=True,
    )
