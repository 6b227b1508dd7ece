"""The ports activities act through. The worker passes the real adapters (store, supplier); tests pass fakes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from domain.flows import FlowRecord


class SupplierRefused(Exception):
    """The supplier answered and said no (e.g. the product is already used): retrying will not help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class FlowStore(Protocol):
    async def record_flow(self, record: FlowRecord) -> None:
        """In one transaction: update the flow row; insert the event row if ``record.event_type``,
        at most once per ``record.event_id`` (a retried activity calls again); release the
        product's active-flow lock when ``record.terminal``."""
        ...


class Supplier(Protocol):
    async def cancel_product(self, product_id: str, flow_code: str) -> None:
        """Cancel the product; cancelling again with the same ``flow_code`` succeeds without effect.
        Raises :class:`SupplierRefused` when the supplier refuses."""
        ...


@dataclass(frozen=True)
class DeliveryTarget:
    url: str
    secret: str
    body: bytes  # the stored event, byte for byte what is signed and sent


class EventOutbox(Protocol):
    async def delivery_target(self, event_id: str) -> DeliveryTarget | None:
        """Where and what to send; None when the partner has no webhook URL (it pulls ``/v1/events``)."""
        ...

    async def record_attempt(self, event_id: str, delivered: bool, detail: str) -> None: ...

    async def mark_failed(self, event_id: str) -> None: ...
