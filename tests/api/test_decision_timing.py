"""A partner's decision that arrives before the workflow has applied the agent's quote (issue 24,
finding 4; docs/api.md#patch-v1cancellationscode): while the quote's move is being recorded, and
after a worker restart. The decision takes effect, or the answer is one to retry (503, or 409 with
Retry-After, never stored under the Idempotency-Key): never a stored 409 that leaves the flow to end
``no_response``. The same for a checkout's booking that arrives while its pre-book is being applied
(a stored 409 ``not_prebooked`` left the checkout to expire). Real dev server, real HTTP, both databases."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from config.settings import Settings
from domain.flow_info import FlowRecord
from ports.recording import FlowStore, LockOutcome
from ports.supplier import build_supplier
from store.repositories import Store
from tests.api.conftest import Actor, hotel
from tests.api.test_changes import manual_flight
from tests.api.test_foundation import problem
from tests.waits import eventually
from worker.registry import activities_over, workflow_worker

BOUND_S = 60.0
QUOTE = {"penalty": {"amount": "60.00", "currency": "EUR"}, "refund": {"amount": "540.00", "currency": "EUR"},
         "note": "hotel fee"}


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    # A short sync wait: an input the flow cannot take answers 503 soon, one it takes answers 202.
    return {"AFTERSALES_SYNC_WAIT": "2s"}


class HeldRecords:
    """The store's flow records, with one status's record held until ``release`` is set: before it
    commits (the store still shows the status before it), or after (the store shows it, the workflow
    has not heard that it is recorded). ``entered`` is set once the held record arrives."""

    def __init__(self, flows: FlowStore, status: str, after_commit: bool) -> None:
        self._flows = flows
        self._status = status
        self._after_commit = after_commit
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def record_flow(self, record: FlowRecord) -> bool:
        if record.status != self._status or self.release.is_set():
            return await self._flows.record_flow(record)
        pushed = await self._flows.record_flow(record) if self._after_commit else None
        self.entered.set()
        await self.release.wait()
        return pushed if pushed is not None else await self._flows.record_flow(record)

    async def acquire(self, product_id: str, flow_code: str, at: datetime) -> LockOutcome:
        return await self._flows.acquire(product_id, flow_code, at)

    async def open_waiting(self, waiting: FlowRecord, offered: FlowRecord) -> tuple[LockOutcome, bool]:
        return await self._flows.open_waiting(waiting, offered)


def worker_over(temporal_env: WorkflowEnvironment, settings: Settings, store: Store, flows: FlowStore) -> Worker:
    """The production worker, its flow records going through ``flows``."""
    return workflow_worker(temporal_env.client, settings.task_queue, activities_over(
        flows, build_supplier(settings, store.engine), store.events, store.credits))


@pytest_asyncio.fixture
async def agent(gateway: TestClient) -> Actor:
    response = await gateway.post("/v1/admin/agents", json={"name": "Grace"}, headers={
        "Authorization": "Bearer sandbox-admin-key"})
    assert response.status == 201
    created = await response.json()
    return Actor(created["agent_id"], created["api_key"], created)


@pytest_asyncio.fixture
async def partner(gateway: TestClient) -> Actor:
    response = await gateway.post("/v1/admin/partners", json={"name": "Acme Travel"}, headers={
        "Authorization": "Bearer sandbox-admin-key"})
    assert response.status == 201
    created = await response.json()
    return Actor(created["partner_id"], created["api_key"], created)


async def manual_cancellation(http: TestClient, partner: Actor) -> str:
    booked = await http.post("/v1/sandbox/reservations", headers=partner.headers, json={
        "travellers": [{"traveller_id": "T1", "name": "Ada Lovelace"}], "products": [hotel()]})
    assert booked.status == 201, await booked.text()
    product_id = (await booked.json())["products"][0]["product_id"]
    quote = await (await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={},
                                   headers=partner.headers)).json()
    started = await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                              headers=partner.headers)
    assert started.status == 202, await started.text()
    return str((await started.json())["code"])


async def stored_status(store: Store, code: str) -> str | None:
    found = await store.flows.flow(code)
    return None if found is None else str(found.info["status"])


async def until_recorded(store: Store, code: str, status: str) -> None:
    async def recorded() -> bool | None:
        return True if await stored_status(store, code) == status else None
    await eventually(recorded, BOUND_S, f"{code} recorded {status}")


def retry_later(response: ClientResponse) -> bool:
    """An answer to retry with the same Idempotency-Key: an outage, or a refusal for now only."""
    return response.status == 503 or (response.status == 409 and "Retry-After" in response.headers)


def unavailable(response: ClientResponse) -> bool:
    return response.status == 503


async def sent_until_final(send: Callable[[], Awaitable[ClientResponse]],
                           again: Callable[[ClientResponse], bool] = retry_later) -> ClientResponse:
    """``send()`` repeated (with its Idempotency-Key) while its answer says to retry (bounded); the first
    final answer. A stored 409 would be final here, and replayed."""
    async with asyncio.timeout(BOUND_S):
        while again(response := await send()):
            await response.read()
        return response


async def settled(http: TestClient, partner: Actor, path: str, waiting: tuple[str, ...]) -> dict[str, Any]:
    """The flow at ``path`` once its status is none of ``waiting`` (bounded)."""
    async def read() -> dict[str, Any] | None:
        info: dict[str, Any] = await (await http.get(path, headers=partner.headers)).json()
        return None if info["status"] in waiting else info
    return await eventually(read, BOUND_S, f"{path} past {waiting}")


async def final_info(http: TestClient, partner: Actor, code: str) -> dict[str, Any]:
    return await settled(http, partner, f"/v1/cancellations/{code}", ("awaiting_agent_quote", "awaiting_partner_decision"))


@pytest.mark.parametrize("after_commit", [False, True], ids=["quote-not-recorded-yet", "quote-recorded-not-applied"])
async def test_a_decision_while_the_quote_is_being_applied_takes_effect(
    gateway: TestClient, temporal_env: WorkflowEnvironment, settings: Settings, store: Store, partner: Actor,
    agent: Actor, after_commit: bool,
) -> None:
    http = gateway
    held = HeldRecords(store.flows, "awaiting_partner_decision", after_commit)
    async with worker_over(temporal_env, settings, store, held):
        code = await manual_cancellation(http, partner)
        await until_recorded(store, code, "awaiting_agent_quote")
        quoting = asyncio.create_task(http.post(f"/v1/agent/cancellations/{code}/quote", json=QUOTE,
                                                headers={**agent.headers, "Idempotency-Key": "agent-quote"}))
        # The flow has taken the quote and is recording it; the store shows the quote or not yet.
        await asyncio.wait_for(held.entered.wait(), BOUND_S)
        assert await stored_status(store, code) == (
            "awaiting_partner_decision" if after_commit else "awaiting_agent_quote")

        decided = await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"},
                                   headers={**partner.headers, "Idempotency-Key": "partner-decision"})
        # Taken: the flow cannot finish while its quote's record is held, so the answer is 202.
        assert decided.status == 202, await decided.text()
        held.release.set()
        quoted = await asyncio.wait_for(quoting, BOUND_S)
        assert quoted.status in (200, 202), await quoted.text()

        info = await final_info(http, partner, code)
        assert (info["status"], info["decision"]) == ("cancelled", "accept")
        assert [entry["event"] for entry in info["history"]] == [
            "awaiting_agent_quote", "awaiting_partner_decision", "cancelled"]
        # The retry under the key replays what was answered (a 202); a repeat without one gets the outcome.
        replayed = await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"},
                                    headers={**partner.headers, "Idempotency-Key": "partner-decision"})
        assert replayed.status == 202 and replayed.headers["Idempotent-Replayed"] == "true"
        again = await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=partner.headers)
        assert again.status == 200 and (await again.json())["status"] == "cancelled"


async def test_a_decision_sent_while_no_worker_runs_takes_effect_after_the_restart(
    gateway: TestClient, temporal_env: WorkflowEnvironment, settings: Settings, store: Store, partner: Actor,
    agent: Actor,
) -> None:
    http = gateway
    async with worker_over(temporal_env, settings, store, store.flows):
        code = await manual_cancellation(http, partner)
        await until_recorded(store, code, "awaiting_agent_quote")
    # The worker is gone: the agent quotes and the partner decides, neither can be taken yet.
    agent_headers = {**agent.headers, "Idempotency-Key": "agent-quote"}
    await problem(await http.post(f"/v1/agent/cancellations/{code}/quote", json=QUOTE, headers=agent_headers),
                  503, "flow_unavailable")
    partner_headers = {**partner.headers, "Idempotency-Key": "partner-decision"}
    await problem(await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=partner_headers),
                  503, "flow_unavailable")

    async with worker_over(temporal_env, settings, store, store.flows):
        # Both retry with their keys, at once: the partner's decision is taken, or answered "retry
        # later" until it can be; never refused for good.
        quoting = asyncio.create_task(sent_until_final(
            lambda: http.post(f"/v1/agent/cancellations/{code}/quote", json=QUOTE, headers=agent_headers), unavailable))
        decided = await sent_until_final(
            lambda: http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=partner_headers))
        assert decided.status in (200, 202), await decided.text()
        quoted = await asyncio.wait_for(quoting, BOUND_S)
        assert quoted.status in (200, 202), await quoted.text()
        info = await final_info(http, partner, code)
        assert (info["status"], info["decision"]) == ("cancelled", "accept")


async def test_a_decision_before_any_quote_is_refused_for_now_only(
    gateway: TestClient, temporal_env: WorkflowEnvironment, settings: Settings, store: Store, partner: Actor,
    agent: Actor,
) -> None:
    http = gateway
    async with worker_over(temporal_env, settings, store, store.flows):
        code = await manual_cancellation(http, partner)
        await until_recorded(store, code, "awaiting_agent_quote")
        headers = {**partner.headers, "Idempotency-Key": "too-early"}
        early = await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=headers)
        await problem(early, 409, "not_awaiting_decision")
        assert int(early.headers["Retry-After"]) > 0
        assert "Idempotent-Replayed" not in early.headers
        quoted = await http.post(f"/v1/agent/cancellations/{code}/quote", json=QUOTE, headers=agent.headers)
        assert quoted.status == 200, await quoted.text()
        # Not stored under the key: the retry asks the flow again, which now takes it.
        retried = await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=headers)
        assert retried.status == 200, await retried.text()
        assert "Idempotent-Replayed" not in retried.headers
        assert (await retried.json())["status"] == "cancelled"
        # A refusal for good is stored as before: a different decision now is 409, replayed.
        late = {**partner.headers, "Idempotency-Key": "too-late"}
        for replay in (False, True):
            refused = await http.patch(f"/v1/cancellations/{code}", json={"decision": "reject"}, headers=late)
            await problem(refused, 409, "not_awaiting_decision")
            assert "Retry-After" not in refused.headers
            assert ("Idempotent-Replayed" in refused.headers) == replay


# The change flow's booking (docs/api.md#post-v1checkout-contextscheckout_context_idbook): the same gap,
# between the checkout's pre-book being taken and the workflow hearing that it is recorded.

MOVED_BY_PHONE = {"description": "moved by phone", "amount": {"amount": "75", "currency": "EUR"}}


async def issued_checkout(http: TestClient, partner: Actor, agent: Actor) -> tuple[str, dict[str, Any]]:
    """A manual flight of ``partner``'s, and an agent's checkout for it: its reservation id and the checkout."""
    booked = await http.post("/v1/sandbox/reservations", headers=partner.headers, json={
        "travellers": [{"traveller_id": "T1", "name": "Ada Lovelace"}], "products": [manual_flight()]})
    assert booked.status == 201, await booked.text()
    reservation = await booked.json()
    issued = await http.post(f"/v1/agent/products/{reservation['products'][0]['product_id']}/checkouts",
                             json=MOVED_BY_PHONE, headers=agent.headers)
    assert issued.status == 201, await issued.text()
    return str(reservation["reservation_id"]), await issued.json()


def context_of(checkout: dict[str, Any]) -> str:
    """The checkout context a pre-book answers (and the store shows once the pre-book is recorded)."""
    return str(checkout["checkout_id"]).replace("CHK-", "CCX-")


async def final_change(http: TestClient, partner: Actor, code: str) -> dict[str, Any]:
    return await settled(http, partner, f"/v1/changes/{code}", ("checkout_issued", "checkout_prebooked"))


@pytest.mark.parametrize("after_commit", [False, True], ids=["prebook-not-recorded-yet", "prebook-recorded-not-applied"])
async def test_a_booking_while_the_prebook_is_being_applied_takes_effect(
    gateway: TestClient, temporal_env: WorkflowEnvironment, settings: Settings, store: Store, partner: Actor,
    agent: Actor, after_commit: bool,
) -> None:
    http = gateway
    held = HeldRecords(store.flows, "checkout_prebooked", after_commit)
    async with worker_over(temporal_env, settings, store, held):
        reservation_id, checkout = await issued_checkout(http, partner, agent)
        code, context = checkout["code"], context_of(checkout)
        await until_recorded(store, code, "checkout_issued")
        prebooking = asyncio.create_task(http.post(
            f"/v1/checkouts/{checkout['checkout_id']}/prebook", json={"transaction_id": reservation_id},
            headers={**partner.headers, "Idempotency-Key": "partner-prebook"}))
        # The flow has taken the pre-book and is recording it; the store shows it or not yet.
        await asyncio.wait_for(held.entered.wait(), BOUND_S)
        assert await stored_status(store, code) == ("checkout_prebooked" if after_commit else "checkout_issued")

        booking = await http.post(f"/v1/checkout-contexts/{context}/book", json={"payment_method": "card"},
                                  headers={**partner.headers, "Idempotency-Key": "partner-book"})
        # Taken: the flow cannot finish while its pre-book's record is held, so the answer is 202.
        assert booking.status == 202, await booking.text()
        held.release.set()
        prebooked = await asyncio.wait_for(prebooking, BOUND_S)
        assert prebooked.status in (201, 202), await prebooked.text()

        info = await final_change(http, partner, code)
        assert (info["status"], info["payment_method"]) == ("modified", "card")
        assert [entry["event"] for entry in info["history"]] == ["checkout_issued", "checkout_prebooked", "modified"]
        # The retry under the key replays what was answered (a 202); a repeat without one gets the outcome.
        replayed = await http.post(f"/v1/checkout-contexts/{context}/book", json={"payment_method": "card"},
                                   headers={**partner.headers, "Idempotency-Key": "partner-book"})
        assert replayed.status == 202 and replayed.headers["Idempotent-Replayed"] == "true"
        again = await http.post(f"/v1/checkout-contexts/{context}/book", json={"payment_method": "card"},
                                headers=partner.headers)
        assert again.status == 200 and (await again.json())["status"] == "modified"


async def test_a_booking_sent_while_no_worker_runs_takes_effect_after_the_restart(
    gateway: TestClient, temporal_env: WorkflowEnvironment, settings: Settings, store: Store, partner: Actor,
    agent: Actor,
) -> None:
    http = gateway
    async with worker_over(temporal_env, settings, store, store.flows):
        reservation_id, checkout = await issued_checkout(http, partner, agent)
        await until_recorded(store, checkout["code"], "checkout_issued")
    # The worker is gone: the partner pre-books and books, neither can be taken yet.
    def prebook() -> Awaitable[ClientResponse]:
        return http.post(f"/v1/checkouts/{checkout['checkout_id']}/prebook", json={"transaction_id": reservation_id},
                         headers={**partner.headers, "Idempotency-Key": "partner-prebook"})

    def book() -> Awaitable[ClientResponse]:
        return http.post(f"/v1/checkout-contexts/{context_of(checkout)}/book", json={"payment_method": "card"},
                         headers={**partner.headers, "Idempotency-Key": "partner-book"})

    await problem(await prebook(), 503, "flow_unavailable")
    await problem(await book(), 503, "flow_unavailable")

    async with worker_over(temporal_env, settings, store, store.flows):
        # Both retried with their keys, at once: the booking is taken, or answered "retry later"
        # until it can be; never refused for good.
        prebooking = asyncio.create_task(sent_until_final(prebook, unavailable))
        booked = await sent_until_final(book)
        assert booked.status in (200, 202), await booked.text()
        prebooked = await asyncio.wait_for(prebooking, BOUND_S)
        assert prebooked.status in (201, 202), await prebooked.text()
        assert (await final_change(http, partner, checkout["code"]))["status"] == "modified"


async def test_a_booking_before_the_prebook_is_refused_for_now_only(
    gateway: TestClient, temporal_env: WorkflowEnvironment, settings: Settings, store: Store, partner: Actor,
    agent: Actor,
) -> None:
    http = gateway
    async with worker_over(temporal_env, settings, store, store.flows):
        reservation_id, checkout = await issued_checkout(http, partner, agent)
        await until_recorded(store, checkout["code"], "checkout_issued")
        book_path = f"/v1/checkout-contexts/{context_of(checkout)}/book"
        headers = {**partner.headers, "Idempotency-Key": "too-early"}
        early = await http.post(book_path, json={"payment_method": "card"}, headers=headers)
        await problem(early, 409, "not_prebooked")
        assert int(early.headers["Retry-After"]) > 0
        assert "Idempotent-Replayed" not in early.headers
        prebooked = await http.post(f"/v1/checkouts/{checkout['checkout_id']}/prebook",
                                    json={"transaction_id": reservation_id}, headers=partner.headers)
        assert prebooked.status == 201, await prebooked.text()
        # A refusal for good is stored as before: an unknown payment method is 422, replayed.
        wrong = {**partner.headers, "Idempotency-Key": "wrong-method"}
        for replay in (False, True):
            refused = await http.post(book_path, json={"payment_method": "bitcoin"}, headers=wrong)
            await problem(refused, 422, "validation_failed")
            assert "Retry-After" not in refused.headers
            assert ("Idempotent-Replayed" in refused.headers) == replay
        # Not stored under the key: the retry asks the flow again, which now takes it.
        retried = await http.post(book_path, json={"payment_method": "card"}, headers=headers)
        assert retried.status == 200, await retried.text()
        assert "Idempotent-Replayed" not in retried.headers
        assert (await retried.json())["status"] == "modified"
