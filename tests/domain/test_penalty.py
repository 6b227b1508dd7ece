from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.money import MINOR_UNITS, Money, minor_units
from domain.penalty import CancellationTier, check_agent_quote, penalty_for, refund_for

# The sandbox example of docs/api.md#sandbox: 50 % from 168 h before the start, 100 % from 24 h.
TIERS = [
    CancellationTier(hours_before_start=168, penalty_percent="50"),  # type: ignore[arg-type]
    CancellationTier(hours_before_start=24, penalty_percent="100"),  # type: ignore[arg-type]
]
PAID = Money.of("240.00", "EUR")


def tier(hours: int, percent: str) -> CancellationTier:
    return CancellationTier(hours_before_start=hours, penalty_percent=percent)  # type: ignore[arg-type]


# --- tiers --------------------------------------------------------------------------


def test_tier_parses_from_json_and_round_trips() -> None:
    parsed = CancellationTier.model_validate_json('{"hours_before_start": 168, "penalty_percent": "50"}')
    assert parsed.penalty_percent == Decimal("50")
    assert parsed.model_dump(mode="json") == {"hours_before_start": 168, "penalty_percent": "50"}
    assert CancellationTier.model_validate_json(parsed.model_dump_json()) == parsed
    assert tier(0, "33.33").model_dump(mode="json")["penalty_percent"] == "33.33"


@pytest.mark.parametrize(
    "body",
    [
        {"hours_before_start": 168, "penalty_percent": 50},
        {"hours_before_start": 168, "penalty_percent": 50.0},
        {"hours_before_start": 168, "penalty_percent": "100.01"},
        {"hours_before_start": 168, "penalty_percent": "-1"},
        {"hours_before_start": 168, "penalty_percent": "NaN"},
        {"hours_before_start": -1, "penalty_percent": "50"},
        {"hours_before_start": "168", "penalty_percent": "50"},
        {"hours_before_start": 1.5, "penalty_percent": "50"},
        {"hours_before_start": True, "penalty_percent": "50"},
        {"hours_before_start": 168},
    ],
)
def test_invalid_tiers_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CancellationTier.model_validate(body)


def test_tier_json_schema_shows_percent_as_string() -> None:
    schema = CancellationTier.model_json_schema()
    assert schema["properties"]["penalty_percent"]["type"] == "string"
    assert schema["properties"]["hours_before_start"]["type"] == "integer"


# --- the penalty rule (docs/flows.md#penalty-rule) ---------------------------------------------------------


@pytest.mark.parametrize(
    ("time_left", "penalty"),
    [
        (timedelta(days=30), "0.00"),
        (timedelta(hours=168, microseconds=1), "0.00"),
        (timedelta(hours=168), "120.00"),  # exactly on the boundary: the tier applies
        (timedelta(hours=167.99), "120.00"),
        (timedelta(hours=24, seconds=1), "120.00"),
        (timedelta(hours=24), "240.00"),
        (timedelta(hours=23, minutes=59), "240.00"),
        (timedelta(0), "240.00"),
        (timedelta(hours=-5), "240.00"),  # already started: every tier qualifies
        (timedelta(days=-400), "240.00"),
    ],
)
def test_penalty_at_tier_boundaries(time_left: timedelta, penalty: str) -> None:
    result = penalty_for(TIERS, PAID, time_left)
    assert result == Money.of(penalty, "EUR")
    assert refund_for(PAID, result) == PAID - result


def test_no_tiers_means_no_penalty() -> None:
    assert penalty_for([], PAID, timedelta(hours=1)) == Money.zero("EUR")
    assert penalty_for([], PAID, timedelta(hours=-1)) == Money.zero("EUR")


def test_largest_qualifying_percent_wins_regardless_of_order() -> None:
    tiers = [tier(24, "10"), tier(168, "80"), tier(48, "20")]
    assert penalty_for(tiers, PAID, timedelta(hours=12)) == Money.of("192.00", "EUR")
    assert penalty_for(tiers, PAID, timedelta(hours=30)) == Money.of("192.00", "EUR")
    assert penalty_for(tiers, PAID, timedelta(hours=200)) == Money.zero("EUR")


def test_zero_hour_tier_applies_only_from_the_start() -> None:
    tiers = [tier(0, "100")]
    assert penalty_for(tiers, PAID, timedelta(microseconds=1)).is_zero()
    assert penalty_for(tiers, PAID, timedelta(0)) == PAID


