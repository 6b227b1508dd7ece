"""Every path of the cancellation flow (docs/api.md#cancellations) on the time-skipping server, over in-memory ports."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateHandle, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError

from domain.cancellation_flow import AgentQuote, CancellationInfo, Decision, PartnerDecision
from domain.money import Money
from tests.workflows.conftest import Harness
from tests.workflows.scenarios import (
    AGENT_QUOTE,
    RESULT_WAIT,
    CancellationHandle,
    automatic,
    decided_while_quote_recorded,
    finish,
    manual,
    start_cancellation,
    unquoted,
)
from workflows.cancellation import CancellationWorkflow
from workflows.trigger_delivery import trigger_workflow_id

CODE = "CAN-TEST0001"


def refusal(error: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> ApplicationError:
    cause = error.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


def assert_only_last_terminal(h: Harness) -> None:
    terminal = [r.terminal for r in h.store.records if r.code == CODE]
    assert terminal == [False] * (len(terminal) - 1) + [True]


async def test_automatic_cancellation_completes(harness: Harness) -> None:
    handle = await automatic(harness.client, harness.task_queue, CODE)

    info = await finish(handle)
    assert info.status == "cancelled"
    assert (info.penalty, info.refund) == (Money.of("120", "EUR"), Money.of("120", "EUR"))
    assert [e.event for e in info.history] == ["processing", "cancelled"]
    assert harness.supplier.cancels == {CODE: 1}
    assert harness.store.event_types(CODE) == [None, "cancellation.completed"]
    assert_only_last_terminal(harness)
    # The stored info is what GET answers: Money as decimal strings, never floats.
    assert harness.store.records[-1].info["refund"] == {"amount": "120.00", "currency": "EUR"}
    # The trigger was handed to its own delivery workflow (this partner has no webhook).
    event_id = harness.store.records[-1].event_id
    assert event_id is not None and event_id.startswith("evt_")
    trigger = harness.client.get_workflow_handle(trigger_workflow_id(event_id))
    assert await asyncio.wait_for(trigger.result(), RESULT_WAIT) == "no_webhook"


async def test_an_automatic_cancellation_opened_as_processing_goes_straight_to_the_supplier(harness: Harness) -> None:
    """Opened with ``processing`` recorded by the gateway (``opened_at``): the workflow records only
    ``cancelled``, whose history keeps the gateway's ``processing`` first, once."""
    opened_at = datetime(2026, 12, 5, 3, 0, tzinfo=timezone.utc)
    info = await finish(await automatic(harness.client, harness.task_queue, CODE, opened_at=opened_at))
    assert info.status == "cancelled"
    assert [(e.event, e.at) for e in info.history][:1] == [("processing", opened_at)]
    assert [e.event for e in info.history] == ["processing", "cancelled"]
    assert harness.supplier.cancels == {CODE: 1}
    assert harness.store.statuses(CODE) == ["cancelled"]
    assert harness.store.event_types(CODE) == ["cancellation.completed"]
    assert harness.store.records[-1].info["history"][0] == {"at": opened_at.isoformat().replace("+00:00", "Z"),
                                                             "event": "processing"}


async def test_a_partial_cancellation_asks_the_supplier_for_its_travellers(harness: Harness) -> None:
    """The flow names its travellers from its start to its last trigger; a flow started without them
    (before they were named) asks the supplier for the whole product, with the arguments it always did."""
    info = await finish(await automatic(harness.client, harness.task_queue, CODE, traveller_ids=["T2"]))
    assert (info.status, info.traveller_ids) == ("cancelled", ["T2"])
    assert harness.supplier.travellers == {CODE: ["T2"]}
    assert [r.info["traveller_ids"] for r in harness.store.records if r.code == CODE] == [["T2"], ["T2"]]
    await finish(await automatic(harness.client, harness.task_queue, "CAN-TEST0002"))
    assert harness.supplier.travellers["CAN-TEST0002"] is None



async def test_automatic_cancellation_refused_by_supplier_fails(harness: Harness) -> None:
    harness.supplier.refusal = "ticket already used"

    info = await finish(await automatic(harness.client, harness.task_queue, CODE))

    assert info.status == "failed"
    assert harness.store.event_types(CODE) == [None, "cancellation.failed"]
    assert_only_last_terminal(harness)


