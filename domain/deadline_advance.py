"""Advancing a deadline (docs/flows.md#advancing-a-deadline): the deadlines a flow waits on, by name,
the capability a deployment grants a flow to have them brought forward, and what advancing one answers.

Advancing makes the deadline a flow waits on pass now, exactly as if its time had come: the flow
takes the path the deadline leads to (a manual cancellation expires, a rescheduling applies its
default, …). Only deployments that allow it grant the capability (the sandbox: docs/api.md#sandbox);
a flow started without it refuses every advance, whoever asks.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

# Each deadline is named after the setting that gives its length (docs/configuration.md): the window
# an agent has to quote, the partner's decision window, the rescheduling window, a checkout's and a
# change context's validity, a credit's validity. A workflow that waits on another deadline adds its name here.
DeadlineName = Literal[
    "agent_quote_window", "decision_window", "rescheduling_window", "checkout_ttl", "change_context_ttl", "credit_validity"
]


class AdvanceableDeadlines(BaseModel):
    """What a workflow's input carries so its deadlines may be advanced. A neutral capability, not a
    mode: the service that starts the workflow sets it from the deployment's settings, and the
    workflow only honours it (workflows hold no setting of their own)."""

    deadlines_advanceable: bool = Field(
        default=False, description="the deployment lets a caller make this workflow's pending deadline pass now"
    )


class AdvanceRequest(BaseModel):
    """Who asks for the pending deadline to pass now (kept in the workflow's history)."""

    requested_by: str


class AdvancedDeadline(BaseModel):
    """The deadline an advance made pass, and when it would have passed."""

    deadline: DeadlineName
    due_at: AwareDatetime
