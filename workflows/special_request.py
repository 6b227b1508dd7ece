"""A special request (docs/flows.md#special-request). Workflow id = the
request id (``SR-…``).

requested → confirmed | declined. The airline answers later: the flow hands the request to the
supplier, which says when it will answer, and waits on durable timers for that answer, so a worker
restart in between loses nothing. It never takes the product's lock (see ``domain.special_request_flow``).
"""

from __future__ import annotations

from temporalio import workflow

from domain.codes import FlowKind
from domain.special_request_flow import (
    SPECIAL_REQUEST_CONFIRMED,
    SPECIAL_REQUEST_DECLINED,
    SpecialRequestAsk,
    SpecialRequestInfo,
    SpecialRequestInput,
    SpecialRequestStatus,
)
from workflows import supplier_steps
from workflows.flow_transitions import FlowWorkflow


@workflow.defn(name="SpecialRequestWorkflow")
class SpecialRequestWorkflow(FlowWorkflow[SpecialRequestInfo, SpecialRequestStatus]):
    kind = FlowKind.SPECIAL_REQUEST

    @workflow.init
    def __init__(self, input: SpecialRequestInput) -> None:
        super().__init__(input.initial_info(), input.webhook_retry_for, input.deadlines_advanceable)

    @workflow.run
    async def run(self, input: SpecialRequestInput) -> SpecialRequestInfo:
        await self._move("requested")
        ask = SpecialRequestAsk(
            request_id=input.code,
            product_id=input.product_id,
            option_code=input.option.code,
            traveller_id=input.traveller_id,
            note=input.note,
        )
        answer = await supplier_steps.ask_special_request(ask)
        if answer.status == "confirmed":
            await self._move("confirmed", SPECIAL_REQUEST_CONFIRMED)
        else:
            await self._move("declined", SPECIAL_REQUEST_DECLINED, reason=answer.reason)
        return self._info

    @workflow.query
    def info(self) -> SpecialRequestInfo:
        return self._info