async def test_manual_quote_then_accept_cancels_once(harness: Harness) -> None:
    handle = await start_cancellation(harness.client, harness.task_queue, CODE, "manual")

    quoted = await handle.execute_update(CancellationWorkflow.submit_quote, AGENT_QUOTE)
    assert quoted.status == "awaiting_partner_decision"
    assert (quoted.penalty, quoted.refund, quoted.agent_note) == (AGENT_QUOTE.penalty, AGENT_QUOTE.refund, "fare rules")
    assert quoted.decision_deadline == quoted.history[-1].at + timedelta(hours=72)

    decided = await handle.execute_update(CancellationWorkflow.decide, PartnerDecision(decision="accept"))
    assert decided.status == "cancelled"
    assert decided.decision == "accept"
    assert await finish(handle) == decided
    assert harness.supplier.cancels == {CODE: 1}
    assert harness.store.statuses(CODE) == ["awaiting_agent_quote", "awaiting_partner_decision", "cancelled"]
    assert harness.store.event_types(CODE) == [None, "cancellation.quoted", "cancellation.completed"]
    assert_only_last_terminal(harness)


async def test_manual_quote_then_reject_never_calls_supplier(harness: Harness) -> None:
    info = await finish(await manual(harness.client, harness.task_queue, CODE, "reject"))

    assert info.status == "rejected"
    assert harness.supplier.cancels == {}
    assert harness.store.event_types(CODE) == [None, "cancellation.quoted", "cancellation.rejected"]
    assert_only_last_terminal(harness)


async def test_manual_quote_without_decision_is_no_response(harness: Harness) -> None:
    info = await finish(await manual(harness.client, harness.task_queue, CODE, None))

    assert info.status == "no_response"
    assert harness.supplier.cancels == {}
    assert info.history[-1].at - info.history[-2].at >= timedelta(hours=72)
    assert harness.store.event_types(CODE) == [None, "cancellation.quoted", "cancellation.no_response"]
    assert_only_last_terminal(harness)


async def test_manual_without_quote_expires(harness: Harness) -> None:
    info = await finish(await unquoted(harness.client, harness.task_queue, CODE))

    assert info.status == "expired"
    assert info.history[-1].at - info.history[0].at >= timedelta(hours=24)
    assert harness.store.event_types(CODE) == [None, "cancellation.expired"]
    assert_only_last_terminal(harness)


async def test_manual_accept_refused_by_supplier_fails(harness: Harness) -> None:
    harness.supplier.refusal = "hotel already checked in"

    info = await finish(await manual(harness.client, harness.task_queue, CODE, "accept"))

    assert info.status == "failed"
    assert harness.store.event_types(CODE) == [None, "cancellation.quoted", "cancellation.failed"]
    assert_only_last_terminal(harness)


@pytest.mark.parametrize(
    ("penalty", "refund", "fields"),
    [
        (Money.of("40", "EUR"), Money.of("100", "EUR"), ["refund.amount"]),
        (Money.of("40", "EUR"), Money.of("200", "USD"), ["refund.currency"]),
        (Money.of("-10", "EUR"), Money.of("250", "EUR"), ["penalty.amount"]),
    ],
    ids=["sum", "currency", "negative"],
)
async def test_invalid_quote_is_refused_with_field_errors(
    harness: Harness, penalty: Money, refund: Money, fields: list[str]
) -> None:
    handle = await start_cancellation(harness.client, harness.task_queue, CODE, "manual")

    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(
            CancellationWorkflow.submit_quote, AgentQuote(penalty=penalty, refund=refund, agent_id="agt_1")
        )

    cause = refusal(error)
    assert cause.type == "invalid_quote"
    assert [problem["field"] for problem in cause.details[0]] == fields
    assert all(problem["message"] for problem in cause.details[0])
    # The flow still waits for a proper quote.
    quoted = await handle.execute_update(CancellationWorkflow.submit_quote, AGENT_QUOTE)
    assert quoted.status == "awaiting_partner_decision"


async def test_second_quote_is_refused(harness: Harness) -> None:
    handle = await start_cancellation(harness.client, harness.task_queue, CODE, "manual")
    await handle.execute_update(CancellationWorkflow.submit_quote, AGENT_QUOTE)

    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(CancellationWorkflow.submit_quote, AGENT_QUOTE)

    assert refusal(error).type == "not_awaiting_quote"


