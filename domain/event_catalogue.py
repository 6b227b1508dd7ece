"""Every event type partners receive (docs/triggers.md#event-types), with the model its ``data`` is
made from: the one list the OpenAPI document's ``webhooks`` section, the feed's schema and the
catalogue in docs/triggers.md are built from, so none of them can drift from what is sent.

An event is ``{"id", "type", "created_at", "data"}`` (``domain.flow_info.event_body``): a flow's
events carry the flow info its ``GET`` answers, ``refund.posted`` the refund, ``credit.*`` the credit. A branch that adds an
event type adds it here, with the model of its data; a field every event carries goes on
:class:`Event`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field, create_model

from domain import cancellation_flow as cancellation
from domain import change_flow as change
from domain import credit_ledger as credits
from domain import refund_ledger as refunds
from domain import rescheduling_flow as rescheduling
from domain import special_request_flow as special_request
from domain.cancellation_flow import CancellationInfo
from domain.change_flow import ChangeInfo
from domain.credit_ledger import Credit
from domain.refund_ledger import Refund
from domain.rescheduling_flow import ReschedulingInfo
from domain.special_request_flow import SpecialRequestInfo


class Event(BaseModel):
    """What every event carries; each type's model (:func:`event_model`) adds its ``type`` and ``data``."""

    id: str = Field(pattern=r"^evt_[a-z2-7]{20}$", description="unique: the key to deduplicate on")
    type: str
    created_at: AwareDatetime = Field(description="when the state it reports was recorded")


@dataclass(frozen=True)
class EventType:
    """One type of event: what it reports (``source``: the flow kind, or ``settlement``), the model of
    its ``data``, when it is sent and the fields of ``data`` a receiver usually wants."""

    name: str
    source: str
    data: type[BaseModel]
    sent_when: str
    useful_fields: tuple[str, ...] = ()

    @property
    def stem(self) -> str:
        """``cancellation.no_response`` → ``CancellationNoResponse``: the stem of its models' names."""
        return "".join(word.capitalize() for word in self.name.replace(".", "_").split("_"))


CATALOGUE: tuple[EventType, ...] = (
    EventType(cancellation.CANCELLATION_QUOTED, "cancellation", CancellationInfo,
              "an agent quoted a manual cancellation (`awaiting_partner_decision`); again, at penalty 0 with the same "
              "deadline and `involuntary: true`, when a schedule change arrives before the partner decided",
              ("traveller_ids", "penalty", "refund", "agent_note", "decision_deadline", "involuntary", "waiver")),
    EventType(cancellation.CANCELLATION_COMPLETED, "cancellation", CancellationInfo,
              "the travellers named are cancelled, the product with the last of them (`cancelled`)",
              ("traveller_ids", "penalty", "refund", "involuntary", "waiver")),
    EventType(cancellation.CANCELLATION_REJECTED, "cancellation", CancellationInfo,
              "the partner rejected the quote (`rejected`)"),
    EventType(cancellation.CANCELLATION_NO_RESPONSE, "cancellation", CancellationInfo,
              "the decision window passed (`no_response`)", ("decision_deadline",)),
    EventType(cancellation.CANCELLATION_EXPIRED, "cancellation", CancellationInfo,
              "no agent quoted in time (`expired`)", ("quote_deadline",)),
    EventType(cancellation.CANCELLATION_FAILED, "cancellation", CancellationInfo,
              "the supplier refused to cancel (`failed`)"),
    EventType(change.CHANGE_CHECKOUT_ISSUED, "change", ChangeInfo,
              "an agent issued a checkout (`checkout_issued`)",
              ("checkout_id", "total_due", "expires_at", "description", "itinerary")),
    EventType(change.CHANGE_COMPLETED, "change", ChangeInfo, "the change is applied (`modified`)",
              ("itinerary", "total_due")),
    EventType(change.CHANGE_EXPIRED, "change", ChangeInfo, "the context or checkout expired unbooked (`expired`)",
              ("expires_at",)),
    EventType(change.CHANGE_FAILED, "change", ChangeInfo, "the supplier refused the change (`failed`)", ("failure",)),
    EventType(rescheduling.RESCHEDULING_DETECTED, "rescheduling", ReschedulingInfo,
              "alternatives are offered (`awaiting_partner_action`)",
              ("alternatives", "proposed_segments", "decision_deadline")),
    EventType(rescheduling.RESCHEDULING_ACCEPTED, "rescheduling", ReschedulingInfo,
              "the partner's choice is applied (`accepted`)", ("alternative_id",)),
    EventType(rescheduling.RESCHEDULING_AUTO_ACCEPTED, "rescheduling", ReschedulingInfo,
              "the default was applied at the deadline (`auto_accepted`)", ("alternative_id",)),
    EventType(rescheduling.RESCHEDULING_FAILED, "rescheduling", ReschedulingInfo,
              "the supplier refused the alternative (`failed`)", ("alternative_id",)),
    EventType(rescheduling.RESCHEDULING_OBSOLETE, "rescheduling", ReschedulingInfo,
              "the product was cancelled before the change's turn (`obsolete`)"),
    EventType(special_request.SPECIAL_REQUEST_CONFIRMED, "special_request", SpecialRequestInfo,
              "the airline confirmed (`confirmed`)", ("request_id", "option", "traveller_id")),
    EventType(special_request.SPECIAL_REQUEST_DECLINED, "special_request", SpecialRequestInfo,
              "the airline declined (`declined`)", ("request_id", "reason")),
    EventType(refunds.REFUND_POSTED, "settlement", Refund,
              "a refund was posted: a flow's own, an agent's or a deposit given back",
              ("refund_id", "number", "amount", "reason", "flow_code", "traveller_ids")),
    EventType(credits.CREDIT_ISSUED, "settlement", Credit,
              "a refund was taken as a credit (`refund_to: credit`)", ("credit_id", "amount", "expires_at", "flow_code")),
    EventType(credits.CREDIT_REDEEMED, "settlement", Credit,
              "a credit paid (part of) a change or a checkout", ("credit_id", "remaining", "movements")),
    EventType(credits.CREDIT_EXPIRED, "settlement", Credit,
              "a credit reached `expires_at` with something left (`expired`)", ("credit_id", "expired")),
)

EVENT_TYPES: dict[str, EventType] = {entry.name: entry for entry in CATALOGUE}


def event_model(entry: EventType, base: type[Event] = Event, suffix: str = "Event") -> type[Event]:
    """The model of one type's events (``CancellationQuotedEvent``): ``base`` with that ``type`` and that
    ``data``. The feed's items (``base`` adding their delivery state) are made the same way."""
    return create_model(
        entry.stem + suffix,
        __base__=base,
        __doc__=f"`{entry.name}`: {entry.sent_when}.",
        type=(Literal[entry.name], ...),  # type: ignore[arg-type]  # one literal per catalogue entry, made at import
        data=(entry.data, ...),
    )


EVENT_MODELS: dict[str, type[Event]] = {entry.name: event_model(entry) for entry in CATALOGUE}
