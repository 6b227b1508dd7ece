"""Record one history per main flow path into ``tests/histories/`` for ``test_replay``.

Run ``python -m tests.workflows.record_histories [name …]`` after a deliberate change to a flow
(guarded by ``workflow.patched`` when flows may be running) and commit the files. Before
re-recording a path whose commands a patch changed, keep its old history as ``<name>_v1.json`` (``_v2`` for the next patch, and so on):
``test_replay`` replays every file, so flows started before the patch are proven to replay too.
They leave when the patch is deprecated, unless they still replay; the table of live patches in
docs/workflows.md#live-patches says which ones prove what.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from domain.disruptions import BATCHES_PER_RUN, FAN_OUT_BATCH, FanOutInput
from domain.flow_info import event_body
from tests.workflows import advanced_paths, change_fakes, involuntary_paths, rescheduling_fakes, scenarios
from tests.workflows.conftest import Harness, find_test_server
from tests.workflows.fakes import FakeSupplier, InMemoryStore, new_worker
from tests.workflows.receiver import WebhookReceiver
from tests.workflows.rescheduling_fakes import chosen, overtaken, recorded, unanswered, waited
from workflows.credit_expiry import CreditExpiryInput, CreditExpiryWorkflow, expiry_workflow_id
from workflows.disruption import DisruptionFanOutWorkflow

HISTORIES = Path(__file__).resolve().parent.parent / "histories"

Handle = WorkflowHandle[Any, Any]


async def automatic_refused(h: Harness) -> Handle:
    h.supplier.refusal = "ticket already used"
    return await scenarios.automatic(h.client, h.task_queue, "CAN-HIST0002")


async def automatic_recorded_twice(h: Harness) -> Handle:
    """The ``cancelled`` transition commits, its answer is lost, and the local activity runs again."""
    h.store.lose_answer_once = "cancelled"
    return await scenarios.automatic(h.client, h.task_queue, "CAN-HIST0007")


async def automatic_record_retried(h: Harness) -> Handle:
    """The store refuses the ``cancelled`` transition for good once: the flow parks, an operator retries."""
    h.store.refuse["cancelled"] = 1
    return await scenarios.automatic_record_retried(h.client, h.task_queue, "CAN-HIST0010")


async def credit_expired(h: Harness) -> Handle:
    """A credit's validity passes (skipped by the time-skipping server) and its expiry is recorded."""
    expires_at = datetime(2027, 1, 1, tzinfo=timezone.utc)
    handle = await h.client.start_workflow(
        CreditExpiryWorkflow.run, CreditExpiryInput(credit_id="crd_hist000000000000001", expires_at=expires_at),
        id=expiry_workflow_id("crd_hist000000000000001"), task_queue=h.task_queue,
    )
    await asyncio.wait_for(handle.result(), scenarios.RESULT_WAIT)
    return handle


async def disruption_fanned_out(h: Harness, products: int, disruption_id: str) -> Handle:
    """A disruption's fan-out through ``products`` products (a run goes through BATCHES_PER_RUN batches)."""
    h.store.flight_products = products
    handle = await h.client.start_workflow(DisruptionFanOutWorkflow.run, FanOutInput(disruption_id=disruption_id),
                                           id=disruption_id, task_queue=h.task_queue)
    await asyncio.wait_for(handle.result(), scenarios.RESULT_WAIT)
    # The first run: the one a flight with more products continued as new from.
    return h.client.get_workflow_handle(disruption_id, first_execution_run_id=handle.first_execution_run_id,
                                        run_id=handle.first_execution_run_id)


async def trigger_delivered(h: Harness) -> Handle:
    event_id = "evt_hist0000000000000001"
    created_at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    async with WebhookReceiver(h.store.webhook_secret, failures=2) as receiver:
        h.store.webhook_url = receiver.url
        h.store.add_event(event_id, event_body(event_id, "cancellation.completed", created_at, {}))
        return await scenarios.deliver(h.client, h.task_queue, event_id, timedelta(hours=1), timedelta(milliseconds=50))


