"""Special requests over HTTP (docs/api.md#special-requests) on the real dev server: the sandbox airline answers after
``AFTERSALES_SANDBOX_SUPPLIER_DELAY`` (1 s here); tests wait on the flow's result, never on the clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from temporalio.testing import WorkflowEnvironment

from domain.special_request_flow import SpecialRequestInfo
from tests.api.conftest import Actor, flight, hotel
from tests.api.test_foundation import problem

BOUND_S = 60
MEAL = {"code": "VGML", "name": "Vegan meal", "price": {"amount": "12.5", "currency": "EUR"}}


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"AFTERSALES_SANDBOX_SUPPLIER_DELAY": "1s"}


def flight_with_meal() -> dict[str, Any]:
    product = flight()
    product["special_request_options"].append(MEAL)
    return product


async def ask(http: TestClient, who: Actor, product_id: str, **body: str) -> Any:
    return await http.post(f"/v1/products/{product_id}/special-requests", json=body, headers=who.headers)


async def answered(temporal_env: WorkflowEnvironment, request_id: str) -> SpecialRequestInfo:
    handle = temporal_env.client.get_workflow_handle(request_id, result_type=SpecialRequestInfo)
    return await asyncio.wait_for(handle.result(), BOUND_S)


async def test_options_of_a_product(http: TestClient, partner: Actor, other_partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, flight_with_meal(), hotel())
    flight_id, hotel_id = (p["product_id"] for p in reservation["products"])

    response = await http.get(f"/v1/products/{flight_id}/special-request-options", headers=partner.headers)
    assert response.status == 200
    assert (await response.json())["items"] == [
        {"code": "WCHR", "name": "Wheelchair", "price": None},
        {"code": "VGML", "name": "Vegan meal", "price": {"amount": "12.50", "currency": "EUR"}},
    ]
    none = await http.get(f"/v1/products/{hotel_id}/special-request-options", headers=partner.headers)
    assert (await none.json())["items"] == []
    await problem(await http.get(f"/v1/products/{flight_id}/special-request-options", headers=other_partner.headers),
                  404, "not_found")


async def test_request_is_confirmed_by_the_airline(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, other_partner: Actor, temporal_env: WorkflowEnvironment, book
) -> None:
    reservation = await book(partner, flight_with_meal())
    product_id = reservation["products"][0]["product_id"]

    response = await ask(http, partner, product_id, code="VGML", traveller_id="T1", note="no nuts")
    assert response.status == 202, await response.text()
    started = await response.json()
    assert started["request_id"].startswith("SR-") and started["status"] == "requested"
    request_id = started["request_id"]
    # Not a mutating flow: the product stays free for a change or a cancellation meanwhile.
    allowance = await (await http.get(f"/v1/products/{product_id}/change-allowance", headers=partner.headers)).json()
    assert allowance["reasons"] == []

    assert (await answered(temporal_env, request_id)).status == "confirmed"

    info = await (await http.get(f"/v1/special-requests/{request_id}", headers=partner.headers)).json()
    assert (info["request_id"], info["status"], info["traveller_id"], info["note"]) == (
        request_id, "confirmed", "T1", "no nuts")
    assert info["option"] == {"code": "VGML", "name": "Vegan meal", "price": {"amount": "12.50", "currency": "EUR"}}
    assert [h["event"] for h in info["history"]] == ["requested", "confirmed"]
    await problem(await http.get(f"/v1/special-requests/{request_id}", headers=other_partner.headers),
                  404, "not_found")
    view = await (await http.get(f"/v1/reservations/{reservation['reservation_id']}", headers=partner.headers)).json()
    assert [(f["code"], f["kind"], f["status"]) for f in view["flows"]] == [(request_id, "special_request", "confirmed")]
    events = await (await http.get("/v1/events", headers=partner.headers)).json()
    assert [e["type"] for e in events["items"]] == ["special_request.confirmed"]
    assert events["items"][0]["data"]["request_id"] == request_id


async def test_request_noting_decline_is_declined(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, temporal_env: WorkflowEnvironment, book
) -> None:
    reservation = await book(partner, flight())
    product_id = reservation["products"][0]["product_id"]

    response = await ask(http, partner, product_id, code="WCHR", traveller_id="T1", note="Please DECLINE this one")
    request_id = (await response.json())["request_id"]

    info = await answered(temporal_env, request_id)
    assert info.status == "declined" and info.reason
    stored = await (await http.get(f"/v1/special-requests/{request_id}", headers=partner.headers)).json()
    assert stored["status"] == "declined" and stored["reason"] == info.reason
    events = await (await http.get("/v1/events", headers=partner.headers)).json()
    assert [e["type"] for e in events["items"]] == ["special_request.declined"]


async def test_request_while_a_change_holds_the_product(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, temporal_env: WorkflowEnvironment, book
) -> None:
    product = flight()
    reservation = await book(partner, product)
    product_id = reservation["products"][0]["product_id"]
    day = product["segments"][0]["departure"][:10]
    items = (await (await http.post(f"/v1/products/{product_id}/change-alternatives", json={"departure_date": day},
                                    headers=partner.headers)).json())["items"]
    context = await http.post("/v1/change-contexts", json={"itinerary_id": items[-1]["itinerary_id"]},
                              headers=partner.headers)
    assert context.status == 201

    response = await ask(http, partner, product_id, code="WCHR", traveller_id="T1")

    assert response.status == 202, await response.text()
    assert (await answered(temporal_env, (await response.json())["request_id"])).status == "confirmed"


async def test_refusals(http: TestClient, partner: Actor, other_partner: Actor, agent: Actor, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, flight(), flight())
    product_id, cancelled_id = (p["product_id"] for p in reservation["products"])

    unknown = await problem(await ask(http, partner, product_id, code="XXXX", traveller_id="T1"), 422, "validation_failed")
    assert unknown["errors"][0]["field"] == "code"
    stranger = await problem(await ask(http, partner, product_id, code="WCHR", traveller_id="T9"),
                             422, "validation_failed")
    assert stranger["errors"][0]["field"] == "traveller_id"
    missing = await problem(await ask(http, partner, product_id, code="WCHR"), 422, "validation_failed")
    assert missing["errors"][0]["field"] == "traveller_id"
    await problem(await ask(http, other_partner, product_id, code="WCHR", traveller_id="T1"), 404, "not_found")
    await problem(await ask(http, agent, product_id, code="WCHR", traveller_id="T1"), 403, "forbidden")
    await problem(await http.get("/v1/special-requests/SR-00000000", headers=partner.headers), 404, "not_found")
    await problem(await http.get("/v1/special-requests/CAN-00000000", headers=partner.headers), 404, "not_found")

    quote = await (await http.post(f"/v1/products/{cancelled_id}/cancellation-quotes", json={},
                                   headers=partner.headers)).json()
    cancelled = await http.post(f"/v1/products/{cancelled_id}/cancellations", json={"quote_id": quote["quote_id"]},
                                headers=partner.headers)
    assert (await cancelled.json())["status"] == "cancelled"
    await problem(await ask(http, partner, cancelled_id, code="WCHR", traveller_id="T1"),
                  409, "special_request_disallowed")
