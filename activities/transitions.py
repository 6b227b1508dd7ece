"""Persisting flow transitions: the only way a workflow's state reaches the database; and the
product lock a flow that waits its turn takes. Workflows call these methods by reference; the
names they are registered under are what histories and scheduled activities carry, so they never change."""

from __future__ import annotations

from datetime import datetime, timezone

import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from domain.flow_info import FlowRecord
from ports.recording import FlowStore

log = structlog.get_logger("transitions")

# Retryable on purpose: a flow that waits its turn tries again (the ApplicationError type of "busy").
PRODUCT_BUSY = "product_busy"


class FlowActivities:
    def __init__(self, store: FlowStore) -> None:
        self._store = store

    @activity.defn(name="record_flow")
    async def record_flow(self, record: FlowRecord) -> bool:
        push = await self._store.record_flow(record)
        # One line per transition, keyed the way operators search: flow code and partner.
        log.info(
            "flow_transition",
            flow_code=record.code,
            partner_id=record.partner_id,
            kind=str(record.kind),
            status=record.status,
            event_type=record.event_type,
            event_id=record.event_id,
        )
        return push

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
