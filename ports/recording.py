"""What the activities record through: flow transitions and product locks (``FlowStore``), trigger
deliveries (``EventOutbox``) and credits expiring (``CreditStore``). The worker passes the store;
tests pass fakes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from domain.credit_ledger import CreditState
from domain.flow_info import FlowRecord

LockOutcome = Literal["acquired", "busy", "product_cancelled"]


class RecordRefused(Exception):
    """The store refused a record for good: the database or the store's own checks said no to the
    data itself (a constraint, a value its column cannot hold, a bound of the arithmetic), so no
    retry of the same record succeeds until an operator repairs the cause (docs/operations.md#a-refused-record).
    A lost connection or a lock is not this: those raise whatever they raise, and are retried."""


class FlowStore(Protocol):
    async def record_flow(self, record: FlowRecord) -> bool:
        """In one transaction: update the flow row; insert the event row if ``record.event_type``,
        at most once per ``record.event_id`` (a retried activity calls again); release the
        product's active-flow lock when ``record.terminal``. True when the event is to be pushed:
        the partner has a webhook URL (without one, it reads the event from the pull feed).
        :class:`RecordRefused` when the store refuses the record for good (nothing of it is written)."""
        ...

    async def acquire(self, product_id: str, flow_code: str, at: datetime) -> LockOutcome:
        """Take the product's active-flow lock for a flow that waits its turn (a schedule change):
        ``acquired`` (also when ``flow_code`` holds it already: a retried activity asks again),
        ``busy`` while another flow holds it, ``product_cancelled`` when there is nothing left to lock."""
        ...

    async def open_waiting(self, waiting: FlowRecord, offered: FlowRecord) -> tuple[LockOutcome, bool]:
        """A flow that waits its turn opens in one transaction: record ``waiting`` (its waiting status),
        try the product's lock as :meth:`acquire` does, and once it is taken record ``offered`` (the next
        status, with its event) as :meth:`record_flow` does. The lock's outcome, and whether ``offered``'s
        event is to be pushed (False unless acquired). Idempotent as those are: a retry finds its lock and
        its event. :class:`RecordRefused` when either record is refused for good (nothing is written)."""
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


class CreditStore(Protocol):
    async def expire(self, credit_id: str, at: datetime) -> CreditState | None:
        """In one transaction, at most once per credit: what remains of an active credit expires at
        ``at`` (its movement, its ``credit.expired`` event). The credit's state afterwards (a used or
        already expired one is left as it is); None when there is no such credit."""
        ...
