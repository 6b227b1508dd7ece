"""Trigger delivery (docs/triggers.md) to a real webhook on 127.0.0.1: signed, retried with backoff, failed at the end."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone

import pytest
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError

from activities.webhooks import FIRST_GUESS_S, RECEIVER_BUSY, ReceiverBusy, ReceiverSlots, TriggerActivities
from domain.cancellation_flow import PartnerDecision
from domain.flow_info import event_body
from domain.webhook_urls import WebhookPolicy
from ports.webhook_guard import WebhookGuard
from tests.workflows.conftest import Harness
from tests.workflows.fakes import InMemoryStore
from tests.workflows.receiver import HangingReceiver, WebhookReceiver
from tests.workflows.scenarios import AGENT_QUOTE, RESULT_WAIT, deliver, finish, start_cancellation
from workflows.cancellation import CancellationWorkflow
from workflows.trigger_delivery import trigger_workflow_id

EVENT_ID = "evt_test0000000000000001"
FAST = timedelta(milliseconds=50)


def store_event(harness: Harness, url: str | None) -> None:
    harness.store.webhook_url = url
    info = {"code": "CAN-TEST0001", "status": "cancelled"}
    harness.store.add_event(EVENT_ID, event_body(EVENT_ID, "cancellation.completed", datetime.now(timezone.utc), info))


async def test_delivery_retries_until_the_webhook_answers_2xx(harness: Harness) -> None:
    async with WebhookReceiver(harness.store.webhook_secret, failures=3) as receiver:
        store_event(harness, receiver.url)

        handle = await deliver(harness.client, harness.task_queue, EVENT_ID, timedelta(hours=1), FAST)

    assert await handle.result() == "delivered"
    assert [a.delivered for a in harness.store.attempts] == [False, False, False, True]
    assert [a.detail for a in harness.store.attempts[:3]] == ["HTTP 500"] * 3
    assert len(receiver.received) == 4
    assert all(r.signed and r.content_type == "application/json" for r in receiver.received)
    assert {r.body["id"] for r in receiver.received} == {EVENT_ID}
    assert harness.store.failed == []


async def test_delivery_marks_the_event_failed_when_the_window_ends(harness: Harness) -> None:
    async with WebhookReceiver(harness.store.webhook_secret, failures=None) as receiver:
        store_event(harness, receiver.url)

        handle = await deliver(harness.client, harness.task_queue, EVENT_ID, timedelta(seconds=2), FAST)

    assert await handle.result() == "failed"
    assert harness.store.failed == [EVENT_ID]
    assert harness.store.attempts and not any(a.delivered for a in harness.store.attempts)


async def test_unreachable_webhook_is_retried_then_failed(harness: Harness) -> None:
    # A port nobody listens on: closed right after the receiver gave it out.
    async with WebhookReceiver(harness.store.webhook_secret) as receiver:
        url = receiver.url
    store_event(harness, url)

    handle = await deliver(harness.client, harness.task_queue, EVENT_ID, timedelta(seconds=1), FAST)

    assert await handle.result() == "failed"
    assert harness.store.attempts and all(a.detail.startswith("Client") for a in harness.store.attempts)


async def test_partner_without_webhook_is_left_to_the_pull_feed(harness: Harness) -> None:
    store_event(harness, None)

    handle = await deliver(harness.client, harness.task_queue, EVENT_ID, timedelta(hours=1), FAST)

    assert await handle.result() == "no_webhook"
    assert harness.store.attempts == []
    assert harness.store.failed == []


async def test_flow_triggers_reach_the_partner_signed(harness: Harness) -> None:
    async with WebhookReceiver(harness.store.webhook_secret) as receiver:
        harness.store.webhook_url = receiver.url
        handle = await start_cancellation(harness.client, harness.task_queue, "CAN-TEST0001", "manual")
        await handle.execute_update(CancellationWorkflow.submit_quote, AGENT_QUOTE)
        await handle.execute_update(CancellationWorkflow.decide, PartnerDecision(decision="accept"))
        await finish(handle)
        # The flow does not wait for its triggers; wait for each delivery here.
        for record in harness.store.records:
            if record.event_id is not None:
                trigger: WorkflowHandle[object, str] = harness.client.get_workflow_handle(
                    trigger_workflow_id(record.event_id)
                )
                assert await asyncio.wait_for(trigger.result(), RESULT_WAIT) == "delivered"

    assert sorted(receiver.event_types()) == ["cancellation.completed", "cancellation.quoted"]
    assert all(r.signed for r in receiver.received)
    completed = next(r.body for r in receiver.received if r.body["type"] == "cancellation.completed")
    assert completed["data"]["status"] == "cancelled"
    assert completed["data"]["penalty"] == {"amount": "40.00", "currency": "EUR"}


async def test_a_receivers_taken_slots_turn_more_deliveries_away_without_a_request() -> None:
    # The activity itself, without Temporal: its workflow retries a turned-away delivery with its backoff.
    store = InMemoryStore()
    triggers = TriggerActivities(store, WebhookGuard(WebhookPolicy.sandbox()), per_receiver=2)
    ids = [f"evt_test00000000000000{i:02d}" for i in range(3)]
    async with HangingReceiver() as receiver:
        store.webhook_url = receiver.url
        for event_id in ids:
            store.add_event(event_id, event_body(event_id, "cancellation.completed", datetime.now(timezone.utc),
                                                 {"code": "CAN-TEST0001", "status": "cancelled"}))
        held = [asyncio.create_task(triggers.deliver_event(event_id)) for event_id in ids[:2]]
        await receiver.until(lambda: receiver.in_flight == 2, RESULT_WAIT)

        with pytest.raises(ApplicationError) as turned_away:
            await triggers.deliver_event(ids[2])
        assert turned_away.value.type == RECEIVER_BUSY and not turned_away.value.non_retryable
        assert turned_away.value.next_retry_delay is not None  # its turn in the receiver's line
        assert ids[2] not in receiver.arrived and store.attempts == []  # no request, no attempt

        receiver.release(200)
        assert await asyncio.wait_for(asyncio.gather(*held), RESULT_WAIT) == ["delivered", "delivered"]
        assert await triggers.deliver_event(ids[2]) == "delivered"  # a slot is free again
    assert sorted((a.event_id, a.delivered) for a in store.attempts) == [(event_id, True) for event_id in ids]
    assert receiver.most_in_flight == 2


def test_deliveries_turned_away_line_up_at_the_pace_of_their_receivers_attempts() -> None:
    now = [100.0]
    slots = ReceiverSlots(2, clock=lambda: now[0])
    with ExitStack() as held:
        for _ in range(2):
            held.enter_context(slots.slot("https://a.example/hooks"))
        turns = []
        for _ in range(3):
            with pytest.raises(ReceiverBusy) as busy:
                held.enter_context(slots.slot("https://a.example/hooks"))
            turns.append(busy.value.come_back_in_s)
        # Untimed yet: each comes back one slot's share of the first guess after the one before.
        assert turns == pytest.approx([FIRST_GUESS_S / 2, FIRST_GUESS_S, 1.5 * FIRST_GUESS_S])
        with slots.slot("https://b.example/hooks"):  # another receiver has its own slots
            pass
        now[0] += 10.0  # the held attempts have run 10 s (a receiver that hangs)...
        with pytest.raises(ReceiverBusy) as busy:
            held.enter_context(slots.slot("https://a.example/hooks"))
        assert busy.value.come_back_in_s == pytest.approx(10.0 / 2)  # ...and count so before they end
    now[0] += 5.0  # the line told so far is over
    with ExitStack() as held:
        for _ in range(2):
            held.enter_context(slots.slot("https://a.example/hooks"))
        with pytest.raises(ReceiverBusy) as busy:
            held.enter_context(slots.slot("https://a.example/hooks"))
    assert busy.value.come_back_in_s == pytest.approx(10.0 / 2)  # its attempts now take 10 s: 2 every 10 s
