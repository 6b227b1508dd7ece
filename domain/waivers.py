"""Waivers (docs/flows.md#waivers): a penalty given up, all or part, with a reason finance can count.

An agent grants one when quoting a manual cancellation; a partner asks for one with its quote request
(the quote then becomes manual: an agent decides); a schedule change grants one by itself
(``domain.involuntary``). What a waiver records is the same whoever granted it: its code, a note,
who granted it and the penalty waived, which is the policy's penalty less the penalty charged.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.money import Money
from domain.penalty import penalty_for
from domain.products import CancellationPolicy

WaiverCode = Literal["MEDICAL", "BEREAVEMENT", "GOODWILL", "SCHEDULE_CHANGE", "OTHER"]
WAIVER_CODES: tuple[WaiverCode, ...] = ("MEDICAL", "BEREAVEMENT", "GOODWILL", "SCHEDULE_CHANGE", "OTHER")
# The waiver a schedule change grants (docs/flows.md#involuntary-cancellations).
SCHEDULE_CHANGE: WaiverCode = "SCHEDULE_CHANGE"
# Who grants the waiver of an involuntary cancellation: the rule, not a person.
GRANTED_BY_RULE = "rule:involuntary"


class WaiverRequest(BaseModel):
    """A waiver as an agent grants it or a partner asks for it: why, and a free note."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: WaiverCode
    note: str | None = Field(default=None, max_length=2000)


class Waiver(WaiverRequest):
    """A waiver granted: on the flow info, the fee position and the payments journal.

    ``penalty_waived`` is the policy's penalty less the penalty charged; None when the policy states
    no penalty to compare with (a manual policy without tiers: the agent is the policy)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    granted_by: str | None = None
    penalty_waived: Money | None = None


def penalty_waived(policy_penalty: Money | None, charged: Money) -> Money | None:
    """What the waiver gave up: the policy's penalty less the penalty charged, never below zero."""
    if policy_penalty is None or policy_penalty.currency != charged.currency:
        return None
    waived = policy_penalty - charged
    return Money.zero(charged.currency) if waived.is_negative() else waived


def grant(request: WaiverRequest, granted_by: str, policy_penalty: Money | None, charged: Money) -> Waiver:
    return Waiver(code=request.code, note=request.note, granted_by=granted_by,
                  penalty_waived=penalty_waived(policy_penalty, charged))


def policy_penalty(policy: CancellationPolicy, paid: Money, time_left: timedelta) -> Money | None:
    """The penalty the policy's tiers give ``time_left`` before the start: what a waiver gives up from;
    None when the policy has no tiers (a manual policy: the agent is the policy)."""
    if not policy.tiers:
        return None
    return penalty_for(policy.tiers, paid, time_left)
