"""Rescheduling over HTTP (docs/api.md#rescheduling) on the real dev server: the sandbox airline's mock, signed
triggers to a real webhook, alternatives, the partner's choice, and a change waiting its turn."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest_asyncio
from aiohttp.test_utils import TestClient
from temporalio.testing import WorkflowEnvironment

from config.settings import Settings
from domain.rescheduling_flow import ScheduleChange
from services.bootstrap import bootstrap
from services.reschedulings import receive_schedule_change
from store.repositories import Store
from tests.api.conftest import Actor, flight, hotel, new_partner
from tests.api.test_foundation import problem
from tests.workflows.receiver import WebhookReceiver

BOUND_S = 60


@dataclass
class Webhook(WebhookReceiver):
    """The partner's webhook; a test awaits an event on it instead of sleeping."""

    def _find(self, event_type: str, code: str) -> dict[str, Any] | None:
        return next((r.body for r in self.received
                     if r.signed and r.body["type"] == event_type and r.body["data"]["code"] == code), None)

    async def event(self, event_type: str, code: str) -> dict[str, Any]:
        await self.until(lambda: self._find(event_type, code) is not None, BOUND_S)
        found = self._find(event_type, code)
        assert found is not None
        return found


@dataclass(frozen=True)
class Hooked:
    partner: Actor
    webhook: Webhook


@pytest_asyncio.fixture
async def hooked(http: TestClient) -> AsyncIterator[Hooked]:
    """A partner whose webhook is a real receiver checking every signature."""
    partner = await new_partner(http, "Hooked Travel")
    async with Webhook(secret=partner.body["webhook_secret"]) as webhook:
        # The secret is only known once the partner exists: point its webhook at the receiver now.
        response = await http.put("/v1/partner/webhook", json={"url": webhook.url}, headers=partner.headers)
        assert response.status == 200
        yield Hooked(partner, webhook)


async def mock(http: TestClient, who: Actor, product_id: str, kind: str = "time_change", **extra: Any) -> str:
    """The sandbox airline's push; the code of the rescheduling it started."""
    response = await http.post("/v1/sandbox/rescheduling/mock", headers=who.headers,
                               json={"product_id": product_id, "kind": kind, **extra})
    assert response.status == 202, await response.text()
    answer = await response.json()
    assert answer["status"] == "received" and set(answer) == {"status", "code"}
    return str(answer["code"])


async def reservation(http: TestClient, who: Actor, reservation_id: str) -> dict[str, Any]:
    response = await http.get(f"/v1/reservations/{reservation_id}", headers=who.headers)
    assert response.status == 200
    return await response.json()


async def rescheduling_code(http: TestClient, who: Actor, reservation_id: str) -> str:
    """The partner finds the RS code on the affected reservation."""
    flows = (await reservation(http, who, reservation_id))["flows"]
    [code] = [f["code"] for f in flows if f["kind"] == "rescheduling"]
    return code


async def accept(http: TestClient, who: Actor, code: str, alternative_id: str):  # type: ignore[no-untyped-def]
    return await http.post(f"/v1/reschedulings/{code}/accept", json={"alternative_id": alternative_id},
                           headers=who.headers)


