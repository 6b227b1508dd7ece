"""Persisting flow transitions: the only way a workflow's state reaches the database."""

from __future__ import annotations

from temporalio import activity

from activities.ports import FlowStore
from domain.flows import RECORD_FLOW, FlowRecord


class FlowActivities:
    def __init__(self, store: FlowStore) -> None:
        self._store = store

    @activity.defn(name=RECORD_FLOW)
    async def record_flow(self, record: FlowRecord) -> None:
        await self._store.record_flow(record)
