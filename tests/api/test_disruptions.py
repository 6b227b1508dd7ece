"""Disruptions over real HTTP and a real Temporal dev server (docs/rescheduling.md#disruptions), on SQLite and
PostgreSQL: one signed push naming a flight reschedules every product on it, of two partners; the same push
again starts nothing; its progress is its supplier's, the admin's and the agents'; bad input is 422."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.api.conftest import ADMIN, Actor, flight, new_partner
from tests.api.test_foundation import problem
from tests.api.test_supplier_intake import SupplierActor, new_supplier, push

BOUND_S = 60


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"AFTERSALES_ENV": "sandbox"}


def on_flight(number: str, departure: datetime) -> dict[str, Any]:
    body = flight(carrier="ZZ")
    body["segments"][0].update(departure=departure.isoformat(), arrival=(departure + timedelta(hours=2)).isoformat(),
                               flight_number=number)
    return body


def flight_push(number: str, departure: datetime, change_id: str, **changed: Any) -> dict[str, Any]:
    new = departure + timedelta(hours=4)
    return {"change_id": change_id, "kind": "time_change",
            "flight": {"carrier": "ZZ", "flight_number": number[2:], "departure_date": departure.date().isoformat()},
            "proposed_segments": [{"origin": "MAD", "destination": "CDG", "departure": new.isoformat(),
                                   "arrival": (new + timedelta(hours=2)).isoformat(), "flight_number": number}],
            **changed}


async def book(http: TestClient, partner: Actor, *products: dict[str, Any]) -> list[str]:
    body = {"status": "confirmed", "travellers": [{"traveller_id": "T1", "name": "Ada Lovelace"}], "products": list(products)}
    response = await http.post("/v1/sandbox/reservations", json=body, headers=partner.headers)
    assert response.status == 201, await response.text()
    return [p["product_id"] for p in (await response.json())["products"]]


async def fanned_out(temporal: Client, disruption_id: str) -> int:
    async with asyncio.timeout(BOUND_S):
        result: int = await temporal.get_workflow_handle(disruption_id).result()
    return result


async def test_one_push_reschedules_every_product_on_the_flight(http: TestClient, temporal_env: WorkflowEnvironment,
                                                                 agent: Actor) -> None:
    number, departure = f"ZZ{random.randrange(1000, 10000)}", datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=20)
    acme, globex = await new_partner(http, "Acme"), await new_partner(http, "Globex")
    mine = await book(http, acme, on_flight(number, departure), on_flight(number, departure))
    theirs = await book(http, globex, on_flight(number, departure))
    await book(http, globex, on_flight(number, departure + timedelta(days=1)))  # the next day's flight
    supplier = await new_supplier(http, ADMIN, ["ZZ"])

    pushed = await push(http, supplier, flight_push(number, departure, "dly-1"))
    assert pushed.status == 202, await pushed.text()
    answer = await pushed.json()
    assert answer["status"] == "received" and answer["disruption_id"].startswith("dsr_") and answer["affected"] == 3
    disruption_id = answer["disruption_id"]
    assert await fanned_out(temporal_env.client, disruption_id) == 3

    again = await push(http, supplier, flight_push(number, departure, "dly-1"))
    assert again.status == 202 and (await again.json())["disruption_id"] == disruption_id

    progress = await http.get(f"/v1/supplier/disruptions/{disruption_id}", headers={"Authorization": f"Bearer {supplier.key}"})
    assert progress.status == 200, await progress.text()
    seen = await progress.json()
    assert (seen["change_id"], seen["kind"], seen["affected"], seen["started"]) == ("dly-1", "time_change", 3, 3)
    assert seen["flight"] == {"carrier": "ZZ", "flight_number": number, "departure_date": departure.date().isoformat()}
    assert sum(seen["by_status"].values()) == 3

    grace = agent
    flows = await (await http.get(f"/v1/agent/flows?disruption_id={disruption_id}", headers=grace.headers)).json()
    assert sorted(f["product_id"] for f in flows["items"]) == sorted(mine + theirs)
    assert {f["kind"] for f in flows["items"]} == {"rescheduling"}
    listed = await (await http.get("/v1/agent/disruptions?limit=200", headers=grace.headers)).json()
    assert disruption_id in [d["disruption_id"] for d in listed["items"]]
    for who in (grace.headers, ADMIN):
        assert (await http.get(f"/v1/supplier/disruptions/{disruption_id}", headers=who)).status == 200

    # Each partner sees its own products' flows, with the time shift applied.
    own = await (await http.get("/v1/flows", headers=acme.headers)).json()
    assert sorted(f["product_id"] for f in own["items"]) == sorted(mine)
    code = own["items"][0]["code"]
    info = await (await http.get(f"/v1/reschedulings/{code}", headers=acme.headers)).json()
    assert datetime.fromisoformat(info["proposed_segments"][0]["departure"]) == departure + timedelta(hours=4)


async def test_a_disruption_is_seen_only_by_its_supplier_the_admin_and_agents(http: TestClient,
                                                                               temporal_env: WorkflowEnvironment) -> None:
    number, departure = f"ZZ{random.randrange(1000, 10000)}", datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=20)
    acme = await new_partner(http, "Acme")
    await book(http, acme, on_flight(number, departure))
    supplier = await new_supplier(http, ADMIN, ["ZZ"])
    rival = await new_supplier(http, ADMIN, ["ZZ"], name="Rival Air")
    answer = await (await push(http, supplier, flight_push(number, departure, "dly-2"))).json()
    path = f"/v1/supplier/disruptions/{answer['disruption_id']}"
    await problem(await http.get(path, headers={"Authorization": f"Bearer {rival.key}"}), 404, "not_found")
    await problem(await http.get("/v1/supplier/disruptions/dsr_nope", headers=ADMIN), 404, "not_found")
    # A partner's key has no business with suppliers' disruptions: a role the route does not take.
    await problem(await http.get(path, headers=acme.headers), 403, "forbidden")
    await problem(await http.get("/v1/agent/disruptions", headers=acme.headers), 403, "forbidden")
    await problem(await http.get("/v1/agent/disruptions", headers={"Authorization": f"Bearer {supplier.key}"}), 403, "forbidden")
    await problem(await http.get(f"/v1/agent/flows?disruption_id={answer['disruption_id']}", headers=acme.headers),
                  403, "forbidden")
    # Another carrier's flight is not the supplier's: 404, as for a product.
    ab_only = await new_supplier(http, ADMIN, ["AB"], name="AB Air")
    await problem(await push(http, ab_only, flight_push(number, departure, "dly-3")), 404, "not_found")
    await fanned_out(temporal_env.client, answer["disruption_id"])


async def test_bad_flight_pushes_are_422(http: TestClient) -> None:
    supplier: SupplierActor = await new_supplier(http, ADMIN, ["ZZ"])
    departure = datetime(2031, 1, 1, 9, tzinfo=timezone.utc)
    good = flight_push("ZZ101", departure, "bad")
    for body in [
        {**good, "product_id": "PRD-0000000000"},  # both a product and a flight
        {k: v for k, v in good.items() if k != "flight"},  # neither
        {**good, "flight": {**good["flight"], "departure_date": "2031-13-01"}},
        {**good, "flight": {**good["flight"], "flight_number": "AB101"}},  # another carrier's number
        {**good, "proposed_segments": good["proposed_segments"] * 2},  # one flight, one new segment
        {**good, "proposed_segments": []},
        {**good, "kind": "flight_cancelled"},
    ]:
        await problem(await push(http, supplier, body), 422, "validation_failed")
    bad_day = await problem(await push(http, supplier, {**good, "flight": {**good["flight"], "departure_date": "31-01-2031"}}),
                            422, "validation_failed")
    assert [e["field"] for e in bad_day["errors"]] == ["flight.departure_date"]
    cancelled = await push(http, supplier, {**good, "kind": "flight_cancelled", "proposed_segments": None,
                                            "change_id": "cnx"})
    assert cancelled.status == 202 and (await cancelled.json())["affected"] == 0
    listing = await http.get("/v1/agent/disruptions?cursor=forged", headers=ADMIN)
    await problem(listing, 422, "validation_failed")
