"""What the disruption fan-out's activity starts flows through (docs/rescheduling.md#disruptions): the
worker passes the service that starts a product's rescheduling as a one-product push would; tests pass fakes."""

from __future__ import annotations

from typing import Protocol

from temporalio.client import Client

from domain.disruptions import FanOutBatch, FanOutPage


class DisruptionFanOut(Protocol):
    async def start_batch(self, temporal: Client, page: FanOutPage) -> FanOutBatch:
        """Start the rescheduling flow of each product of ``page`` (up to its limit, after its last
        product) through ``temporal``, each under the code its change names: a product whose flow
        was started already (an earlier attempt of this batch) starts nothing again."""
        ...
