"""A record the store refuses for good, over real HTTP, the real store and the real dev server, on
SQLite and PostgreSQL (docs/operations.md#a-refused-record): the issue's reservation (two fares of
999,999,999,999,999,999.99 EUR, as stored before the input bounds) cancelled automatically parks its
flow instead of retrying forever; an admin sees why, repairs the data and retries, and the flow ends
with its one event. Nobody but an admin sees or retries a refused record."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from store.repositories import Store
from store.schema import events, payments
from tests.api.conftest import ADMIN, Actor, cancel_with_a_quote, flight
from tests.api.test_foundation import problem
from tests.waits import eventually

BOUND_S = 60
HUGE = "999999999999999999.99"


async def refused(http: TestClient, code: str) -> dict[str, Any]:
    """The refused record the admin view shows for ``code``, once it shows one (within a bound)."""
    async def read() -> dict[str, Any] | None:
        response = await http.get(f"/v1/admin/flows/{code}/refused-record", headers=ADMIN)
        assert response.status == 200, await response.text()
        found = (await response.json())["refused_record"]
        return None if found is None else dict(found)
    return await eventually(read, BOUND_S, f"{code} parked on a refused record")


async def parked_codes(http: TestClient) -> set[str]:
    response = await http.get("/v1/admin/refused-records", headers=ADMIN)
    assert response.status == 200, await response.text()
    return {item["code"] for item in (await response.json())["items"]}


async def gauge(http: TestClient) -> float:
    """The gateway's count of cancellations parked on a refused record (read from the database)."""
    text = await (await http.get("/metrics")).text()
    [line] = [line for line in text.splitlines() if line.startswith('aftersales_flows_record_refused{kind="cancellation"}')]
    return float(line.split()[-1])


async def fares(store: Store, reservation_id: str, amount: str) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(payments.update().where(payments.c.reservation_id == reservation_id,
                                                   payments.c.category == "fare").values(amount=amount))


async def test_a_refused_cancellation_parks_until_an_admin_retries(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, agent: Actor, book, store: Store
) -> None:
    reservation = await book(partner, flight(), flight())
    product_id = reservation["products"][0]["product_id"]
    await fares(store, reservation["reservation_id"], HUGE)  # as stored before the bounds
    parked_before = await gauge(http)

    started = await cancel_with_a_quote(http, partner, product_id)
    assert started.status in (201, 202), await started.text()
    code = (await started.json())["code"]

    parked = await refused(http, code)
    assert (parked["status"], parked["event_type"], parked["retries"]) == ("cancelled", "cancellation.completed", 0)
    assert "10^18" in parked["reason"]
    shown = await (await http.get(f"/v1/cancellations/{code}", headers=partner.headers)).json()
    assert shown["status"] == "processing"  # the store has what it had: nothing of the refused move
    assert code in await parked_codes(http)
    assert await gauge(http) == parked_before + 1
    # Only an admin sees or retries it.
    await problem(await http.get(f"/v1/admin/flows/{code}/refused-record", headers=agent.headers), 403, "forbidden")
    await problem(await http.get("/v1/admin/refused-records", headers=agent.headers), 403, "forbidden")
    await problem(await http.post(f"/v1/admin/flows/{code}/retry-record", headers=partner.headers), 403, "forbidden")

    refused_again = await http.post(f"/v1/admin/flows/{code}/retry-record", headers=ADMIN)  # nothing repaired yet
    assert refused_again.status == 200, await refused_again.text()
    assert (await refused_again.json())["outcome"] == "refused"
    assert (await refused(http, code))["retries"] == 1

    await fares(store, reservation["reservation_id"], "240.00")  # the operator's data repair
    retried = await http.post(f"/v1/admin/flows/{code}/retry-record", headers=ADMIN)

    assert retried.status == 200, await retried.text()
    assert await retried.json() == {"code": code, "status": "cancelled", "outcome": "recorded", "reason": None}
    final = await (await http.get(f"/v1/cancellations/{code}", headers=partner.headers)).json()
    assert final["status"] == "cancelled"
    async with store.engine.connect() as conn:
        completed = (await conn.execute(sa.select(events.c.event_id).where(
            events.c.flow_code == code, events.c.type == "cancellation.completed"))).all()
    assert len(completed) == 1
    assert code not in await parked_codes(http)
    assert await gauge(http) == parked_before
    state = await (await http.get(f"/v1/admin/flows/{code}/refused-record", headers=ADMIN)).json()
    assert state == {"code": code, "refused_record": None}
    await problem(await http.post(f"/v1/admin/flows/{code}/retry-record", headers=ADMIN), 409, "no_refused_record")


async def test_only_a_parked_flow_is_retried(http: TestClient, partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, flight(mode="manual"))
    started = await cancel_with_a_quote(http, partner, reservation["products"][0]["product_id"])
    code = (await started.json())["code"]

    await problem(await http.post(f"/v1/admin/flows/{code}/retry-record", headers=ADMIN), 409, "no_refused_record")
    assert await (await http.get(f"/v1/admin/flows/{code}/refused-record", headers=ADMIN)).json() == {
        "code": code, "refused_record": None}
    await problem(await http.post("/v1/admin/flows/CAN-NOSUCH00/retry-record", headers=ADMIN), 404, "not_found")
    await problem(await http.get("/v1/admin/flows/not-a-code/refused-record", headers=ADMIN), 404, "not_found")
