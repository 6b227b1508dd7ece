"""The sandbox fires every path on demand (docs/api.md#sandbox), over real HTTP on the real dev server:
every deadline a flow waits on made to pass now ends the flow where its time would have (a manual
cancellation's agent window and decision window, a rescheduling's window, a change context's and a
checkout's validity), the sandbox agent quotes a partner's manual cancellation, and nobody advances
what is not theirs, what has passed already or what waits on no deadline."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

from tests.api.conftest import Actor, flight, hotel
from tests.api.test_changes import context_for, departure_day, manual_flight
from tests.api.test_foundation import problem
from tests.api.test_rescheduling import mock
from tests.waits import eventually

BOUND_S = 60
FLOW_PATHS = {"CAN": "cancellations", "CF": "changes", "RS": "reschedulings"}


async def flow(http: TestClient, who: Actor, code: str) -> dict[str, Any]:
    response = await http.get(f"/v1/{FLOW_PATHS[code.split('-')[0]]}/{code}", headers=who.headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def flow_when(http: TestClient, who: Actor, code: str, done: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The flow once ``done`` says so, read again until then (within a bound)."""
    async def read() -> dict[str, Any] | None:
        found = await flow(http, who, code)
        return found if done(found) else None
    return await eventually(read, BOUND_S, f"{code} as expected")


async def advance(http: TestClient, who: Actor, code: str) -> Any:
    return await http.post(f"/v1/sandbox/flows/{code}/advance", headers=who.headers)


async def advanced(http: TestClient, who: Actor, code: str, deadline: str) -> dict[str, Any]:
    response = await advance(http, who, code)
    assert response.status == 202, await response.text()
    answer = await response.json()
    assert answer["code"] == code and answer["deadline"] == deadline and answer["due_at"]
    return answer


async def manual_cancellation(http: TestClient, who: Actor, book) -> str:  # type: ignore[no-untyped-def]
    product_id = (await book(who, hotel()))["products"][0]["product_id"]
    quote = await (await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={}, headers=who.headers)).json()
    started = await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                              headers=who.headers)
    assert started.status == 202, await started.text()
    return str((await started.json())["code"])


