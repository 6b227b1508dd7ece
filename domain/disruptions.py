"""Disruptions (docs/rescheduling.md#disruptions): one supplier push naming a flight instead of a product,
and what each product booked on that flight is proposed.

A disruption is named by the supplier and its change id (:func:`disruption_id_for`): the same push
delivered twice names the same disruption, whose fan-out workflow (id = the disruption id) starts
each affected product's rescheduling flow under the code a one-product push of the same change would
have (``rescheduling_code(product_id, change_id)``), so nothing starts twice.
"""

from __future__ import annotations

import hashlib
import random
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from domain.codes import DISRUPTION_ID
from domain.input_bounds import CalendarDate
from domain.products import Segment
from domain.rescheduling_flow import ChangeKind, ChangeNotice, ScheduleChange

# Products a fan-out activity starts flows for at a time, and the batches a workflow run goes
# through before it continues as new (its history stays a few hundred events, whatever the flight).
FAN_OUT_BATCH = 100
BATCHES_PER_RUN = 50
ONE_SEGMENT = "a flight's time_change proposes that flight's one new segment"


class FlightRef(BaseModel):
    """One flight on one day: ``flight_number`` with or without its carrier's code (``ZZ101`` or ``101``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    carrier: str = Field(pattern=r"^[A-Z0-9]{2}$", description="IATA code of the carrier")
    flight_number: str = Field(pattern=r"^([A-Z0-9]{2})?[0-9]{1,4}$", description="e.g. \"ZZ101\" or \"101\"")
    departure_date: CalendarDate = Field(description="the day it departs, in the departure airport's time")

    @model_validator(mode="after")
    def _number_of_this_carrier(self) -> FlightRef:
        if not self._number_only and self.flight_number[:2] != self.carrier:
            raise ValueError("flight_number names another carrier than carrier")
        return self

    @property
    def _number_only(self) -> bool:
        return self.flight_number.isdigit() and len(self.flight_number) <= 4

    @property
    def designator(self) -> str:
        """The flight number as the index holds it: the carrier's code and the number (``ZZ101``)."""
        return flight_designator(self.carrier + self.flight_number if self._number_only else self.flight_number)


def flight_designator(flight_number: str) -> str:
    """A segment's flight number without leading zeros in its number (``ZZ0101`` is ``ZZ101``)."""
    return flight_number[:2] + (flight_number[2:].lstrip("0") or "0")


class FlightScheduleChange(ChangeNotice):
    """A schedule change of a whole flight: ``proposed_segments`` (a time change) is that flight's one new segment."""

    flight: FlightRef

    @model_validator(mode="after")
    def _one_flight_proposed(self) -> FlightScheduleChange:
        if len(self.proposed_segments) > 1:
            raise ValueError(ONE_SEGMENT)
        return self

    def for_product(self, product_id: str, segments: list[Segment]) -> ScheduleChange:
        """The change as a one-product push of it would say it (the same change id: the same flow code).

        A time change moves the flight's segment to the proposed times, and the segments after it by
        the same shift, so a connection keeps its time; the segments before it stay as booked."""
        return ScheduleChange(
            change_id=self.change_id, product_id=product_id, kind=self.kind,
            proposed_segments=self.proposed_for(segments), action_time_limit=self.action_time_limit,
        )

    def proposed_for(self, segments: list[Segment]) -> list[Segment]:
        if not self.proposed_segments:
            return []
        new = self.proposed_segments[0]
        on_flight = next(
            (i for i, s in enumerate(segments) if (flight_designator(s.flight_number), s.departure.date()) == (self.flight.designator,
                                                                                                      self.flight.departure_date)),
            0,
        )
        shift: timedelta = new.departure - segments[on_flight].departure
        moved = [s.model_copy(update={"departure": s.departure + shift, "arrival": s.arrival + shift})
                 for s in segments[on_flight + 1:]]
        return [*segments[:on_flight], new, *moved]


class SchedulePush(ChangeNotice):
    """The body of ``POST /v1/supplier/schedule-changes``: a change of one product (``product_id``, §12)
    or of every product on a flight (``flight``, a disruption)."""

    product_id: str | None = Field(default=None, min_length=1, max_length=40, description="one product; or flight")
    flight: FlightRef | None = Field(default=None, description="every product on this flight; or product_id")

    @model_validator(mode="after")
    def _product_or_flight(self) -> SchedulePush:
        if (self.product_id is None) == (self.flight is None):
            raise ValueError("name either product_id or flight")
        if self.flight is not None and len(self.proposed_segments) > 1:
            raise ValueError(ONE_SEGMENT)
        return self

    def of_product(self) -> ScheduleChange | None:
        if self.product_id is None:
            return None
        return ScheduleChange(change_id=self.change_id, product_id=self.product_id, kind=self.kind,
                              proposed_segments=self.proposed_segments, action_time_limit=self.action_time_limit)

    def of_flight(self) -> FlightScheduleChange | None:
        if self.flight is None:
            return None
        return FlightScheduleChange(change_id=self.change_id, flight=self.flight, kind=self.kind,
                                    proposed_segments=self.proposed_segments, action_time_limit=self.action_time_limit)


def disruption_id_for(supplier_id: str, change_id: str) -> str:
    """The disruption a supplier's change names: the same push again names the same one."""
    seed = hashlib.sha256(f"{supplier_id}\n{change_id}".encode()).digest()
    return DISRUPTION_ID.new(random.Random(seed))


DisruptionFlowStatus = Literal["waiting_for_product", "awaiting_partner_action", "accepted", "auto_accepted", "obsolete", "failed"]


class Disruption(BaseModel):
    """A disruption as recorded on receipt: the push, who sent it, and how many products it affected then."""

    disruption_id: str
    supplier_id: str
    change: FlightScheduleChange
    affected: int
    created_at: datetime

    @property
    def kind(self) -> ChangeKind:
        return self.change.kind


class FanOutInput(BaseModel):
    """The fan-out workflow's input (workflow id = the disruption id): where it is in the flight's products
    (the last product it started a flow for, in product id order), carried over when it continues as new."""

    disruption_id: str
    after_product_id: str | None = None
    started: int = 0


class FanOutPage(BaseModel):
    """One batch the fan-out activity starts: up to ``limit`` products after ``after_product_id``."""

    disruption_id: str
    after_product_id: str | None
    limit: int


class FanOutBatch(BaseModel):
    """What a batch did: how many products it found (each now has its flow) and the last of them."""

    found: int
    last_product_id: str | None