async def test_decision_before_quote_is_refused(harness: Harness) -> None:
    handle = await start_cancellation(harness.client, harness.task_queue, CODE, "manual")

    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(CancellationWorkflow.decide, PartnerDecision(decision="accept"))

    assert refusal(error).type == "not_awaiting_decision"
    assert (await handle.query(CancellationWorkflow.info)).status == "awaiting_agent_quote"


async def test_decision_on_automatic_cancellation_is_refused(harness: Harness) -> None:
    harness.supplier.gate = asyncio.Event()  # keeps the flow running while the decision arrives
    handle = await start_cancellation(harness.client, harness.task_queue, CODE, "automatic")

    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(CancellationWorkflow.decide, PartnerDecision(decision="accept"))

    assert refusal(error).type == "not_awaiting_decision"
    harness.supplier.gate.set()
    assert (await finish(handle)).status == "cancelled"


async def accepted_while_supplier_holds(
    harness: Harness,
) -> tuple[CancellationHandle, WorkflowUpdateHandle[CancellationInfo], asyncio.Event]:
    """A manual flow whose partner has accepted, held at the supplier until the returned gate opens."""
    gate = harness.supplier.gate = asyncio.Event()
    handle = await start_cancellation(harness.client, harness.task_queue, CODE, "manual")
    await handle.execute_update(CancellationWorkflow.submit_quote, AGENT_QUOTE)
    first = await handle.start_update(
        CancellationWorkflow.decide, PartnerDecision(decision="accept"), wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    return handle, first, gate


async def test_repeated_decision_answers_the_same_info(harness: Harness) -> None:
    handle, first, gate = await accepted_while_supplier_holds(harness)
    repeat = await handle.start_update(
        CancellationWorkflow.decide, PartnerDecision(decision="accept"), wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )

    gate.set()
    answers = [await asyncio.wait_for(update.result(), RESULT_WAIT) for update in (first, repeat)]

    assert answers[0].status == "cancelled"
    assert answers[0] == answers[1]
    assert harness.supplier.cancels == {CODE: 1}
    assert await finish(handle) == answers[0]


async def test_opposite_decision_after_deciding_is_refused(harness: Harness) -> None:
    handle, first, gate = await accepted_while_supplier_holds(harness)

    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(CancellationWorkflow.decide, PartnerDecision(decision="reject"))

    # For good (non-retryable): the gateway stores it under the request's Idempotency-Key.
    assert (refusal(error).type, refusal(error).non_retryable) == ("not_awaiting_decision", True)
    gate.set()
    assert (await asyncio.wait_for(first.result(), RESULT_WAIT)).status == "cancelled"


@pytest.mark.parametrize("decision", ["accept", "reject"])
async def test_a_decision_while_the_quote_is_recorded_is_taken_and_applied_after_it(
    harness: Harness, decision: Decision
) -> None:
    """Issue 24, finding 4: the store (and the partner) may show the quote before the workflow has
    heard that it is recorded; a decision then is taken, not refused, and applied once it is."""
    handle = await decided_while_quote_recorded(harness.client, harness.task_queue, CODE, harness.store, decision)

    info = await finish(handle)
    assert (info.status, info.decision) == ("cancelled" if decision == "accept" else "rejected", decision)
    assert harness.store.statuses(CODE) == ["awaiting_agent_quote", "awaiting_partner_decision", info.status]
    assert harness.supplier.cancels[CODE] == (1 if decision == "accept" else 0)


async def test_a_decision_before_any_quote_is_refused_for_now_only(harness: Harness) -> None:
    handle = await start_cancellation(harness.client, harness.task_queue, CODE, "manual")

    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(CancellationWorkflow.decide, PartnerDecision(decision="accept"))

    # Retryable: the gateway answers it with Retry-After and does not store it under the key.
    assert (refusal(error).type, refusal(error).non_retryable) == ("not_awaiting_decision", False)
    await handle.execute_update(CancellationWorkflow.submit_quote, AGENT_QUOTE)
    decided = await handle.execute_update(CancellationWorkflow.decide, PartnerDecision(decision="accept"))
    assert decided.status == "cancelled"

