"""Waiting with a deadline: a durable timer raced against a condition the workflow's handlers set,
and the one way such a deadline passes early, the ``advance_deadline`` update
(docs/flows.md#advancing-a-deadline).

A workflow that waits on deadlines inherits :class:`DeadlineWaits` (every flow does, through
``FlowWorkflow``; a workflow that is not a flow, such as a credit's expiry, may too) and waits with
``self._deadline_ahead(name, at)`` then ``await deadline.wait(condition)``. An advance is a real
change of that wait, never a shortcut around the workflow: the wait ends as its timer would have, and
the workflow takes the path the deadline leads to. Only a workflow started with the capability
(``domain.deadline_advance.AdvanceableDeadlines``) honours one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from temporalio import workflow

from domain.deadline_advance import AdvancedDeadline, AdvanceRequest, DeadlineName
from domain.refusals import Refusal
from workflows.update_refusals import refusal


async def wait_until(condition: Callable[[], bool], deadline: datetime, summary: str) -> bool:
    """Wait for ``condition`` until ``deadline``; False when the time ran out.

    A deadline, not a duration: the flow waits until the instant it showed, however long it took
    to get here (recording the move that shows it, a busy worker)."""
    timeout = deadline - workflow.now()
    if timeout <= timedelta(0):
        return condition()
    try:
        await workflow.wait_condition(condition, timeout=timeout, timeout_summary=summary)
    except TimeoutError:
        return False
    return True


@dataclass
class Deadline:
    """One deadline a workflow waits on: from when the workflow knows it (before the move that shows
    it, so a caller who sees the waiting status is heard) until its wait ends."""

    name: DeadlineName
    at: datetime
    advanced: bool = False
    ended: bool = False

    @property
    def pending(self) -> bool:
        return not (self.advanced or self.ended)

    def reopen(self) -> None:
        """The same deadline is waited on again (a checkout's validity, for its booking after its
        pre-book): an advance is heard again, unless it was advanced already."""
        self.ended = False

    async def wait(self, condition: Callable[[], bool]) -> None:
        """Wait for ``condition`` until the deadline passes: at its time, or now once it is advanced.
        The caller reads its own state afterwards: an input accepted in the activation the deadline
        passed in is honoured, whichever way it passed."""
        try:
            if not self.advanced:
                # Without an advance this issues exactly the commands it always did (one timer, named
                # as before), so histories recorded before advances existed replay unchanged.
                await wait_until(lambda: condition() or self.advanced, self.at, self.name.replace("_", "-"))
        finally:
            self.ended = True


class DeadlineWaits:
    """The deadline a workflow waits on now, and the ``advance_deadline`` update that makes it pass."""

    def __init__(self, deadlines_advanceable: bool) -> None:
        self._deadlines_advanceable = deadlines_advanceable
        self._deadline: Deadline | None = None

    def _deadline_ahead(self, name: DeadlineName, at: datetime) -> Deadline:
        """The deadline the workflow waits on next; an advance is heard from now on."""
        self._deadline = Deadline(name, at)
        return self._deadline

    @workflow.update  # registered as "advance_deadline": the method's name is the update's, never to change
    async def advance_deadline(self, request: AdvanceRequest) -> AdvancedDeadline:
        deadline = self._deadline
        assert deadline is not None  # the validator admits a pending deadline only
        deadline.advanced = True
        return AdvancedDeadline(deadline=deadline.name, due_at=deadline.at)

    @advance_deadline.validator
    def _validate_advance(self, request: AdvanceRequest) -> None:
        if not self._deadlines_advanceable:
            raise refusal(Refusal.DEADLINE_NOT_ADVANCEABLE,
                          "this flow's deadlines pass only with time: it was started where advancing is not allowed")
        if self._deadline is None or not self._deadline.pending:
            raise refusal(Refusal.NO_PENDING_DEADLINE, "the flow waits on no deadline now")
