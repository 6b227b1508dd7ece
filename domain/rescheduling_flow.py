"""Rescheduling (docs/flows.md#rescheduling): an airline's schedule change, the alternatives
offered to the partner, and the messages the rescheduling flow exchanges.

Alternatives are generated here, purely, from the change and the product, when the change is
received: a flow offers the same alternatives for its whole life, and a test can predict them.
Redress, as airlines offer it: a disrupted traveller may take a replacement (the airline's proposal or
another flight on the same route) or a full refund.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from domain.codes import FlowKind, new_flow_code
from domain.credit_ledger import CREDIT_VALIDITY, RefundDestination, RefundTo
from domain.deadline_advance import AdvanceableDeadlines
from domain.flow_info import FlowInfo
from domain.input_bounds import Instant
from domain.money import Money
from domain.products import FlightProduct, Segment

ChangeKind = Literal["time_change", "flight_cancelled"]
AlternativeKind = Literal["accept_proposed", "rebook", "refund"]
# A schedule change on a busy product is ``waiting_for_product`` until that flow ends.
ReschedulingStatus = Literal[
    "waiting_for_product",
    "awaiting_partner_action",
    "accepted",
    "auto_accepted",
    "obsolete",
    "failed",
]

# The other flights the airline offers: the booked itinerary this many days later ("within a day or two").
REBOOK_AFTER_DAYS = (1, 2)
PROPOSED_ID = "proposed"
REFUND_ID = "refund"

# Trigger types (docs/triggers.md) a rescheduling emits.
RESCHEDULING_DETECTED = "rescheduling.detected"
RESCHEDULING_ACCEPTED = "rescheduling.accepted"
RESCHEDULING_AUTO_ACCEPTED = "rescheduling.auto_accepted"
RESCHEDULING_FAILED = "rescheduling.failed"
RESCHEDULING_OBSOLETE = "rescheduling.obsolete"


class ChangeNotice(BaseModel):
    """What every schedule change an airline pushes says, whatever it names (one product, or a whole
    flight: ``domain.disruptions``).

    ``action_time_limit`` (NDC's ActionTimeLimit) is when the airline needs the traveller's answer:
    when it comes before the rescheduling window ends, it is the decision deadline.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    change_id: str = Field(min_length=1, max_length=100, description="the supplier's id of this change")
    kind: ChangeKind
    proposed_segments: list[Segment] = Field(
        default_factory=list, max_length=10, description="the new itinerary (time_change); null or [] for a cancelled flight"
    )
    action_time_limit: Instant | None = Field(
        default=None, description="the airline's deadline for the traveller's answer; earlier than the window, it is the decision deadline"
    )

    @field_validator("proposed_segments", mode="before")
    @classmethod
    def _none_is_no_proposal(cls, value: object) -> object:
        return [] if value is None else value

    @model_validator(mode="after")
    def _proposal_matches_kind(self) -> ChangeNotice:
        if self.kind == "time_change" and not self.proposed_segments:
            raise ValueError("a time_change carries the proposed segments")
        if self.kind == "flight_cancelled" and self.proposed_segments:
            raise ValueError("a cancelled flight has no proposed segments")
        return self


class ScheduleChange(ChangeNotice):
    """What an airline pushes: one change to one booked flight product.

    ``change_id`` is the supplier's id of the change; with the product it names the flow, so a
    push delivered twice starts one flow. An airline's change of one flight reaches every product
    booked on it, hence the product in the key.
    """

    product_id: str = Field(min_length=1, max_length=40)


class ReschedulingAlternative(BaseModel):
    alternative_id: str
    kind: AlternativeKind
    segments: list[Segment]  # empty for a refund
    refund: Money | None = None
    default: bool = False


class ReschedulingInfo(FlowInfo, RefundDestination):
    """The flow info of a rescheduling (``GET /v1/reschedulings/{code}``), as its triggers carry it too.
    Applied with the ``refund`` alternative, its refund goes where ``refund_to`` says."""

    status: ReschedulingStatus
    change_id: str
    change_kind: ChangeKind
    original_segments: list[Segment]
    proposed_segments: list[Segment]
    alternatives: list[ReschedulingAlternative]
    decision_deadline: AwareDatetime | None = None
    # The alternative applied: the partner's choice, or the default when the window passed.
    alternative_id: str | None = None

    def alternative(self, alternative_id: str) -> ReschedulingAlternative | None:
        return next((a for a in self.alternatives if a.alternative_id == alternative_id), None)

    def waiting_until(self) -> datetime | None:
        # The partner's choice is awaited until then; the default applies after it.
        return self.decision_deadline if self.status == "awaiting_partner_action" else None

    def repeats(self, alternative_id: str, refund_to: RefundTo = "original_payment") -> bool:
        """The partner sends the choice that was accepted: answered like the first time."""
        return self.status == "accepted" and self.alternative_id == alternative_id and self.refund_to == refund_to

    @property
    def default_alternative(self) -> ReschedulingAlternative:
        return next(a for a in self.alternatives if a.default)


class ReschedulingInput(AdvanceableDeadlines):
    """Everything a rescheduling flow needs, fixed on receipt of the change (workflow id = ``info.code``)."""

    info: ReschedulingInfo  # as indexed on receipt: status waiting_for_product
    window: timedelta
    webhook_retry_for: timedelta
    # The airline's own deadline, if it sent one (flows started before it existed have none).
    action_time_limit: AwareDatetime | None = None
    # How long a credit taken instead of the refund stays valid (AFTERSALES_CREDIT_VALIDITY on receipt).
    credit_validity: timedelta = CREDIT_VALIDITY

    def decision_deadline(self, now: datetime) -> datetime:
        """When the partner's choice is due, counted from ``now`` (when the flow offers its alternatives)."""
        return decision_deadline(now, self.window, self.action_time_limit)

    def initial_info(self) -> ReschedulingInfo:
        return self.info


class AlternativeChoice(BaseModel):
    alternative_id: str
    # Where the ``refund`` alternative's refund goes (a credit only with that alternative).
    refund_to: RefundTo = "original_payment"


def decision_deadline(now: datetime, window: timedelta, action_time_limit: datetime | None) -> datetime:
    """The end of the window, or the airline's action time limit when it comes first (it may be past:
    then the default applies at once)."""
    deadline = now + window
    return deadline if action_time_limit is None else min(deadline, action_time_limit)


def rescheduling_code(product_id: str, change_id: str) -> str:
    """The flow code of a change, derived from the supplier's ids: a re-delivered push names the same flow."""
    seed = hashlib.sha256(f"{product_id}\n{change_id}".encode()).digest()
    return new_flow_code(FlowKind.RESCHEDULING, random.Random(seed))


def shifted(segments: list[Segment], by: timedelta) -> list[Segment]:
    """The itinerary moved as a whole, so its connections keep their times."""
    return [s.model_copy(update={"departure": s.departure + by, "arrival": s.arrival + by}) for s in segments]


def alternatives_for(
    kind: ChangeKind, original: list[Segment], proposed: list[Segment], paid: Money
) -> list[ReschedulingAlternative]:
    """The airline's proposal (a time change only), rebookings a day or two later, and a full refund.

    Exactly one is the default, applied when the partner does not choose: the airline's proposal,
    or, for a cancelled flight, the rebooking that departs nearest to the booked departure.
    """
    rebooks = [
        (f"rebook-{days}d", segments)
        for days in REBOOK_AFTER_DAYS
        if (segments := shifted(original, timedelta(days=days))) != proposed
    ]
    if kind == "time_change":
        default_id = PROPOSED_ID
    else:
        default_id = min(rebooks, key=lambda r: abs(r[1][0].departure - original[0].departure))[0]
    found = [ReschedulingAlternative(alternative_id=PROPOSED_ID, kind="accept_proposed", segments=proposed)] if proposed else []
    found += [ReschedulingAlternative(alternative_id=i, kind="rebook", segments=segments) for i, segments in rebooks]
    found.append(ReschedulingAlternative(alternative_id=REFUND_ID, kind="refund", segments=[], refund=paid))
    return [a.model_copy(update={"default": a.alternative_id == default_id}) for a in found]


def new_rescheduling(
    change: ScheduleChange, flight: FlightProduct, reservation_id: str, partner_id: str, paid: Money | None = None
) -> ReschedulingInfo:
    """The flow info of a change as received, before it has the product's lock. ``paid``: what the
    travellers who remain paid (docs/api.md#partial-cancellation), what the ``refund`` alternative
    gives back; None: the price."""
    return ReschedulingInfo(
        code=rescheduling_code(change.product_id, change.change_id),
        product_id=change.product_id,
        reservation_id=reservation_id,
        partner_id=partner_id,
        status="waiting_for_product",
        change_id=change.change_id,
        change_kind=change.kind,
        original_segments=flight.segments,
        proposed_segments=change.proposed_segments,
        alternatives=alternatives_for(change.kind, flight.segments, change.proposed_segments,
                                      flight.price if paid is None else paid),
    )