async def test_agent_window_advanced_expires_the_cancellation(http: TestClient, partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    code = await manual_cancellation(http, partner, book)

    # At once, as the partner has the code: the deadline is the flow's from its start.
    answer = await advanced(http, partner, code, "agent_quote_window")

    expired = await flow_when(http, partner, code, lambda f: f["status"] != "awaiting_agent_quote")
    assert expired["status"] == "expired"
    assert expired["quote_deadline"] == answer["due_at"] and expired["history"][-1]["at"] < expired["quote_deadline"]
    await problem(await advance(http, partner, code), 409, "no_pending_deadline")  # finished: nothing left to pass


async def test_sandbox_agent_quotes_then_the_decision_window_advanced_is_no_response(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, book
) -> None:
    code = await manual_cancellation(http, partner, book)

    quoted = await http.post(f"/v1/sandbox/cancellations/{code}/agent-quote", headers=partner.headers,
                             json={"penalty": {"amount": "100", "currency": "EUR"}, "note": "late cancellation"})

    assert quoted.status == 200, await quoted.text()
    info = await quoted.json()
    assert info["status"] == "awaiting_partner_decision" and info["agent_note"] == "late cancellation"
    assert info["penalty"] == {"amount": "100.00", "currency": "EUR"} and info["refund"] == {"amount": "500.00", "currency": "EUR"}
    events = (await (await http.get("/v1/events", headers=partner.headers)).json())["items"]
    assert [e["type"] for e in events if e["data"]["code"] == code] == ["cancellation.quoted"]

    await advanced(http, partner, code, "decision_window")
    # Twice: the deadline has passed already (whether or not the flow has recorded where it led).
    await problem(await advance(http, partner, code), 409, "no_pending_deadline")
    final = await flow_when(http, partner, code, lambda f: f["status"] != "awaiting_partner_decision")
    assert final["status"] == "no_response"
    product = (await (await http.get(f"/v1/reservations/{info['reservation_id']}", headers=partner.headers)).json())["products"][0]
    assert product["status"] == "confirmed"  # the fee was not accepted


async def test_sandbox_agent_quote_checks_the_penalty_and_the_path(http: TestClient, partner: Actor, other_partner: Actor,  # type: ignore[no-untyped-def]
                                                                   book) -> None:
    code = await manual_cancellation(http, partner, book)
    path = f"/v1/sandbox/cancellations/{code}/agent-quote"

    over = await http.post(path, headers=partner.headers, json={"penalty": {"amount": "600.01", "currency": "EUR"}})
    assert (await problem(over, 422, "invalid_quote"))["errors"][0]["field"] == "penalty.amount"
    other = await http.post(path, headers=partner.headers, json={"penalty": {"amount": "1", "currency": "USD"}})
    assert (await problem(other, 422, "invalid_quote"))["errors"][0]["field"] == "penalty.currency"
    await problem(await http.post(path, headers=other_partner.headers, json={"penalty": {"amount": "1", "currency": "EUR"}}),
                  404, "not_found")
    assert (await http.post(path, headers=partner.headers, json={"penalty": {"amount": "0", "currency": "EUR"}})).status == 200
    # Quoted once: the flow awaits the partner's decision now, not a quote.
    await problem(await http.post(path, headers=partner.headers, json={"penalty": {"amount": "5", "currency": "EUR"}}),
                  409, "not_awaiting_quote")

    automatic = (await book(partner, flight()))["products"][0]["product_id"]
    quote = await (await http.post(f"/v1/products/{automatic}/cancellation-quotes", json={}, headers=partner.headers)).json()
    done = await (await http.post(f"/v1/products/{automatic}/cancellations", json={"quote_id": quote["quote_id"]},
                                  headers=partner.headers)).json()
    await problem(await http.post(f"/v1/sandbox/cancellations/{done['code']}/agent-quote", headers=partner.headers,
                                  json={"penalty": {"amount": "5", "currency": "EUR"}}), 409, "not_awaiting_quote")


async def test_rescheduling_window_advanced_applies_the_default(http: TestClient, partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    product_id = (await book(partner, flight()))["products"][0]["product_id"]
    code = await mock(http, partner, product_id, delay_minutes=90)
    offered = await flow_when(http, partner, code, lambda f: f["status"] == "awaiting_partner_action")

    await advanced(http, partner, code, "rescheduling_window")

    final = await flow_when(http, partner, code, lambda f: f["status"] != "awaiting_partner_action")
    assert final["status"] == "auto_accepted"
    [default] = [a for a in offered["alternatives"] if a["default"]]
    assert final["alternative_id"] == default["alternative_id"] == "proposed"
    assert final["history"][-1]["at"] < offered["decision_deadline"]


async def test_change_context_validity_advanced_expires_the_change(http: TestClient, partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    product = flight()
    product_id = (await book(partner, product))["products"][0]["product_id"]
    offered = await (await http.post(f"/v1/products/{product_id}/change-alternatives", headers=partner.headers,
                                     json={"departure_date": departure_day(product)})).json()
    context = await context_for(http, partner, offered["items"][0]["itinerary_id"])

    await advanced(http, partner, context["code"], "change_context_ttl")

    final = await flow_when(http, partner, context["code"], lambda f: f["status"] != "awaiting_booking")
    assert final["status"] == "expired" and final["history"][-1]["at"] < final["expires_at"]
    booking = await http.post(f"/v1/change-contexts/{context['context_id']}/book", json={}, headers=partner.headers)
    await problem(booking, 410, "context_expired")


async def test_checkout_validity_advanced_expires_the_change(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, agent: Actor, book
) -> None:
    product_id = (await book(partner, manual_flight()))["products"][0]["product_id"]
    issued = await http.post(f"/v1/agent/products/{product_id}/checkouts", headers=agent.headers,
                             json={"description": "by phone", "amount": {"amount": "75", "currency": "EUR"}})
    assert issued.status == 201, await issued.text()
    checkout = await issued.json()

    await advanced(http, partner, checkout["code"], "checkout_ttl")

    final = await flow_when(http, partner, checkout["code"], lambda f: f["status"] != "checkout_issued")
    assert final["status"] == "expired"
    prebook = await http.post(f"/v1/checkouts/{checkout['checkout_id']}/prebook", headers=partner.headers,
                              json={"transaction_id": final["reservation_id"]})
    await problem(prebook, 410, "checkout_expired")


async def test_only_the_partners_own_flow_waiting_on_a_deadline_is_advanced(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, other_partner: Actor, agent: Actor, book
) -> None:
    code = await manual_cancellation(http, partner, book)

    await problem(await advance(http, other_partner, code), 404, "not_found")
    await problem(await advance(http, partner, "CAN-NOSUCH00"), 404, "not_found")
    await problem(await advance(http, partner, "not-a-code"), 404, "not_found")
    await problem(await advance(http, agent, code), 403, "forbidden")
    assert (await flow(http, partner, code))["status"] == "awaiting_agent_quote"  # untouched by the refusals

    # A special request waits on the airline, never on a deadline of the partner's.
    product_id = (await book(partner, flight()))["products"][0]["product_id"]
    request = await (await http.post(f"/v1/products/{product_id}/special-requests", headers=partner.headers,
                                     json={"code": "WCHR", "traveller_id": "T1"})).json()
    await problem(await advance(http, partner, request["request_id"]), 409, "no_pending_deadline")
