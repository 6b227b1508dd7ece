"""A special request (API.md §9, seed 001 "Special-Requests"). Workflow id = the request id (``SR-…``).

requested → confirmed | declined. The airline answers later: the flow sleeps on a durable timer
for the supplier's delay, then asks the supplier port for its answer, so a worker restart in
between loses nothing. It never takes the product's lock (see ``domain.special_requests``).
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain.codes import FlowKind
    from domain.special_requests import (
        ASK_SPECIAL_REQUEST,
        SPECIAL_REQUEST_CONFIRMED,
        SPECIAL_REQUEST_DECLINED,
        SpecialRequestAsk,
        SpecialRequestInfo,
        SpecialRequestInput,
        SpecialRequestStatus,
        SupplierAnswer,
    )

from workflows import mechanics


@workflow.defn(name="SpecialRequestWorkflow")
class SpecialRequestWorkflow:
    @workflow.init
    def __init__(self, input: SpecialRequestInput) -> None:
        self._input = input
        self._info = input.initial_info()

    @workflow.run
    async def run(self, input: SpecialRequestInput) -> SpecialRequestInfo:
        await self._move("requested")
        await workflow.sleep(input.supplier_delay, summary="airline answers special requests")
        answer = await workflow.execute_activity(
            ASK_SPECIAL_REQUEST,
            SpecialRequestAsk(
                request_id=input.code,
                product_id=input.product_id,
                option_code=input.option.code,
                traveller_id=input.traveller_id,
                note=input.note,
            ),
            result_type=SupplierAnswer,
            start_to_close_timeout=mechanics.SUPPLIER_TIMEOUT,
            retry_policy=mechanics.SUPPLIER_RETRY,
        )
        if answer.status == "confirmed":
            await self._move("confirmed", SPECIAL_REQUEST_CONFIRMED)
        else:
            await self._move("declined", SPECIAL_REQUEST_DECLINED, reason=answer.reason)
        return self._info

    async def _move(self, status: SpecialRequestStatus, event_type: str | None = None, **changes: object) -> None:
        self._info = await mechanics.record_transition(
            self._info,
            FlowKind.SPECIAL_REQUEST,
            status,
            webhook_retry_for=self._input.webhook_retry_for,
            event_type=event_type,
            **changes,
        )

    @workflow.query
    def info(self) -> SpecialRequestInfo:
        return self._info