@pytest.mark.parametrize(
    ("paid", "currency", "percent", "penalty"),
    [
        ("0.01", "EUR", "50", "0.01"),  # 0.005 rounds up
        ("0.03", "EUR", "50", "0.02"),  # 0.015 rounds up
        ("100.00", "EUR", "33.33", "33.33"),
        ("0.15", "EUR", "33.33", "0.05"),  # 0.0499950
        ("1.00", "EUR", "33.35", "0.33"),  # 0.3335 -> 0.33
        ("1.50", "EUR", "33.5", "0.50"),  # 0.5025 -> 0.50
        ("0.30", "EUR", "5", "0.02"),  # 0.015 -> 0.02
        ("1", "JPY", "50", "1"),
        ("3", "JPY", "50", "2"),
        ("1.001", "KWD", "50", "0.501"),
        ("240", "EUR", "0", "0.00"),
        ("240", "EUR", "100", "240.00"),
    ],
)
def test_penalty_rounds_half_up(paid: str, currency: str, percent: str, penalty: str) -> None:
    result = penalty_for([tier(24, percent)], Money.of(paid, currency), timedelta(hours=1))
    assert result == Money.of(penalty, currency)


def test_refund_for() -> None:
    assert refund_for(PAID, Money.of("120", "EUR")) == Money.of("120.00", "EUR")
    assert refund_for(PAID, PAID).is_zero()
    with pytest.raises(ValueError):
        refund_for(PAID, Money.of("1", "USD"))


tiers_strategy = st.lists(
    st.builds(
        CancellationTier,
        hours_before_start=st.integers(min_value=0, max_value=24 * 400),
        penalty_percent=st.decimals(min_value=0, max_value=100, places=2).map(str),
    ),
    max_size=6,
)
paid_strategy = st.sampled_from(sorted(MINOR_UNITS)).flatmap(
    lambda c: st.integers(min_value=0, max_value=10**12).map(lambda u: Money.of(Decimal(u).scaleb(-minor_units(c)), c))
)
time_strategy = st.timedeltas(min_value=timedelta(days=-30), max_value=timedelta(days=500))


@given(tiers_strategy, paid_strategy, time_strategy)
def test_penalty_plus_refund_is_paid_and_penalty_is_bounded(
    tiers: list[CancellationTier], paid: Money, time_left: timedelta
) -> None:
    penalty = penalty_for(tiers, paid, time_left)
    refund = refund_for(paid, penalty)
    assert penalty.currency == refund.currency == paid.currency
    assert penalty + refund == paid
    assert Money.zero(paid.currency).amount <= penalty.amount <= paid.amount
    assert not refund.is_negative()
    assert check_agent_quote(paid, penalty, refund) == []


@given(tiers_strategy, paid_strategy, time_strategy, time_strategy)
def test_penalty_never_decreases_as_the_start_gets_closer(
    tiers: list[CancellationTier], paid: Money, a: timedelta, b: timedelta
) -> None:
    sooner, later = sorted([a, b])
    assert penalty_for(tiers, paid, sooner).amount >= penalty_for(tiers, paid, later).amount


@given(tiers_strategy, paid_strategy, time_strategy)
def test_penalty_does_not_depend_on_tier_order(
    tiers: list[CancellationTier], paid: Money, time_left: timedelta
) -> None:
    assert penalty_for(tiers, paid, time_left) == penalty_for(list(reversed(tiers)), paid, time_left)


# --- agent quotes (docs/api.md#cancellations) ---------------------------------------------------------------


def test_valid_agent_quote_has_no_problems() -> None:
    assert check_agent_quote(PAID, Money.of("40", "EUR"), Money.of("200", "EUR")) == []
    assert check_agent_quote(PAID, Money.zero("EUR"), PAID) == []
    assert check_agent_quote(PAID, PAID, Money.zero("EUR")) == []


def test_agent_quote_that_does_not_add_up() -> None:
    problems = check_agent_quote(PAID, Money.of("40", "EUR"), Money.of("199.99", "EUR"))
    assert problems == [("refund.amount", "penalty + refund must equal the paid amount 240.00 EUR")]


def test_agent_quote_in_another_currency() -> None:
    problems = check_agent_quote(PAID, Money.of("40", "USD"), Money.of("200", "EUR"))
    assert [field for field, _ in problems] == ["penalty.currency"]
    assert "EUR" in problems[0][1]
    problems = check_agent_quote(PAID, Money.of("40", "USD"), Money.of("200", "GBP"))
    assert [field for field, _ in problems] == ["penalty.currency", "refund.currency"]


def test_agent_quote_with_negative_amounts() -> None:
    problems = check_agent_quote(PAID, Money.of("-10", "EUR"), Money.of("250", "EUR"))
    assert problems == [("penalty.amount", "must not be negative")]
    problems = check_agent_quote(PAID, Money.of("250", "EUR"), Money.of("-10", "EUR"))
    assert problems == [("refund.amount", "must not be negative")]
    fields = [f for f, _ in check_agent_quote(PAID, Money.of("-1", "EUR"), Money.of("-1", "EUR"))]
    assert fields == ["penalty.amount", "refund.amount", "refund.amount"]


def test_agent_quote_reports_every_problem_at_once() -> None:
    problems = check_agent_quote(PAID, Money.of("-1", "EUR"), Money.of("5", "USD"))
    assert [f for f, _ in problems] == ["refund.currency", "penalty.amount"]
