"""Starting a flow survives a crash at every step (docs/flows.md#how-a-flow-starts), on SQLite and PostgreSQL.

The steps are: (1) open the flow in the store (lock, index row and workflow input, one transaction),
(2) start its workflow, (3) answer. A fault is injected between each step; afterwards the flow
runs exactly once, and a client retrying with its Idempotency-Key gets the first answer.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

import services.flow_start
from api.app_keys import DEPS
from services.flow_start import reconcile
from store.repositories import Store
from store.schema import flows, idempotency_records, product_locks, products
from tests.api.conftest import Actor, flight, hotel
from tests.api.test_cancellations import quote_for
from tests.api.test_foundation import problem

BOUND_S = 60


class GatewayDied(Exception):
    """Stands for the gateway process dying at the injected point."""


def crash_launches(monkeypatch: pytest.MonkeyPatch, times: int = 1) -> None:
    """The next ``times`` workflow starts die before reaching Temporal: step 1 done, step 2 not."""
    original = services.flow_start._launch
    left = [times]

    async def dying(*args: Any) -> Any:
        if left[0] > 0:
            left[0] -= 1
            raise GatewayDied("killed between opening the flow and starting its workflow")
        return await original(*args)

    monkeypatch.setattr(services.flow_start, "_launch", dying)


async def cancelled_by(store: Store, product_id: str) -> str | None:
    async with store.engine.connect() as conn:
        return (await conn.execute(sa.select(products.c.cancelled_by).where(products.c.product_id == product_id))
                ).scalar_one()


async def test_a_start_interrupted_after_opening_is_finished_by_the_reconciler(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, store: Store, book, monkeypatch: pytest.MonkeyPatch
) -> None:
    reservation = await book(partner, flight(days_ahead=30))
    product_id = reservation["products"][0]["product_id"]
    quote = await quote_for(http, partner, product_id)
    crash_launches(monkeypatch)

    response = await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                               headers=partner.headers)
    assert response.status >= 500
    [opened] = (await (await http.get(f"/v1/reservations/{reservation['reservation_id']}",
                                      headers=partner.headers)).json())["flows"]
    code = opened["code"]
    # The product is held by a flow with no workflow yet: nothing else may start on it meanwhile.
    await problem(await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                                  headers=partner.headers), 409, "flow_in_progress")

    monkeypatch.setattr(services.flow_start, "UNSTARTED_AFTER", timedelta(0))
    # This sweep starts it, or the gateway's own sweep (the same function, running meanwhile) did
    # already: either way the workflow below must run to its end.
    await reconcile(http.server.app[DEPS])
    final = await asyncio.wait_for(http.server.app[DEPS].temporal.get_workflow_handle(code).result(),
                                   BOUND_S)
    assert final["status"] == "cancelled"
    assert await cancelled_by(store, product_id) == code
    # Nothing left half done: the flow has recorded its transitions, so it is no longer "unstarted".
    assert code not in [f.code for f in await store.flows.unstarted(datetime.now(timezone.utc), 1000)]
    async with store.engine.connect() as conn:
        held = await conn.execute(sa.select(product_locks).where(product_locks.c.product_id == product_id))
        assert held.all() == []


async def test_a_retry_with_its_key_after_a_lost_answer_gets_the_first_answer(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, store: Store, book, monkeypatch: pytest.MonkeyPatch
) -> None:
    reservation = await book(partner, flight(days_ahead=30))
    product_id = reservation["products"][0]["product_id"]
    quote = await quote_for(http, partner, product_id)
    path, body = f"/v1/products/{product_id}/cancellations", {"quote_id": quote["quote_id"]}
    headers = {**partner.headers, "Idempotency-Key": "cancel-once"}

    # Step 2 fails: the flow is opened but its workflow not started; the client sees an error.
    crash_launches(monkeypatch)
    assert (await http.post(path, json=body, headers=headers)).status >= 500
    # The client retries with its key: the same flow is found and started, and answers.
    first = await http.post(path, json=body, headers=headers)
    assert first.status == 200, await first.text()
    done = await first.json()
    assert done["status"] == "cancelled"

    # Step 3 lost: the answer never reached the client (nor the idempotency store); it retries again.
    async with store.engine.begin() as conn:
        await conn.execute(idempotency_records.delete())
    again = await http.post(path, json=body, headers=headers)
    assert again.status == 200 and await again.json() == done

    async with store.engine.connect() as conn:
        codes = (await conn.execute(sa.select(flows.c.code).where(flows.c.product_id == product_id))).scalars().all()
    assert codes == [done["code"]]
    assert await cancelled_by(store, product_id) == done["code"]


async def test_a_special_request_interrupted_before_its_workflow_is_started_later(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, book, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The non-exclusive start (no lock) has the same crash point and the same cure."""
    reservation = await book(partner, flight(days_ahead=30))
    product_id = reservation["products"][0]["product_id"]
    crash_launches(monkeypatch)
    response = await http.post(f"/v1/products/{product_id}/special-requests",
                               json={"code": "WCHR", "traveller_id": "T1"}, headers=partner.headers)
    assert response.status >= 500
    [opened] = (await (await http.get(f"/v1/reservations/{reservation['reservation_id']}",
                                      headers=partner.headers)).json())["flows"]
    monkeypatch.setattr(services.flow_start, "UNSTARTED_AFTER", timedelta(0))
    # This sweep starts it, or the gateway's own sweep (the same function, running meanwhile) did
    # already: either way the workflow below must run to its end.
    await reconcile(http.server.app[DEPS])
    final = await asyncio.wait_for(
        http.server.app[DEPS].temporal.get_workflow_handle(opened["code"]).result(), BOUND_S)
    assert final["status"] == "confirmed"


