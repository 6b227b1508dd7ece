"""A record the store refused for good (docs/operations.md#a-refused-record): what a parked flow
shows, and what an operator's ``retry_record`` asks and answers.

A flow whose transition the store refuses (a constraint, a value its column cannot hold: no retry
of the same record can succeed) neither fails silently nor retries forever: it parks, showing the
refusal, and records the same transition again (same event id, so its event is stored and sent once)
when an operator, having repaired the cause, asks it to.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field


class RefusedRecord(BaseModel):
    """The transition a parked flow could not record, and why."""

    status: str = Field(description="the status the flow was moving to")
    event_type: str | None = Field(description="the event that transition stores and sends")
    reason: str = Field(description="the store's refusal, as the database or its checks said it")
    refused_at: AwareDatetime
    retries: int = Field(description="how many times an operator asked to record it again")


class RecordRetryRequest(BaseModel):
    """Who asks a parked flow to record its refused transition again (kept in the workflow's history)."""

    requested_by: str


class RecordRetried(BaseModel):
    """What the retry came to: ``recorded`` (the flow goes on from there) or ``refused`` again."""

    code: str
    status: str = Field(description="the status whose record was retried")
    outcome: Literal["recorded", "refused"]
    reason: str | None = Field(default=None, description="the store's refusal, when refused again")
