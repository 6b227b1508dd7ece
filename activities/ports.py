"""The ports activities act through. The worker passes the real adapters (store, supplier); tests pass fakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol

from domain.change_pricing import ChangeAlternative, ChangeSearch
from domain.flow_info import FlowRecord
from domain.products import ProductSpec, Segment
from domain.special_request_flow import SpecialRequestAsk, SupplierAnswer


class SupplierRefused(Exception):
    """The supplier answered and said no (e.g. the product is already used): retrying will not help."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


LockOutcome = Literal["acquired", "busy", "product_cancelled"]


class FlowStore(Protocol):
    async def record_flow(self, record: FlowRecord) -> bool:
        """In one transaction: update the flow row; insert the event row if ``record.event_type``,
        at most once per ``record.event_id`` (a retried activity calls again); release the
        product's active-flow lock when ``record.terminal``. True when the event is to be pushed:
        the partner has a webhook URL (without one, it reads the event from the pull feed)."""
        ...

    async def acquire(self, product_id: str, flow_code: str, at: datetime) -> LockOutcome:
        """Take the product's active-flow lock for a flow that waits its turn (a schedule change):
        ``acquired`` (also when ``flow_code`` holds it already: a retried activity asks again),
        ``busy`` while another flow holds it, ``product_cancelled`` when there is nothing left to lock."""
        ...


class Supplier(Protocol):
    async def cancel_product(self, product_id: str, flow_code: str) -> None:
        """Cancel the product; cancelling again with the same ``flow_code`` succeeds without effect.
        Raises :class:`SupplierRefused` when the supplier refuses."""
        ...

    async def reschedule_product(self, product_id: str, segments: list[Segment], flow_code: str) -> None:
        """Move the flight product to ``segments``; asking again with the same ``flow_code`` succeeds
        without effect. Raises :class:`SupplierRefused` when the supplier refuses."""
        ...

    async def change_alternatives(self, product_id: str, search: ChangeSearch, now: datetime) -> list[ChangeAlternative]:
        """Itineraries the product could change to on the searched dates, priced (``domain.change_pricing``).
        Raises ``DateIncompatible`` / ``SearchInvalid`` for dates that cannot give one."""
        ...

    async def payment_methods(self, product_id: str) -> list[str]:
        """How a partner may pay an agent's checkout for this product."""
        ...

    async def apply_change(self, product_id: str, itinerary: ProductSpec | None, flow_code: str) -> None:
        """Give the product ``itinerary`` (None: nothing to move); asking again with the same
        ``flow_code`` succeeds without effect. Raises :class:`SupplierRefused` when the supplier refuses."""
        ...

    async def submit_special_request(self, ask: SpecialRequestAsk) -> timedelta:
        """Hand a special request to the airline; how long until it is worth asking for the answer."""
        ...

    async def answer_special_request(self, ask: SpecialRequestAsk) -> SupplierAnswer:
        """The airline's answer to a special request: confirmed or declined (with its reason), or
        pending with when to ask again."""
        ...


@dataclass(frozen=True)
class DeliveryTarget:
    url: str
    secret: str
    body: bytes  # the stored event, byte for byte what is signed and sent
    # The secret a rotation replaced, while its grace period lasts: it signs too (a second v1=).
    previous_secret: str | None = None


class EventOutbox(Protocol):
    async def delivery_target(self, event_id: str) -> DeliveryTarget | None:
        """Where and what to send; None when the partner has no webhook URL (it pulls ``/v1/events``)."""
        ...

    async def record_attempt(self, event_id: str, delivered: bool, detail: str) -> None: ...

    async def mark_failed(self, event_id: str) -> None: ...