async def test_one_quote_starts_one_flow(http: TestClient, partner: Actor, store: Store, book) -> None:  # type: ignore[no-untyped-def]
    """Concurrent cancellations with one quote: one wins; the others get 409 and start nothing,
    also after the winner has finished and released the product."""
    reservation = await book(partner, flight(days_ahead=30))
    product_id = reservation["products"][0]["product_id"]
    quote = await quote_for(http, partner, product_id)
    path, body = f"/v1/products/{product_id}/cancellations", {"quote_id": quote["quote_id"]}

    responses = await asyncio.gather(*[http.post(path, json=body, headers=partner.headers) for _ in range(20)])
    statuses = sorted(r.status for r in responses)
    assert statuses.count(200) == 1 and statuses.count(409) == 19, statuses
    for response in responses:
        if response.status == 409:
            assert (await response.json())["code"] in ("flow_in_progress", "quote_used", "cancellation_disallowed")
    late = await http.post(path, json=body, headers=partner.headers)
    await problem(late, 409, "cancellation_disallowed")

    view = await (await http.get(f"/v1/reservations/{reservation['reservation_id']}", headers=partner.headers)).json()
    assert [f["status"] for f in view["flows"]] == ["cancelled"]
    events = await (await http.get("/v1/events", headers=partner.headers)).json()
    assert [e["type"] for e in events["items"]] == ["cancellation.completed", "refund.posted"]


async def test_a_used_quote_is_refused_once_the_product_is_free_again(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, agent: Actor, book
) -> None:
    """A manual cancellation the partner rejects frees the product; its quote cannot start another."""
    reservation = await book(partner, hotel())
    product_id = reservation["products"][0]["product_id"]
    quote = await quote_for(http, partner, product_id)
    path, body = f"/v1/products/{product_id}/cancellations", {"quote_id": quote["quote_id"]}
    started = await (await http.post(path, json=body, headers=partner.headers)).json()
    quoted = await http.post(f"/v1/agent/cancellations/{started['code']}/quote", headers=agent.headers, json={
        "penalty": {"amount": "60", "currency": "EUR"}, "refund": {"amount": "540", "currency": "EUR"}})
    assert quoted.status == 200, await quoted.text()
    rejected = await http.patch(f"/v1/cancellations/{started['code']}", json={"decision": "reject"},
                                headers=partner.headers)
    assert rejected.status == 200 and (await rejected.json())["status"] == "rejected"

    await problem(await http.post(path, json=body, headers=partner.headers), 409, "quote_used")
