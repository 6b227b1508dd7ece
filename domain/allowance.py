"""May this product still be cancelled or changed, and why not (docs/api.md#cancellations, docs/api.md#changes)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Allowance = Literal["allowed", "disallowed", "unknown"]


@dataclass(frozen=True)
class ProductState:
    """The facts an allowance is decided on, whatever the product's kind."""

    kind: str
    status: str  # pending | confirmed | cancelled
    reservation_status: str
    start: datetime
    end: datetime
    flow_in_progress: bool

    def usage_dates_passed(self, now: datetime) -> bool:
        # A hotel is used once its check-out has passed; a flight or service once it has started.
        return (self.end if self.kind == "hotel" else self.start) <= now

    def common_refusals(self, now: datetime) -> list[str]:
        reasons = []
        if self.usage_dates_passed(now):
            reasons.append("usage_dates_passed")
        if self.status == "cancelled":
            reasons.append("already_cancelled")
        if self.reservation_status == "pending" or self.status == "pending":
            reasons.append("reservation_pending")
        if self.flow_in_progress:
            reasons.append("flow_in_progress")
        return reasons


def cancellation_allowance(state: ProductState, mode: str, now: datetime) -> tuple[Allowance, list[str]]:
    """``unknown`` when an agent must quote (manual policy); otherwise the tiers decide."""
    reasons = state.common_refusals(now)
    if mode == "none":
        reasons.append("not_cancellable")
    if reasons:
        return "disallowed", reasons
    return ("unknown" if mode == "manual" else "allowed"), []


def change_allowance(state: ProductState, changeable: bool, now: datetime) -> list[str]:
    """The reasons a change is refused; empty when it is allowed."""
    reasons = state.common_refusals(now)
    if not changeable:
        reasons.append("airline_restriction")
    return reasons