SCENARIOS: dict[str, Callable[[Harness], Awaitable[Handle]]] = {
    "cancellation_automatic_cancelled": lambda h: scenarios.automatic(h.client, h.task_queue, "CAN-HIST0001"),
    "cancellation_automatic_failed": automatic_refused,
    "cancellation_manual_accepted": lambda h: scenarios.manual(h.client, h.task_queue, "CAN-HIST0003", "accept"),
    "cancellation_manual_rejected": lambda h: scenarios.manual(h.client, h.task_queue, "CAN-HIST0004", "reject"),
    "cancellation_manual_no_response": lambda h: scenarios.manual(h.client, h.task_queue, "CAN-HIST0005", None),
    "cancellation_manual_expired": lambda h: scenarios.unquoted(h.client, h.task_queue, "CAN-HIST0006"),
    "cancellation_automatic_recorded_twice": automatic_recorded_twice,
    "cancellation_automatic_record_retried": automatic_record_retried,
    # Opened with ``processing`` recorded by the gateway (patch processing-recorded-at-opening).
    "cancellation_automatic_opened": lambda h: scenarios.automatic(
        h.client, h.task_queue, "CAN-HIST0014", opened_at=datetime(2026, 12, 5, 3, 0, tzinfo=timezone.utc)
    ),
    "cancellation_automatic_credited": lambda h: scenarios.automatic(h.client, h.task_queue, "CAN-HIST0008", "credit"),
    "cancellation_manual_accepted_as_credit": lambda h: scenarios.manual(h.client, h.task_queue, "CAN-HIST0009", "accept",
                                                                         "credit"),
    # The partner decides while the quote is being recorded (issue 24, finding 4): taken, applied after.
    "cancellation_manual_decided_while_quoting": lambda h: scenarios.decided_while_quote_recorded(
        h.client, h.task_queue, "CAN-HIST0010", h.store
    ),
    # Partial cancellations (docs/flows.md#partial-cancellation): the supplier is asked for the travellers named.
    "cancellation_automatic_partial": lambda h: scenarios.automatic(h.client, h.task_queue, "CAN-HIST0011",
                                                                    traveller_ids=["T2"]),
    "cancellation_manual_partial_accepted": lambda h: scenarios.manual(h.client, h.task_queue, "CAN-HIST0012", "accept",
                                                                       traveller_ids=["T1", "T3"]),
    "credit_expired": credit_expired,
    "trigger_delivered": trigger_delivered,
    "disruption_fanned_out": lambda h: disruption_fanned_out(h, 250, "dsr_hist000000000000001"),
    "disruption_continued_as_new": lambda h: disruption_fanned_out(h, BATCHES_PER_RUN * FAN_OUT_BATCH + 1,
                                                                   "dsr_hist000000000000002"),
    "rescheduling_accepted": recorded(chosen, "RS-HIST0001", alternative_id="rebook-1d"),
    "rescheduling_refunded": recorded(chosen, "RS-HIST0002", alternative_id="refund", kind="flight_cancelled"),
    "rescheduling_refunded_as_credit": recorded(chosen, "RS-HIST0006", alternative_id="refund", kind="flight_cancelled",
                                                refund_to="credit"),
    "rescheduling_auto_accepted": recorded(unanswered, "RS-HIST0003"),
    "rescheduling_waited_for_product": recorded(waited, "RS-HIST0004"),
    "rescheduling_obsolete": recorded(overtaken, "RS-HIST0005"),
    "change_context_modified": change_fakes.recorded(change_fakes.booked, "CF-HIST0001"),
    "change_context_expired": change_fakes.recorded(change_fakes.unbooked, "CF-HIST0002"),
    "change_checkout_modified": change_fakes.recorded(change_fakes.checked_out, "CF-HIST0003"),
    "change_checkout_expired": change_fakes.recorded(change_fakes.unbooked, "CF-HIST0004", resolution="manual"),
    "special_request_confirmed": change_fakes.recorded(change_fakes.special_request, "SR-HIST0001"),
    "special_request_declined": change_fakes.recorded(
        change_fakes.special_request, "SR-HIST0002", verdict=change_fakes.DECLINED
    ),
    # Deadlines advanced (docs/flows.md#advancing-a-deadline): each ends where its time would have led.
    "cancellation_manual_agent_window_advanced": change_fakes.recorded(advanced_paths.agent_window_advanced, "CAN-HIST0008"),
    "cancellation_manual_decision_window_advanced": change_fakes.recorded(
        advanced_paths.decision_window_advanced, "CAN-HIST0009"
    ),
    "change_context_advanced": change_fakes.recorded(advanced_paths.context_advanced, "CF-HIST0005"),
    "change_checkout_advanced": change_fakes.recorded(advanced_paths.checkout_advanced, "CF-HIST0006"),
    "change_checkout_prebooked_advanced": change_fakes.recorded(advanced_paths.checkout_advanced, "CF-HIST0007", prebooked=True),
    # The partner books while the pre-book is being recorded (issue 24, finding 4): taken, applied after.
    "change_checkout_booked_while_prebooking": change_fakes.recorded(change_fakes.booked_while_prebook_recorded,
                                                                     "CF-HIST0008"),
    "rescheduling_window_advanced": rescheduling_fakes.recorded(advanced_paths.rescheduling_window_advanced, "RS-HIST0006"),
    # A schedule change at each stage of a manual cancellation (docs/flows.md#involuntary-cancellations).
    "cancellation_involuntary_awaiting_quote": rescheduling_fakes.recorded(involuntary_paths.changed_awaiting_quote,
                                                                           "CAN-HIST0011"),
    "cancellation_involuntary_awaiting_decision": rescheduling_fakes.recorded(involuntary_paths.changed_awaiting_decision,
                                                                              "CAN-HIST0012"),
    "cancellation_involuntary_after_accept": rescheduling_fakes.recorded(involuntary_paths.changed_after_accept,
                                                                         "CAN-HIST0013"),
}


async def record(name: str, scenario: Callable[[Harness], Awaitable[Handle]]) -> None:
    # A fresh server per path: once an abandoned trigger workflow outlives its flow, the
    # time-skipping server stops skipping time (sdk-typescript issue 1101).
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=find_test_server(), data_converter=pydantic_data_converter
    ) as env:
        harness = Harness(env.client, "record-histories", InMemoryStore(), FakeSupplier())
        async with new_worker(env.client, harness.task_queue, harness.store, harness.supplier):
            history = await (await scenario(harness)).fetch_history()
    (HISTORIES / f"{name}.json").write_text(history.to_json() + "\n")
    print(f"recorded tests/histories/{name}.json ({len(history.events)} events)")


async def record_all(names: list[str]) -> None:
    """Record the paths named (every path when none is)."""
    HISTORIES.mkdir(exist_ok=True)
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"no such path: {', '.join(sorted(unknown))}")
    for name, scenario in SCENARIOS.items():
        if not names or name in names:
            await record(name, scenario)

if __name__ == "__main__":
    asyncio.run(record_all(sys.argv[1:]))
