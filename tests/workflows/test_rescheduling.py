"""Every path of the rescheduling flow (docs/api.md#rescheduling) on the time-skipping server, over in-memory ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from domain.money import Money
from domain.rescheduling_flow import AlternativeChoice, ReschedulingInfo
from tests.workflows.rescheduling_fakes import (
    FLIGHT,
    PRODUCT_ID,
    RESULT_WAIT,
    WINDOW,
    ReschedulingHarness,
    chosen,
    finish,
    overtaken,
    rescheduling_harness,
    rescheduling_input,
    start_rescheduling,
    unanswered,
    waited,
)
from workflows.rescheduling import ReschedulingWorkflow

CODE = "RS-TEST0001"


@pytest.fixture
async def rs(env: WorkflowEnvironment) -> AsyncIterator[ReschedulingHarness]:
    async with rescheduling_harness(env.client) as harness:
        yield harness


def refusal(error: pytest.ExceptionInfo[WorkflowUpdateFailedError]) -> ApplicationError:
    cause = error.value.cause
    assert isinstance(cause, ApplicationError)
    return cause


def assert_only_last_terminal(h: ReschedulingHarness) -> None:
    terminal = [r.terminal for r in h.store.records if r.code == CODE]
    assert terminal == [False] * (len(terminal) - 1) + [True]


async def test_partner_accepts_a_rebooking(rs: ReschedulingHarness) -> None:
    handle = await start_rescheduling(rs, CODE)
    await rs.store.wait_for_status(CODE, "awaiting_partner_action")

    # What the store has (the workflow's own info follows once its trigger has started).
    offered = ReschedulingInfo.model_validate(rs.store.records[-1].info)
    assert offered.status == "awaiting_partner_action"
    assert offered.original_segments == FLIGHT.segments
    assert offered.proposed_segments[0].departure == FLIGHT.start + timedelta(minutes=90)
    assert offered.decision_deadline == offered.history[-1].at + WINDOW
    assert rs.store.holders == {PRODUCT_ID: CODE}

    done = await handle.execute_update(ReschedulingWorkflow.accept, AlternativeChoice(alternative_id="rebook-2d"))
    assert (done.status, done.alternative_id) == ("accepted", "rebook-2d")
    assert await finish(handle) == done
    [(product_id, segments, flow_code)] = rs.supplier.moves
    assert (product_id, flow_code) == (PRODUCT_ID, CODE)
    assert segments[0].departure == FLIGHT.start + timedelta(days=2)
    assert rs.supplier.cancels == {}
    assert rs.store.statuses(CODE) == ["waiting_for_product", "awaiting_partner_action", "accepted"]
    assert rs.store.event_types(CODE) == [None, "rescheduling.detected", "rescheduling.accepted"]
    assert rs.store.holders == {}  # the terminal record released the product
    assert_only_last_terminal(rs)


async def test_refund_cancels_the_product_with_the_full_price(rs: ReschedulingHarness) -> None:
    info = await finish(await chosen(rs, CODE, "refund", kind="flight_cancelled"))

    assert (info.status, info.alternative_id) == ("accepted", "refund")
    assert info.alternative("refund").refund == Money.of("240", "EUR")  # type: ignore[union-attr]
    assert rs.supplier.cancels == {CODE: 1} and rs.supplier.moves == []
    assert rs.store.records[-1].info["alternatives"][-1]["refund"] == {"amount": "240.00", "currency": "EUR"}


async def test_without_a_choice_the_default_applies_when_the_window_ends(rs: ReschedulingHarness) -> None:
    info = await finish(await unanswered(rs, CODE))

    assert (info.status, info.alternative_id) == ("auto_accepted", "proposed")
    assert info.history[-1].at - info.history[-2].at >= WINDOW
    assert [segments for _, segments, _ in rs.supplier.moves] == [info.proposed_segments]
    assert rs.store.event_types(CODE) == [None, "rescheduling.detected", "rescheduling.auto_accepted"]
    assert_only_last_terminal(rs)


async def _without_a_choice(
    rs: ReschedulingHarness, env: WorkflowEnvironment, limit: timedelta
) -> tuple[ReschedulingInfo, ReschedulingInfo, datetime]:
    """Nobody chooses a change whose airline sent an action time limit ``limit`` after it arrived:
    the info as offered, the final info, and the limit."""
    action_time_limit = (await env.get_current_time()).replace(microsecond=0) + limit
    flow_input = rescheduling_input(CODE, "time_change").model_copy(update={"action_time_limit": action_time_limit})
    handle = await rs.client.start_workflow(ReschedulingWorkflow.run, flow_input, id=CODE, task_queue=rs.task_queue)
    final = await finish(handle)
    offered = ReschedulingInfo.model_validate(next(r.info for r in rs.store.records if r.status == "awaiting_partner_action"))
    return offered, final, action_time_limit


async def test_an_earlier_action_time_limit_is_the_decision_deadline(rs: ReschedulingHarness, env: WorkflowEnvironment) -> None:
    offered, info, action_time_limit = await _without_a_choice(rs, env, timedelta(hours=5))

    assert offered.decision_deadline == action_time_limit
    assert info.status == "auto_accepted"
    # The default applied at the airline's limit, not when the 72 h window would have ended.
    assert info.history[-1].at >= offered.decision_deadline
    assert info.history[-1].at - offered.history[-1].at < WINDOW


async def test_a_later_action_time_limit_leaves_the_window(rs: ReschedulingHarness, env: WorkflowEnvironment) -> None:
    offered, info, _ = await _without_a_choice(rs, env, WINDOW + timedelta(days=2))

    assert offered.decision_deadline == offered.history[-1].at + WINDOW
    assert info.status == "auto_accepted"


async def test_a_cancelled_flight_defaults_to_the_nearest_rebooking(rs: ReschedulingHarness) -> None:
    info = await finish(await unanswered(rs, CODE, kind="flight_cancelled"))

    assert (info.status, info.alternative_id) == ("auto_accepted", "rebook-1d")
    assert info.proposed_segments == []
    assert rs.supplier.moves[0][1][0].departure == FLIGHT.start + timedelta(days=1)


async def test_a_busy_product_is_waited_for_then_the_flow_proceeds(rs: ReschedulingHarness) -> None:
    info = await finish(await waited(rs, CODE))

    assert rs.store.acquire_attempts >= 2  # refused while busy, then taken
    assert info.status == "accepted"
    assert rs.store.statuses(CODE) == ["waiting_for_product", "awaiting_partner_action", "accepted"]
    assert rs.store.event_types(CODE) == [None, "rescheduling.detected", "rescheduling.accepted"]


async def test_while_waiting_a_choice_is_refused_for_now_only(rs: ReschedulingHarness) -> None:
    rs.store.holders[PRODUCT_ID] = "CAN-BUSY0001"
    handle = await start_rescheduling(rs, CODE)
    await rs.store.wait_for(lambda: rs.store.acquire_attempts >= 1)

    assert (await handle.query(ReschedulingWorkflow.info)).status == "waiting_for_product"
    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(ReschedulingWorkflow.accept, AlternativeChoice(alternative_id="proposed"))
    # For now only (retryable): the gateway answers it with Retry-After and does not store it under the key.
    assert (refusal(error).type, refusal(error).non_retryable) == ("not_awaiting_choice", False)
    del rs.store.holders[PRODUCT_ID]  # the other flow ends: the alternatives are offered, the choice is taken
    await rs.store.wait_for_status(CODE, "awaiting_partner_action")
    done = await handle.execute_update(ReschedulingWorkflow.accept, AlternativeChoice(alternative_id="proposed"))
    assert (done.status, done.alternative_id) == ("accepted", "proposed")


async def test_a_product_cancelled_meanwhile_makes_the_change_obsolete(rs: ReschedulingHarness) -> None:
    info = await finish(await overtaken(rs, CODE))

    assert info.status == "obsolete" and info.alternative_id is None
    assert rs.supplier.moves == [] and rs.supplier.cancels == {}
    assert rs.store.event_types(CODE) == [None, "rescheduling.obsolete"]


async def test_supplier_refusal_fails_the_flow(rs: ReschedulingHarness) -> None:
    rs.supplier.refusal = "flight closed"

    info = await finish(await chosen(rs, CODE, "proposed"))

    assert (info.status, info.alternative_id) == ("failed", "proposed")
    assert rs.store.event_types(CODE) == [None, "rescheduling.detected", "rescheduling.failed"]
    assert_only_last_terminal(rs)


async def test_choices_are_validated_and_only_the_first_counts(rs: ReschedulingHarness) -> None:
    handle = await start_rescheduling(rs, CODE)
    await rs.store.wait_for_status(CODE, "awaiting_partner_action")

    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(ReschedulingWorkflow.accept, AlternativeChoice(alternative_id="upgrade"))
    cause = refusal(error)
    assert cause.type == "unknown_alternative"
    assert cause.details[0] == [{"field": "alternative_id", "message": "not one of this rescheduling's alternatives"}]

    # Held at the supplier, so the flow is still running when the same choice comes again.
    rs.supplier.gate = asyncio.Event()
    first = await handle.start_update(ReschedulingWorkflow.accept, AlternativeChoice(alternative_id="proposed"),
                                      wait_for_stage=WorkflowUpdateStage.ACCEPTED)
    again = await handle.start_update(ReschedulingWorkflow.accept, AlternativeChoice(alternative_id="proposed"),
                                      wait_for_stage=WorkflowUpdateStage.ACCEPTED)
    with pytest.raises(WorkflowUpdateFailedError) as error:
        await handle.execute_update(ReschedulingWorkflow.accept, AlternativeChoice(alternative_id="refund"))
    # For good (non-retryable): the gateway stores it under the request's Idempotency-Key.
    assert (refusal(error).type, refusal(error).non_retryable) == ("not_awaiting_choice", True)
    rs.supplier.gate.set()

    done = await asyncio.wait_for(first.result(), RESULT_WAIT)
    assert (done.status, done.alternative_id) == ("accepted", "proposed")
    assert await asyncio.wait_for(again.result(), RESULT_WAIT) == done
    assert len(rs.supplier.moves) == 1
    assert await finish(handle) == done
