"""Alternatives of a schedule change (docs/api.md#rescheduling): deterministic, exactly one default, money exact."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.flow_info import is_terminal
from domain.money import Money
from domain.products import Segment
from domain.rescheduling_flow import (
    ReschedulingInfo,
    ReschedulingStatus,
    ScheduleChange,
    alternatives_for,
    decision_deadline,
    rescheduling_code,
    shifted,
)

CET = timezone(timedelta(hours=1))
PAID = Money.of("240", "EUR")
ORIGINAL = [
    Segment(origin="MAD", destination="CDG", departure=datetime(2026, 12, 20, 8, 0, tzinfo=CET),
            arrival=datetime(2026, 12, 20, 10, 5, tzinfo=CET), flight_number="ZZ101"),
    Segment(origin="CDG", destination="AMS", departure=datetime(2026, 12, 20, 11, 30, tzinfo=CET),
            arrival=datetime(2026, 12, 20, 12, 50, tzinfo=CET), flight_number="ZZ202"),
]


def test_shifted_moves_the_whole_itinerary_and_keeps_offsets() -> None:
    moved = shifted(ORIGINAL, timedelta(minutes=90))
    assert [s.departure for s in moved] == [datetime(2026, 12, 20, 9, 30, tzinfo=CET),
                                           datetime(2026, 12, 20, 13, 0, tzinfo=CET)]
    assert moved[0].departure.utcoffset() == timedelta(hours=1)
    assert [(s.origin, s.flight_number) for s in moved] == [(s.origin, s.flight_number) for s in ORIGINAL]


def test_time_change_offers_the_proposal_as_default_then_rebookings_then_a_full_refund() -> None:
    proposed = shifted(ORIGINAL, timedelta(minutes=90))
    found = alternatives_for("time_change", ORIGINAL, proposed, PAID)

    assert [(a.alternative_id, a.kind, a.default) for a in found] == [
        ("proposed", "accept_proposed", True),
        ("rebook-1d", "rebook", False),
        ("rebook-2d", "rebook", False),
        ("refund", "refund", False),
    ]
    assert found[0].segments == proposed
    assert found[1].segments == shifted(ORIGINAL, timedelta(days=1))
    assert found[2].segments[0].departure == datetime(2026, 12, 22, 8, 0, tzinfo=CET)
    assert found[3].segments == [] and found[3].refund == PAID
    assert all(a.refund is None for a in found[:3])
    assert found == alternatives_for("time_change", ORIGINAL, proposed, PAID)  # deterministic


def test_cancelled_flight_defaults_to_the_nearest_rebooking() -> None:
    found = alternatives_for("flight_cancelled", ORIGINAL, [], PAID)

    assert [(a.alternative_id, a.default) for a in found] == [("rebook-1d", True), ("rebook-2d", False),
                                                             ("refund", False)]


def test_a_proposal_equal_to_a_rebooking_is_offered_once() -> None:
    proposed = shifted(ORIGINAL, timedelta(days=1))
    found = alternatives_for("time_change", ORIGINAL, proposed, PAID)
    assert [a.alternative_id for a in found] == ["proposed", "rebook-2d", "refund"]
    assert sum(a.default for a in found) == 1


def test_refund_is_the_full_price_in_minor_units() -> None:
    found = alternatives_for("flight_cancelled", ORIGINAL, [], Money.of("1200", "JPY"))
    refund = found[-1].model_dump(mode="json")["refund"]
    assert refund == {"amount": "1200", "currency": "JPY"}


def test_code_is_derived_from_product_and_change() -> None:
    code = rescheduling_code("PRD-1", "chg-1")
    assert re.fullmatch(r"RS-[0-9A-Z]{8}", code)
    assert rescheduling_code("PRD-1", "chg-1") == code
    assert rescheduling_code("PRD-2", "chg-1") != code
    assert rescheduling_code("PRD-1", "chg-2") != code


def test_a_change_carries_a_proposal_exactly_when_it_is_a_time_change() -> None:
    with pytest.raises(ValidationError):
        ScheduleChange(change_id="c", product_id="p", kind="time_change")
    with pytest.raises(ValidationError):
        ScheduleChange(change_id="c", product_id="p", kind="flight_cancelled", proposed_segments=ORIGINAL)
    ScheduleChange(change_id="c", product_id="p", kind="flight_cancelled")


def test_finished_statuses_release_the_product() -> None:
    assert all(is_terminal(s) for s in ("accepted", "auto_accepted", "obsolete", "failed"))
    assert not any(is_terminal(s) for s in ("waiting_for_product", "awaiting_partner_action"))


@given(window_h=st.integers(1, 24 * 30), limit_h=st.one_of(st.none(), st.integers(-48, 24 * 60)))
def test_the_decision_deadline_is_the_window_or_an_earlier_action_time_limit(window_h: int, limit_h: int | None) -> None:
    now = datetime(2027, 3, 1, 12, 0, tzinfo=timezone.utc)
    window = timedelta(hours=window_h)
    limit = None if limit_h is None else (now + timedelta(hours=limit_h)).astimezone(CET)
    deadline = decision_deadline(now, window, limit)
    assert deadline <= now + window
    assert deadline == (now + window if limit is None or limit >= now + window else limit)


def test_a_supplier_may_send_null_for_no_proposal_and_an_action_time_limit_with_offset() -> None:
    change = ScheduleChange.model_validate({"change_id": "c", "product_id": "p", "kind": "flight_cancelled",
                                            "proposed_segments": None, "action_time_limit": "2027-03-18T12:00:00Z"})
    assert change.proposed_segments == [] and change.action_time_limit == datetime(2027, 3, 18, 12, tzinfo=timezone.utc)
    with pytest.raises(ValidationError):
        ScheduleChange.model_validate({"change_id": "c", "product_id": "p", "kind": "flight_cancelled",
                                       "action_time_limit": "2027-03-18T12:00:00"})


@pytest.mark.parametrize("status", get_args(ReschedulingStatus))
def test_a_rescheduling_waits_for_someone_only_while_it_offers_its_alternatives(status: str) -> None:
    """Its deadline (the agents' list order, the past-deadline metric) is the decision deadline then only."""
    deadline = datetime(2027, 3, 1, 9, 0, tzinfo=timezone.utc)
    info = ReschedulingInfo.model_construct(status=status, decision_deadline=deadline)
    assert info.waiting_until() == (deadline if status == "awaiting_partner_action" else None)
