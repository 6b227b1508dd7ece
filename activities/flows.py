"""Persisting flow transitions: the only way a workflow's state reaches the database."""

from __future__ import annotations

import structlog
from temporalio import activity

from activities.ports import FlowStore
from domain.flows import RECORD_FLOW, FlowRecord

log = structlog.get_logger("flows")


class FlowActivities:
    def __init__(self, store: FlowStore) -> None:
        self._store = store

    @activity.defn(name=RECORD_FLOW)
    async def record_flow(self, record: FlowRecord) -> None:
        await self._store.record_flow(record)
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
