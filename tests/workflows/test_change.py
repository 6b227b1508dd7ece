"""Every path of the change flow (docs/api.md#changes) on the time-skipping server, over in-memory ports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from temporalio.client import WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment

from domain.change_flow import Booking, Prebooking
from domain.money import Money
from tests.workflows.change_fakes import (
    CHECKOUT_TTL,
    CONTEXT_TTL,
    ITINERARY,
    PRODUCT_ID,
    RESERVATION_ID,
    RESULT_WAIT,
    ChangeHarness,
    booked,
    booked_while_prebook_recorded,
    change_harness,
    checked_out,
    finish,
    start_change,
    unbooked,
)
from tests.workflows.scenarios import refused
from workflows.change import ChangeWorkflow

CODE = "CF-TEST0001"


@pytest.fixture
async def h(env: WorkflowEnvironment) -> AsyncIterator[ChangeHarness]:
    async with change_harness(env.client) as harness:
        yield harness


def assert_only_last_terminal(h: ChangeHarness) -> None:
    terminal = [r.terminal for r in h.store.records if r.code == CODE]
    assert terminal == [False] * (len(terminal) - 1) + [True]


async def test_booked_context_applies_the_itinerary_once(h: ChangeHarness) -> None:
    info = await finish(await booked(h, CODE))

    assert info.status == "modified"
    assert info.invoice_hint == "PO-1234" and info.context_id == "CTX-TEST0001"
    assert [e.event for e in info.history] == ["awaiting_booking", "modified"]
    assert h.supplier.changes == [(PRODUCT_ID, ITINERARY, CODE)]
    assert h.store.event_types(CODE) == [None, "change.completed"]
    assert_only_last_terminal(h)
    # What GET answers and the trigger carries: Money as decimal strings, never floats.
    assert h.store.records[-1].info["total_due"] == {"amount": "54.00", "currency": "EUR"}


async def test_context_expires_after_its_ttl(h: ChangeHarness) -> None:
    info = await finish(await unbooked(h, CODE))

    assert info.status == "expired"
    assert info.history[-1].at >= info.expires_at
    assert info.expires_at - info.history[0].at <= CONTEXT_TTL
    assert h.supplier.changes == []
    assert h.store.event_types(CODE) == [None, "change.expired"]
    assert_only_last_terminal(h)


async def test_booking_as_the_context_expires_is_refused(h: ChangeHarness) -> None:
    h.store.hold_status = "expired"
    handle = await start_change(h, CODE, "automatic")
    result = asyncio.create_task(finish(handle))  # waiting on the result lets the server skip the TTL
    await asyncio.wait_for(h.store.reached.wait(), RESULT_WAIT)

    cause = await refused(handle.execute_update(ChangeWorkflow.book, Booking()))

    assert cause.type == "context_expired"
    h.store.release.set()
    assert (await result).status == "expired"
    assert h.supplier.changes == []


async def test_repeated_booking_answers_the_same_info(h: ChangeHarness) -> None:
    h.supplier.gate = asyncio.Event()  # holds the flow at the supplier while the repeat arrives
    handle = await start_change(h, CODE, "automatic")
    first = await handle.start_update(ChangeWorkflow.book, Booking(invoice_hint="PO-1"),
                                      wait_for_stage=WorkflowUpdateStage.ACCEPTED)
    repeat = await handle.start_update(ChangeWorkflow.book, Booking(invoice_hint="PO-2"),
                                       wait_for_stage=WorkflowUpdateStage.ACCEPTED)

    h.supplier.gate.set()
    answers = [await asyncio.wait_for(update.result(), RESULT_WAIT) for update in (first, repeat)]

    assert answers[0].status == "modified" and answers[0] == answers[1]
    assert answers[0].invoice_hint == "PO-1"  # the first booking's
    assert len(h.supplier.changes) == 1


async def test_supplier_refusal_fails_the_change(h: ChangeHarness) -> None:
    h.supplier.refusal = "fare no longer available"

    info = await finish(await booked(h, CODE))

    assert info.status == "failed" and info.failure == "fare no longer available"
    assert h.store.event_types(CODE) == [None, "change.failed"]
    assert_only_last_terminal(h)


async def test_checkout_is_issued_prebooked_and_booked(h: ChangeHarness) -> None:
    info = await finish(await checked_out(h, CODE))

    assert info.status == "modified" and info.resolution == "manual"
    assert (info.checkout_id, info.checkout_context_id) == ("CHK-TEST0001", "CCX-TEST0001")
    assert info.total_due == Money.of("75", "EUR") and info.payment_method == "card"
    assert [e.event for e in info.history] == ["checkout_issued", "checkout_prebooked", "modified"]
    assert h.store.event_types(CODE) == ["change.checkout_issued", None, "change.completed"]
    assert h.supplier.changes == [(PRODUCT_ID, ITINERARY, CODE)]
    assert_only_last_terminal(h)


async def test_checkout_refusals_leave_it_waiting(h: ChangeHarness) -> None:
    handle = await start_change(h, CODE, "manual")

    early = await refused(handle.execute_update(ChangeWorkflow.book, Booking(payment_method="card")))
    # For now only (retryable): the gateway answers it with Retry-After and does not store it under the key.
    assert (early.type, early.non_retryable) == ("not_prebooked", False)
    wrong = await refused(handle.execute_update(ChangeWorkflow.prebook, Prebooking(transaction_id="res_other")))
    assert wrong.type == "invalid_checkout" and wrong.details[0][0]["field"] == "transaction_id"

    prebooked = await handle.execute_update(ChangeWorkflow.prebook, Prebooking(transaction_id=RESERVATION_ID))
    again = await handle.execute_update(ChangeWorkflow.prebook, Prebooking(transaction_id=RESERVATION_ID))
    assert prebooked.status == again.status == "checkout_prebooked"
    assert prebooked.checkout_context_id == again.checkout_context_id == "CCX-TEST0001"

    unknown = await refused(handle.execute_update(ChangeWorkflow.book, Booking(payment_method="bitcoin")))
    assert unknown.type == "invalid_checkout" and unknown.details[0][0]["field"] == "payment_method"
    booked_info = await handle.execute_update(ChangeWorkflow.book, Booking(payment_method="invoice"))
    assert booked_info.status == "modified" and booked_info.payment_method == "invoice"


async def test_checkout_expires_after_its_ttl(h: ChangeHarness) -> None:
    info = await finish(await unbooked(h, CODE, "manual"))

    assert info.status == "expired"
    assert info.history[-1].at >= info.expires_at
    assert info.expires_at - info.history[0].at <= CHECKOUT_TTL
    assert h.store.event_types(CODE) == ["change.checkout_issued", "change.expired"]
    assert_only_last_terminal(h)


async def test_prebooked_checkout_expires_unbooked(h: ChangeHarness) -> None:
    handle = await start_change(h, CODE, "manual")
    await handle.execute_update(ChangeWorkflow.prebook, Prebooking(transaction_id=RESERVATION_ID))

    info = await finish(handle)

    assert [e.event for e in info.history] == ["checkout_issued", "checkout_prebooked", "expired"]
    assert h.supplier.changes == []


async def test_context_is_not_a_checkout(h: ChangeHarness) -> None:
    handle = await start_change(h, CODE, "automatic")

    cause = await refused(handle.execute_update(ChangeWorkflow.prebook, Prebooking(transaction_id=RESERVATION_ID)))

    assert cause.type == "not_awaiting_prebook"
    assert (await handle.query(ChangeWorkflow.info)).status == "awaiting_booking"


async def test_a_booking_while_the_prebook_is_recorded_is_taken_and_applied_after_it(h: ChangeHarness) -> None:
    """Issue 24, finding 4 in the change flow: the store (and the partner) may show the checkout
    pre-booked before the workflow has heard that it is recorded; a booking then is taken, not
    refused, and applied once it is."""
    info = await finish(await booked_while_prebook_recorded(h, CODE, "invoice"))

    assert (info.status, info.payment_method) == ("modified", "invoice")
    assert [e.event for e in info.history] == ["checkout_issued", "checkout_prebooked", "modified"]
    assert h.store.event_types(CODE) == ["change.checkout_issued", None, "change.completed"]
    assert h.supplier.changes == [(PRODUCT_ID, ITINERARY, CODE)]
    assert_only_last_terminal(h)


async def test_a_booking_while_the_prebook_is_recorded_is_still_checked(h: ChangeHarness) -> None:
    """Taken early, but not unchecked: an unknown payment method is refused for good, and the
    checkout stays pre-booked, waiting for a booking."""
    h.store.hold_status = "checkout_prebooked"
    handle = await start_change(h, CODE, "manual")
    prebooking = await handle.start_update(
        ChangeWorkflow.prebook, Prebooking(transaction_id=RESERVATION_ID), wait_for_stage=WorkflowUpdateStage.ACCEPTED
    )
    await asyncio.wait_for(h.store.reached.wait(), RESULT_WAIT)

    unknown = await refused(handle.execute_update(ChangeWorkflow.book, Booking(payment_method="bitcoin")))

    assert (unknown.type, unknown.non_retryable) == ("invalid_checkout", True)
    h.store.release.set()
    assert (await asyncio.wait_for(prebooking.result(), RESULT_WAIT)).status == "checkout_prebooked"
    assert (await handle.execute_update(ChangeWorkflow.book, Booking(payment_method="card"))).status == "modified"
