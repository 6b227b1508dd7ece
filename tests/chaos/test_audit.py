"""The chaos audit's check of partners' decisions (tests/chaos/audit.py), on journeys made up here:
it must catch a decision lost as finding 4 of issue 24 lost one, or the chaos run proves nothing."""

from __future__ import annotations

from tests.chaos.audit import decision_problems
from tests.chaos.journeys import Journey


def journey(*decisions: tuple[str, int]) -> Journey:
    return Journey("run-0001", "cancellation", "cancelled", code="CAN-AUDIT001", decisions=list(decisions))


def test_a_decision_taken_and_applied_passes() -> None:
    assert decision_problems(journey(("accept", 202)), {"status": "cancelled", "decision": "accept"}) == []
    assert decision_problems(journey(("reject", 200)), {"status": "rejected", "decision": "reject"}) == []
    assert decision_problems(journey(("accept", 200)), {"status": "failed", "decision": "accept"}) == []
    assert decision_problems(journey(), {"status": "no_response"}) == []  # no decision sent, nothing to hold


def test_a_decision_refused_for_good_then_taken_is_reported() -> None:
    problems = decision_problems(journey(("accept", 409), ("accept", 200)), {"status": "cancelled", "decision": "accept"})
    assert len(problems) == 1 and "refused for good" in problems[0]


def test_a_flow_ending_no_response_after_a_decision_is_reported() -> None:
    [lost] = decision_problems(journey(("accept", 202)), {"status": "no_response", "decision": None})
    assert "ended no_response" in lost and "accept was taken" in lost


def test_a_decision_never_taken_is_reported() -> None:
    problems = decision_problems(journey(("accept", 409)), {"status": "no_response", "decision": None})
    assert any("no decision taken" in problem for problem in problems)


def test_the_outcome_follows_the_last_decision_taken() -> None:
    [wrong] = decision_problems(journey(("reject", 200)), {"status": "cancelled", "decision": "accept"})
    assert "after the partner's reject was taken" in wrong
