"""What every flow says about itself, and the index row the store keeps of it.

These shapes cross a boundary (Temporal payloads, the ``flows`` index row, the ``events``
outbox, API bodies), so they live here once. Money stays ``Decimal`` end to end: pydantic's
JSON mode writes it as a decimal string (docs/api.md#conventions). Each flow kind's own
contract (statuses, input, messages, trigger types) is in its ``*_flow`` module.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field

from domain.codes import FlowKind
from domain.deadline_advance import AdvanceableDeadlines

# A terminal flow never moves again: its product's active-flow lock is released
# (docs/flows.md#one-active-flow-per-product).
TERMINAL_STATUSES: frozenset[str] = frozenset(
    {"cancelled", "rejected", "no_response", "expired", "failed"}  # cancellation
    | {"modified"}  # change (also expired, failed)
    | {"accepted", "auto_accepted", "obsolete"}  # rescheduling (also failed)
    | {"confirmed", "declined"}  # special request
)


def is_terminal(status: str) -> bool:
    return status in TERMINAL_STATUSES


Resolution = Literal["automatic", "manual"]


class HistoryEntry(BaseModel):
    at: AwareDatetime
    event: str


class FlowInfo(BaseModel):
    """What every flow kind shows about itself; each kind's info adds its own fields."""

    code: str
    product_id: str
    reservation_id: str
    partner_id: str
    status: str
    history: list[HistoryEntry] = Field(default_factory=list)

    @property
    def version(self) -> int:
        """How many transitions the flow has made: the store keeps the newest it was told of."""
        return len(self.history)

    def waiting_until(self) -> datetime | None:
        """When the flow stops waiting for a person (an agent's quote, a partner's decision), if it
        waits for one now: the store indexes it, so queues list the most urgent flows first."""
        return None


class FlowInput(AdvanceableDeadlines):
    """What every flow is started with (workflow id = ``code``): whose product it is about, how long
    its triggers are retried, and whether its deadlines may be advanced. Each kind's input adds what
    its flow needs."""

    code: str
    product_id: str
    reservation_id: str
    partner_id: str
    webhook_retry_for: timedelta

    def identity(self) -> dict[str, str]:
        """The fields the flow's info starts with."""
        return {"code": self.code, "product_id": self.product_id, "reservation_id": self.reservation_id,
                "partner_id": self.partner_id}


class FlowRecord(BaseModel):
    """One transition of a flow as the store persists it: the index row, and the event if there is one."""

    code: str
    kind: FlowKind
    product_id: str
    reservation_id: str
    partner_id: str
    status: str
    terminal: bool
    info: dict[str, Any]  # the flow info in JSON mode, as GET answers it and as the event's ``data``
    event_id: str | None = None
    event_type: str | None = None
    at: AwareDatetime
    deadline: AwareDatetime | None = None  # the info's ``waiting_until()``

    @classmethod
    def of(cls, info: FlowInfo, kind: FlowKind, at: datetime, event_id: str | None = None,
           event_type: str | None = None) -> FlowRecord:
        return cls(
            code=info.code,
            kind=kind,
            product_id=info.product_id,
            reservation_id=info.reservation_id,
            partner_id=info.partner_id,
            status=info.status,
            terminal=is_terminal(info.status),
            info=info.model_dump(mode="json"),
            event_id=event_id,
            event_type=event_type,
            at=at,
            deadline=info.waiting_until(),
        )

    @property
    def version(self) -> int:
        return len(self.info.get("history") or [])


class WaitingOpened(BaseModel):
    """What a flow that waits its turn learns from its opening record (``open_waiting``): whether it took
    the product's lock (and so recorded the status after waiting), and whether that status's event is to
    be pushed (the partner has a webhook)."""

    lock: Literal["acquired", "busy", "product_cancelled"]
    push: bool = False


def event_body(event_id: str, event_type: str, created_at: datetime, info: dict[str, Any]) -> dict[str, Any]:
    """A trigger as partners receive it (docs/triggers.md), for the store to keep and the outbox to send."""
    return {"id": event_id, "type": event_type, "created_at": created_at.isoformat(), "data": info}
