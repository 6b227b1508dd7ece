"""One partner's hanging webhook does not slow the others (docs/triggers.md#one-receiver-cannot-slow-the-others),
on SQLite and PostgreSQL, over HTTP with a real worker: a receiver that never answers, and a flood of
redeliveries its partner asks for, hold only that receiver's few slots; another partner's cancellations
still answer synchronously and its events are all delivered while the hanging receiver's wait; the flood
is one redelivery. Figures (latencies with and without the noisy partner) are bench/noisy_webhook.py's."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from temporalio.testing import WorkflowEnvironment

from activities.webhooks import DELIVERY_TIMEOUT
from config.settings import Settings
from services.sweeps import sweep_forever
from store.repositories import Store
from tests.api.conftest import Actor, cancel_with_a_quote, flight, new_partner
from tests.api.test_keys_and_deliveries import BOUND_S, Receiver
from tests.workflows.receiver import HangingReceiver
from worker.outbox_dispatcher import BATCH, OutboxDispatcher
from workflows.trigger_delivery import trigger_workflow_id

NOISY_FLOWS = 6  # twelve events (each cancellation's completion and its refund) for the hanging receiver
QUIET_FLOWS = 5
REDELIVERIES = 150
AT_ONCE = 25  # redeliver calls in flight together


async def automatic_cancellation(http: TestClient, who: Actor, book) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    product_id = (await book(who, flight()))["products"][0]["product_id"]
    answer = await cancel_with_a_quote(http, who, product_id)
    return {"status": answer.status, "body": await answer.json()}


async def feed_of(http: TestClient, who: Actor) -> list[dict[str, Any]]:
    return list((await (await http.get("/v1/events?limit=200", headers=who.headers)).json())["items"])


@pytest_asyncio.fixture
async def dispatcher(store: Store, settings: Settings, temporal_env: WorkflowEnvironment) -> AsyncIterator[None]:
    """The worker's outbox dispatcher, as ``python -m worker`` runs it: it starts the deliveries of the
    events a transition writes beside its own (each cancellation's refund.posted)."""
    stop = asyncio.Event()
    sweeping = asyncio.create_task(sweep_forever(
        OutboxDispatcher(store.events, temporal_env.client, settings).sweep, name="outbox_dispatcher",
        every=timedelta(milliseconds=200), stop=stop, full_batch=BATCH,
    ))
    yield
    stop.set()
    await sweeping


@pytest.mark.usefixtures("dispatcher")
async def test_a_hanging_receiver_and_a_redelivery_flood_leave_other_partners_untouched(
    http: TestClient, settings: Settings, temporal_env: WorkflowEnvironment, book  # type: ignore[no-untyped-def]
) -> None:
    async with HangingReceiver() as hanging, Receiver() as quiet_receiver:
        noisy = await new_partner(http, "Noisy", webhook_url=hanging.url)
        quiet = await new_partner(http, "Quiet", webhook_url=quiet_receiver.url)

        noisy_flows = [await automatic_cancellation(http, noisy, book) for _ in range(NOISY_FLOWS)]
        assert [(f["status"], f["body"]["status"]) for f in noisy_flows] == [(200, "cancelled")] * NOISY_FLOWS
        noisy_events = [item["id"] for item in await feed_of(http, noisy)]
        assert len(noisy_events) == 2 * NOISY_FLOWS
        # The hanging receiver holds every slot a worker gives one receiver.
        await hanging.until(lambda: hanging.in_flight == settings.webhook_receiver_concurrency, BOUND_S)
        flooded = noisy_events[0]

        gate = asyncio.Semaphore(AT_ONCE)

        async def redeliver() -> dict[str, Any]:
            async with gate:
                answer = await http.post(f"/v1/events/{flooded}/redeliver", headers=noisy.headers)
                assert answer.status == 202, await answer.text()
                return dict(await answer.json())

        # The flood and the other partner's flows at the same time.
        flood = asyncio.gather(*(redeliver() for _ in range(REDELIVERIES)))
        quiet_flows = await asyncio.gather(*(automatic_cancellation(http, quiet, book) for _ in range(QUIET_FLOWS)))
        redeliveries = await flood
        flooded_requests = hanging.arrived[flooded]
        since_first_s = asyncio.get_running_loop().time() - hanging.first_arrival[flooded]

        # The other partner's cancellations answered synchronously, cancelled, and its events all arrived.
        assert [(f["status"], f["body"]["status"]) for f in quiet_flows] == [(200, "cancelled")] * QUIET_FLOWS
        quiet_events = [item["id"] for item in await feed_of(http, quiet)]
        assert len(quiet_events) == 2 * QUIET_FLOWS
        await quiet_receiver.until(lambda: {d.body["id"] for d in quiet_receiver.received} == set(quiet_events))
        for event_id in quiet_events:
            handle = temporal_env.client.get_workflow_handle(trigger_workflow_id(event_id))
            assert await asyncio.wait_for(handle.result(), BOUND_S) == "delivered"
        assert {item["delivery"]["status"] for item in await feed_of(http, quiet)} == {"delivered"}

        # ...while the hanging receiver's are still waiting, and it never had more than its share.
        assert {item["delivery"]["status"] for item in await feed_of(http, noisy)} == {"pending"}
        assert hanging.most_in_flight == settings.webhook_receiver_concurrency
        # The flood was one redelivery: the first call started it, the others joined it.
        outcomes = Counter(r["redelivery"] for r in redeliveries)
        assert outcomes == {"scheduled": 1, "in_progress": REDELIVERIES - 1}
        # Only the first delivery and the one redelivery have reached the receiver with it: each sends its
        # next attempt only after the last one timed out (10 s), so 150 calls made no more than that.
        assert 1 <= flooded_requests <= 2 * (1 + int(since_first_s // DELIVERY_TIMEOUT.total))

        # The feed's cursor over HTTP: a page at a time, following ``next``, is the whole feed in its order.
        paged: list[str] = []
        cursor = ""
        while True:
            page = await (await http.get(f"/v1/events?limit=3{cursor}", headers=quiet.headers)).json()
            paged += [item["id"] for item in page["items"]]
            if page["next"] is None:
                break
            cursor = f"&cursor={page['next']}"
        assert paged == quiet_events