def departure(product: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(product["segments"][0]["departure"])


async def test_time_change_detected_then_partner_rebooks(http: TestClient, hooked: Hooked, book) -> None:  # type: ignore[no-untyped-def]
    partner, webhook = hooked.partner, hooked.webhook
    booked = await book(partner, flight(days_ahead=30), hotel())
    product = booked["products"][0]
    quote = await (await http.post(f"/v1/products/{product['product_id']}/cancellation-quotes", json={},
                                   headers=partner.headers)).json()

    started = await mock(http, partner, product["product_id"], delay_minutes=90)
    code = await rescheduling_code(http, partner, booked["reservation_id"])
    assert started == code  # the mock says which flow it started
    detected = await webhook.event("rescheduling.detected", code)
    assert detected["data"]["status"] == "awaiting_partner_action"

    view = await reservation(http, partner, booked["reservation_id"])
    assert [(f["code"], f["kind"], f["status"]) for f in view["flows"]] == [
        (code, "rescheduling", "awaiting_partner_action")]
    info = await (await http.get(f"/v1/reschedulings/{code}", headers=partner.headers)).json()
    assert {"code", "product_id", "status", "original_segments", "proposed_segments", "decision_deadline"} <= set(info)
    assert (info["code"], info["product_id"], info["status"]) == (code, product["product_id"],
                                                                   "awaiting_partner_action")
    assert info["original_segments"] == product["segments"]
    assert departure({"segments": info["proposed_segments"]}) == departure(product) + timedelta(minutes=90)
    assert info["decision_deadline"]

    alternatives = (await (await http.get(f"/v1/reschedulings/{code}/alternatives",
                                          headers=partner.headers)).json())["items"]
    assert [(a["alternative_id"], a["kind"], a["default"]) for a in alternatives] == [
        ("proposed", "accept_proposed", True), ("rebook-1d", "rebook", False),
        ("rebook-2d", "rebook", False), ("refund", "refund", False)]
    assert alternatives[-1]["refund"] == {"amount": "240.00", "currency": "EUR"}
    assert all(a["refund"] is None for a in alternatives[:-1])

    # The flow holds the product: no cancellation meanwhile.
    allowance = await (await http.get(f"/v1/products/{product['product_id']}/cancellation-allowance",
                                      headers=partner.headers)).json()
    assert allowance["reasons"] == ["flow_in_progress"]
    await problem(await http.post(f"/v1/products/{product['product_id']}/cancellations",
                                  json={"quote_id": quote["quote_id"]}, headers=partner.headers),
                  409, "flow_in_progress")

    unknown = await problem(await accept(http, partner, code, "upgrade"), 422, "unknown_alternative")
    assert unknown["errors"] == [{"field": "alternative_id", "message": "not one of this rescheduling's alternatives"}]
    response = await accept(http, partner, code, "rebook-1d")
    assert response.status == 200, await response.text()
    assert await response.json() == {"code": code, "status": "accepted", "alternative_id": "rebook-1d",
                                     "refund_to": "original_payment", "credit_id": None}

    await problem(await accept(http, partner, code, "refund"), 409, "not_awaiting_choice")
    again = await accept(http, partner, code, "rebook-1d")  # the same choice again: the same answer
    assert again.status == 200 and (await again.json())["status"] == "accepted"

    accepted = await webhook.event("rescheduling.accepted", code)
    assert accepted["data"]["alternative_id"] == "rebook-1d"
    view = await reservation(http, partner, booked["reservation_id"])
    moved = view["products"][0]
    assert moved["status"] == "confirmed"
    assert departure(moved) == departure(product) + timedelta(days=1)
    assert datetime.fromisoformat(moved["start"]) == departure(product) + timedelta(days=1)
    assert view["flows"][0]["status"] == "accepted"
    allowance = await (await http.get(f"/v1/products/{product['product_id']}/cancellation-allowance",
                                      headers=partner.headers)).json()
    assert allowance["allowance"] == "allowed"


async def test_cancelled_flight_refunded_cancels_the_product(http: TestClient, hooked: Hooked, book) -> None:  # type: ignore[no-untyped-def]
    partner, webhook = hooked.partner, hooked.webhook
    booked = await book(partner, flight(days_ahead=10))
    product_id = booked["products"][0]["product_id"]
    await mock(http, partner, product_id, kind="flight_cancelled")
    code = await rescheduling_code(http, partner, booked["reservation_id"])
    await webhook.event("rescheduling.detected", code)

    info = await (await http.get(f"/v1/reschedulings/{code}", headers=partner.headers)).json()
    assert info["proposed_segments"] == []
    alternatives = (await (await http.get(f"/v1/reschedulings/{code}/alternatives",
                                          headers=partner.headers)).json())["items"]
    assert [(a["alternative_id"], a["default"]) for a in alternatives] == [
        ("rebook-1d", True), ("rebook-2d", False), ("refund", False)]

    response = await accept(http, partner, code, "refund")
    assert response.status == 200, await response.text()
    assert (await response.json())["status"] == "accepted"
    await problem(await accept(http, partner, code, "rebook-1d"), 409, "not_awaiting_choice")

    accepted = await webhook.event("rescheduling.accepted", code)
    assert accepted["data"]["alternative_id"] == "refund"
    view = await reservation(http, partner, booked["reservation_id"])
    assert view["products"][0]["status"] == "cancelled"


async def test_mock_refusals(http: TestClient, partner: Actor, other_partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    booked = await book(partner, flight(), hotel())
    flight_id, hotel_id = (p["product_id"] for p in booked["products"])

    async def post(who: Actor, body: dict[str, Any]):  # type: ignore[no-untyped-def]
        return await http.post("/v1/sandbox/rescheduling/mock", json=body, headers=who.headers)

    await problem(await post(other_partner, {"product_id": flight_id, "kind": "time_change"}), 404, "not_found")
    await problem(await post(partner, {"product_id": hotel_id, "kind": "time_change"}), 404, "not_found")
    await problem(await post(partner, {"product_id": "PRD-NOPE", "kind": "time_change"}), 404, "not_found")
    invalid = await problem(await post(partner, {"product_id": flight_id, "kind": "moved_to_mars"}),
                            422, "validation_failed")
    assert [e["field"] for e in invalid["errors"]] == ["kind"]
    await problem(await post(partner, {"product_id": flight_id, "kind": "time_change", "delay_minutes": "90"}),
                  422, "validation_failed")
    assert (await reservation(http, partner, booked["reservation_id"]))["flows"] == []

    await mock(http, partner, flight_id)
    code = await rescheduling_code(http, partner, booked["reservation_id"])
    for path in (f"/v1/reschedulings/{code}", f"/v1/reschedulings/{code}/alternatives"):
        await problem(await http.get(path, headers=other_partner.headers), 404, "not_found")
    await problem(await accept(http, other_partner, code, "proposed"), 404, "not_found")
    await problem(await http.get("/v1/reschedulings/CAN-00000000", headers=partner.headers), 404, "not_found")


async def test_change_on_a_busy_product_waits_for_the_cancellation_then_proceeds(  # type: ignore[no-untyped-def]
    http: TestClient, hooked: Hooked, agent: Actor, book
) -> None:
    partner, webhook = hooked.partner, hooked.webhook
    booked = await book(partner, flight(days_ahead=30, mode="manual"))
    product = booked["products"][0]
    quote = await (await http.post(f"/v1/products/{product['product_id']}/cancellation-quotes", json={},
                                   headers=partner.headers)).json()
    started = await http.post(f"/v1/products/{product['product_id']}/cancellations",
                              json={"quote_id": quote["quote_id"]}, headers=partner.headers)
    assert started.status == 202
    cancellation = (await started.json())["code"]

    # Never refused: the change is received and waits its turn.
    await mock(http, partner, product["product_id"])
    code = await rescheduling_code(http, partner, booked["reservation_id"])
    flows = {f["code"]: f["status"] for f in (await reservation(http, partner, booked["reservation_id"]))["flows"]}
    assert flows == {cancellation: "awaiting_agent_quote", code: "waiting_for_product"}
    info = await (await http.get(f"/v1/reschedulings/{code}", headers=partner.headers)).json()
    assert info["status"] == "waiting_for_product" and info["decision_deadline"] is None
    # Refused for now only: with Retry-After, and not stored under its Idempotency-Key.
    keyed = {**partner.headers, "Idempotency-Key": "choice-while-waiting"}
    early = await http.post(f"/v1/reschedulings/{code}/accept", json={"alternative_id": "proposed"}, headers=keyed)
    await problem(early, 409, "not_awaiting_choice")
    assert int(early.headers["Retry-After"]) > 0 and "Idempotent-Replayed" not in early.headers

    # The change made the cancellation involuntary: the agent may quote no penalty (tests/api/test_involuntary.py).
    quoted = await http.post(f"/v1/agent/cancellations/{cancellation}/quote", headers=agent.headers, json={
        "penalty": {"amount": "0.00", "currency": "EUR"}, "refund": {"amount": "240.00", "currency": "EUR"}})
    assert quoted.status == 200, await quoted.text()
    assert (await quoted.json())["involuntary"] is True
    rejected = await http.patch(f"/v1/cancellations/{cancellation}", json={"decision": "reject"},
                                headers=partner.headers)
    assert rejected.status == 200 and (await rejected.json())["status"] == "rejected"

    await webhook.event("rescheduling.detected", code)
    flows = {f["code"]: f["status"] for f in (await reservation(http, partner, booked["reservation_id"]))["flows"]}
    assert flows == {cancellation: "rejected", code: "awaiting_partner_action"}
    # The retry under the same key asks the flow again, which now takes the choice.
    response = await http.post(f"/v1/reschedulings/{code}/accept", json={"alternative_id": "proposed"}, headers=keyed)
    assert response.status == 200, await response.text()
    assert "Idempotent-Replayed" not in response.headers
    moved = (await reservation(http, partner, booked["reservation_id"]))["products"][0]
    assert departure(moved) == departure(product) + timedelta(minutes=90)
    assert webhook.event_types().index("cancellation.rejected") < webhook.event_types().index(
        "rescheduling.detected")


async def test_a_redelivered_push_starts_one_flow(  # type: ignore[no-untyped-def]
    http: TestClient, hooked: Hooked, book, store: Store, settings: Settings, temporal_env: WorkflowEnvironment
) -> None:
    partner = hooked.partner
    booked = await book(partner, flight())
    product_id = booked["products"][0]["product_id"]
    change = ScheduleChange(change_id="airline-change-42", product_id=product_id, kind="flight_cancelled")

    # Called as a supplier adapter would call it in production: no HTTP, no sandbox.
    deps = bootstrap(settings, store, temporal_env.client)
    first = await receive_schedule_change(deps, change)
    again = await receive_schedule_change(deps, change)

    assert first == again
    assert [f["code"] for f in (await reservation(http, partner, booked["reservation_id"]))["flows"]] == [first]
    await hooked.webhook.event("rescheduling.detected", first)
    response = await accept(http, partner, first, "rebook-2d")
    assert response.status == 200, await response.text()
    final = await asyncio.wait_for(temporal_env.client.get_workflow_handle(first).result(), BOUND_S)
    assert final["status"] == "accepted"
    # Delivered once more after the flow finished: still the same flow, nothing restarts.
    assert await receive_schedule_change(deps, change) == first
    assert len((await reservation(http, partner, booked["reservation_id"]))["flows"]) == 1
    assert hooked.webhook.event_types().count("rescheduling.detected") == 1
