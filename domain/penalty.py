"""The automatic cancellation penalty rule (docs/flows.md#penalty-rule) and checks on an agent's manual quote (docs/api.md#cancellations)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, WithJsonSchema

from domain.money import DecimalString, Money, round_half_up

_MICROSECONDS_PER_HOUR = 3_600_000_000


def _percent_in_range(value: Decimal) -> Decimal:
    if not Decimal(0) <= value <= Decimal(100):
        raise ValueError("must be between 0 and 100")
    return value


# The published schema says what the validation accepts: a decimal string from 0 to 100.
PERCENT_PATTERN = r"^0*(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)$"
Percent = Annotated[
    DecimalString,
    AfterValidator(_percent_in_range),
    WithJsonSchema({"type": "string", "pattern": PERCENT_PATTERN, "examples": ["50", "12.5"]}),
]


class CancellationTier(BaseModel):
    """From ``hours_before_start`` hours before the start on, cancelling costs ``penalty_percent`` of the price."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hours_before_start: StrictInt = Field(ge=0)
    penalty_percent: Percent


def penalty_for(tiers: Sequence[CancellationTier], paid: Money, time_left: timedelta) -> Money:
    """Penalty for cancelling ``time_left`` before the product's start.

    A tier applies when ``hours_before_start >= h``, so the comparison is done on
    whole microseconds: a float hour count would put "exactly 168 h" on either side
    of the boundary depending on how the timedelta was built. A negative
    ``time_left`` (already started) makes every tier apply.
    """
    micros = time_left // timedelta(microseconds=1)
    percent = max(
        (t.penalty_percent for t in tiers if t.hours_before_start * _MICROSECONDS_PER_HOUR >= micros),
        default=Decimal(0),
    )
    return Money.of(round_half_up(Fraction(paid.amount) * Fraction(percent) / 100, paid.currency), paid.currency)


def refund_for(paid: Money, penalty: Money) -> Money:
    """What goes back to the traveller; defined as a difference so penalty + refund == paid always."""
    return paid - penalty


def check_agent_quote(paid: Money, penalty: Money, refund: Money) -> list[tuple[str, str]]:
    """Problems with an agent's manual quote as ``(field, message)`` pairs, ready for a 422.

    All problems are reported at once so the agent can fix the quote in one go;
    the sum is only compared when the currencies agree, since it is meaningless otherwise.
    """
    problems: list[tuple[str, str]] = []
    for name, money in (("penalty", penalty), ("refund", refund)):
        if money.currency != paid.currency:
            problems.append((f"{name}.currency", f"must be {paid.currency}, the currency of the paid amount"))
    for name, money in (("penalty", penalty), ("refund", refund)):
        if money.is_negative():
            problems.append((f"{name}.amount", "must not be negative"))
    if not any(field.endswith(".currency") for field, _ in problems) and penalty + refund != paid:
        problems.append(("refund.amount", f"penalty + refund must equal the paid amount {paid}"))
    return problems
