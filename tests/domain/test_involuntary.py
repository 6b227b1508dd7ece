"""The involuntary rule and waivers (docs/flows.md#involuntary-cancellations, docs/flows.md#waivers)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.change_pricing import ChangeAlternative, ChangeCharges
from domain.involuntary import (
    change_unfinished,
    check_involuntary_quote,
    involuntary_cancellation_terms,
    is_involuntary,
    schedule_change_waiver,
    without_change_fee,
)
from domain.money import Money
from domain.products import CancellationPolicy
from domain.refund_terms import CancellationTerms
from domain.rescheduling_flow import ReschedulingStatus
from domain.waivers import WaiverRequest, grant, penalty_waived, policy_penalty

EUR = "EUR"
STATUSES: list[ReschedulingStatus] = ["waiting_for_product", "awaiting_partner_action", "accepted", "auto_accepted",
                                      "obsolete", "failed"]


@pytest.mark.parametrize(("status", "involuntary"), [
    ("waiting_for_product", True), ("awaiting_partner_action", True), ("accepted", True), ("auto_accepted", True),
    ("obsolete", False), ("failed", False),
])
def test_which_reschedulings_make_a_cancellation_involuntary(status: str, involuntary: bool) -> None:
    assert is_involuntary([status]) is involuntary
    assert is_involuntary(["obsolete", status]) is involuntary
    assert change_unfinished([status]) is (status in ("waiting_for_product", "awaiting_partner_action"))


def test_no_rescheduling_is_voluntary() -> None:
    assert not is_involuntary([]) and not change_unfinished([])


@given(st.lists(st.sampled_from(STATUSES)))
def test_an_unfinished_rescheduling_is_always_involuntary(statuses: list[str]) -> None:
    if change_unfinished(statuses):
        assert is_involuntary(statuses)


@given(st.integers(min_value=1, max_value=10**7), st.integers(min_value=0, max_value=100))
def test_involuntary_terms_refund_everything(paid_minor: int, percent: int) -> None:
    paid = Money.of_minor(paid_minor, EUR)
    penalty = Money.of_minor(paid_minor * percent // 100, EUR)
    terms = involuntary_cancellation_terms(CancellationTerms("allowed", [], paid, penalty, paid - penalty))
    assert (terms.resolution, terms.penalty, terms.refund) == ("automatic", Money.zero(EUR), paid)
    manual = involuntary_cancellation_terms(CancellationTerms("unknown", [], paid))
    assert (manual.resolution, manual.penalty, manual.refund) == ("automatic", Money.zero(EUR), paid)


def test_a_product_that_cannot_be_cancelled_stays_so() -> None:
    terms = CancellationTerms("disallowed", ["usage_dates_passed"], Money.of("10", EUR))
    assert involuntary_cancellation_terms(terms) is terms


def test_only_penalty_zero_passes_on_an_involuntary_flow() -> None:
    assert check_involuntary_quote(Money.zero(EUR)) == []
    assert [f for f, _ in check_involuntary_quote(Money.of("0.01", EUR))] == ["penalty.amount"]


def test_waivers_record_the_penalty_given_up() -> None:
    waiver = grant(WaiverRequest(code="BEREAVEMENT", note="death in family"), "agt_1", Money.of("120", EUR),
                   Money.of("20", EUR))
    assert (waiver.code, waiver.granted_by, waiver.penalty_waived) == ("BEREAVEMENT", "agt_1", Money.of("100", EUR))
    # Charging more than the policy gives up nothing; no policy penalty, nothing to compare with.
    assert penalty_waived(Money.of("10", EUR), Money.of("20", EUR)) == Money.zero(EUR)
    assert penalty_waived(None, Money.zero(EUR)) is None
    assert schedule_change_waiver(Money.of("120", EUR), Money.of("240", EUR)).penalty_waived == Money.of("120", EUR)


def test_the_policy_penalty_is_the_tiers_or_none() -> None:
    tiered = CancellationPolicy.model_validate({"mode": "automatic", "tiers": [
        {"hours_before_start": 168, "penalty_percent": "50"}]})
    assert policy_penalty(tiered, Money.of("240", EUR), timedelta(days=3)) == Money.of("120", EUR)
    assert policy_penalty(CancellationPolicy(mode="manual"), Money.of("240", EUR), timedelta(days=3)) is None


def test_a_change_during_a_rescheduling_carries_no_fee() -> None:
    from tests.workflows.rescheduling_fakes import FLIGHT

    charges = ChangeCharges(fare_difference=Money.of("15", EUR), change_fee=Money.of("30", EUR),
                            total_due=Money.of("45", EUR))
    waived = without_change_fee(ChangeAlternative(itinerary=FLIGHT, charges=charges)).charges
    assert (waived.fare_difference, waived.change_fee, waived.total_due) == \
        (Money.of("15", EUR), Money.zero(EUR), Money.of("15", EUR))


def test_an_agents_quote_resent_after_the_flow_ended_is_recognised_with_its_waiver() -> None:
    from datetime import datetime, timezone

    from domain.cancellation_flow import AgentQuote, CancellationInfo
    from domain.waivers import Waiver

    zero, paid = Money.zero(EUR), Money.of("240", EUR)
    info = CancellationInfo(code="CAN-TEST0001", product_id="prd_1", reservation_id="res_1", partner_id="ptn_1",
                            status="cancelled", resolution="manual", paid=paid, penalty=zero, refund=paid,
                            decision_deadline=datetime(2027, 1, 1, tzinfo=timezone.utc))
    plain = AgentQuote(penalty=zero, refund=paid, agent_id="agt_1")
    waived = plain.model_copy(update={"waiver": WaiverRequest(code="MEDICAL")})
    assert info.shows_quote(plain) and not info.shows_quote(waived)
    granted = info.model_copy(update={"waiver": Waiver(code="MEDICAL", granted_by="agt_1")})
    assert granted.shows_quote(waived) and not granted.shows_quote(plain)
    # The schedule change's waiver is the rule's: the agent's quote at 0 without one is the same quote.
    involuntary = info.model_copy(update={"involuntary": True, "waiver": Waiver(code="SCHEDULE_CHANGE")})
    assert involuntary.shows_quote(plain)
