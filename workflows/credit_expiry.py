"""A credit's expiry (docs/settlement.md#credits). One workflow per credit, id ``credit-expiry-<credit id>``,
started by the flow whose transition issued the credit, as soon as that transition is recorded; it
waits on a durable timer until the credit's ``expires_at`` and then records the expiry, once.

The timer is Temporal's, so the expiry happens at that time whether or not a worker, the gateway or
the Temporal server was running then: a worker that comes back later finds the timer fired and
records the expiry at ``expires_at``. The store decides whether anything expires (a used credit does
not) and keeps the expiry once by its key, so a retried activity or a second run changes nothing.
"""

from __future__ import annotations

from pydantic import AwareDatetime
from temporalio import workflow
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.workflow import ParentClosePolicy

from domain.credit_ledger import CreditState, RefundDestination
from domain.deadline_advance import AdvanceableDeadlines
from workflows.deadlines import DeadlineWaits
from workflows.flow_transitions import RECORD_ATTEMPT_TIMEOUT, RECORD_RETRY

# Referenced, never called here: the sandbox takes the activity module (and what it imports) from outside.
with workflow.unsafe.imports_passed_through():
    from activities.credit_expiries import CreditActivities


class CreditExpiryInput(AdvanceableDeadlines):
    credit_id: str
    expires_at: AwareDatetime


def expiry_workflow_id(credit_id: str) -> str:
    return f"credit-expiry-{credit_id}"


@workflow.defn(name="CreditExpiryWorkflow")
class CreditExpiryWorkflow(DeadlineWaits):
    @workflow.init
    def __init__(self, input: CreditExpiryInput) -> None:
        super().__init__(input.deadlines_advanceable)
        # Known from the first activation, so an advance sent as soon as the credit exists is heard.
        self._validity = self._deadline_ahead("credit_validity", input.expires_at)

    @workflow.run
    async def run(self, input: CreditExpiryInput) -> CreditState | None:
        # Nothing but its deadline ends a credit's validity: the shared deadline wait (one timer, as
        # before advances existed), which the sandbox's advance may end early (docs/flows.md).
        await self._validity.wait(lambda: False)
        # The instant it expired, however late a worker got to record it.
        at = min(workflow.now(), input.expires_at)
        return await workflow.execute_activity_method(
            CreditActivities.expire_credit, args=[input.credit_id, at],
            start_to_close_timeout=RECORD_ATTEMPT_TIMEOUT, retry_policy=RECORD_RETRY, summary="the credit expires",
        )


async def start_expiry(issued: RefundDestination, deadlines_advanceable: bool) -> None:
    """Start the expiry of the credit a flow's transition has just issued (recorded, so a replay of
    the flow reaches this again and never skips it), and leave it running on its own: the flow ends
    long before the credit does. A credit's expiry already started (the same move replayed after a
    crash) is that one. Its deadline may be advanced where the issuing flow's may."""
    if issued.credit_id is None or issued.credit_expires_at is None:
        return
    try:
        await workflow.start_child_workflow(
            CreditExpiryWorkflow.run,
            CreditExpiryInput(credit_id=issued.credit_id, expires_at=issued.credit_expires_at,
                              deadlines_advanceable=deadlines_advanceable),
            id=expiry_workflow_id(issued.credit_id),
            parent_close_policy=ParentClosePolicy.ABANDON,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        )
    except WorkflowAlreadyStartedError:
        pass
