"""Involuntary cancellations over HTTP (docs/flows.md#involuntary-cancellations) on the real dev server and
a real worker, on SQLite and PostgreSQL: a quote after the airline changed the flight costs nothing, and a
schedule change arriving during a manual cancellation makes it involuntary at every stage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from random import randrange
from typing import Any

from aiohttp.test_utils import TestClient

from tests.api.conftest import ADMIN, Actor, flight
from tests.api.test_disruptions import book as book_flights
from tests.api.test_disruptions import fanned_out, flight_push, on_flight
from tests.api.test_foundation import problem
from tests.api.test_rescheduling import BOUND_S, Hooked, accept, hooked, mock  # noqa: F401 (the fixture)
from tests.api.test_supplier_intake import new_supplier, push
from tests.waits import eventually

EUR = "EUR"
ZERO = {"amount": "0.00", "currency": EUR}
PAID = {"amount": "240.00", "currency": EUR}


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": EUR}


async def until(http: TestClient, who: Actor, path: str, arrived: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """GET ``path`` until ``arrived`` holds for its body (bounded): what the flow recorded, not a sleep."""
    async def read() -> dict[str, Any] | None:
        response = await http.get(path, headers=who.headers)
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body if arrived(body) else None
    return await eventually(read, BOUND_S, f"{path} as expected")


async def quote(http: TestClient, who: Actor, product_id: str, **body: Any) -> dict[str, Any]:
    response = await http.post(f"/v1/products/{product_id}/cancellation-quotes", json=body, headers=who.headers)
    assert response.status == 201, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def start(http: TestClient, who: Actor, product_id: str, quote_id: str) -> dict[str, Any]:
    response = await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote_id},
                               headers=who.headers)
    assert response.status in (200, 202), await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def agent_quote(http: TestClient, agent: Actor, code: str, penalty: str, **extra: Any):  # type: ignore[no-untyped-def]
    refund = f"{240 - float(penalty):.2f}"
    return await http.post(f"/v1/agent/cancellations/{code}/quote", headers=agent.headers,
                           json={"penalty": eur(penalty), "refund": eur(refund), "note": "fare rules", **extra})


async def payments(http: TestClient, who: Actor, reservation_id: str) -> list[tuple[str, str]]:
    response = await http.get(f"/v1/payments?reservation_id={reservation_id}", headers=who.headers)
    assert response.status == 200
    return [(p["category"], p["amount"]["amount"]) for p in (await response.json())["items"]]


async def test_quote_after_the_airline_moved_the_flight_is_automatic_at_zero(  # type: ignore[no-untyped-def]
    http: TestClient, hooked: Hooked, book,  # noqa: F811
) -> None:
    partner, webhook = hooked.partner, hooked.webhook
    booked = await book(partner, flight(days_ahead=3), flight(days_ahead=3, mode="manual"))
    automatic_id, manual_id = (p["product_id"] for p in booked["products"])
    voluntary = await quote(http, partner, automatic_id)
    assert (voluntary["penalty"], voluntary["involuntary"], voluntary["waiver"]) == (eur("120.00"), False, None)

    for product_id in (automatic_id, manual_id):
        code = await mock(http, partner, product_id, delay_minutes=240)
        await webhook.event("rescheduling.detected", code)
        assert (await accept(http, partner, code, "proposed")).status == 200

    # The policy says 50 % (automatic) or an agent (manual): the airline's change says nothing.
    for product_id in (automatic_id, manual_id):
        given = await quote(http, partner, product_id)
        assert (given["resolution"], given["penalty"], given["refund"], given["involuntary"]) == \
            ("automatic", ZERO, PAID, True)
        assert given["waiver"]["code"] == "SCHEDULE_CHANGE" and given["waiver"]["note"] is None
    assert given["waiver"]["penalty_waived"] is None  # a manual policy states no penalty to give up
    # The refund procedure answers what a quote would.
    procedure = await (await http.get(f"/v1/reservations/{booked['reservation_id']}/refund-procedure",
                                      headers=partner.headers)).json()
    assert [(i["resolution"], i["penalty"], i["difference"]) for i in procedure["items"]] == \
        [("automatic", ZERO, PAID)] * 2
    # A waiver asked for on an involuntary cancellation changes nothing: it is free already.
    asked = await quote(http, partner, automatic_id, waiver_request={"code": "MEDICAL", "note": "broken leg"})
    assert (asked["resolution"], asked["penalty"], asked["waiver_request"]) == ("automatic", ZERO, None)
    assert asked["waiver"]["penalty_waived"] == eur("120.00")

    done = await start(http, partner, automatic_id, asked["quote_id"])
    assert (done["status"], done["penalty"], done["refund"]) == ("cancelled", ZERO, PAID)
    info = await (await http.get(f"/v1/cancellations/{done['code']}", headers=partner.headers)).json()
    assert info["involuntary"] is True and info["waiver"]["code"] == "SCHEDULE_CHANGE"
    completed = await webhook.event("cancellation.completed", done["code"])
    assert completed["data"]["involuntary"] is True
    assert ("refund", "-240.00") in await payments(http, partner, booked["reservation_id"])


async def test_change_awaiting_the_agent_allows_only_penalty_zero(  # type: ignore[no-untyped-def]
    http: TestClient, hooked: Hooked, agent: Actor, book,  # noqa: F811
) -> None:
    """The headline bug: the change waits behind a manual cancellation; the traveller pays nothing."""
    partner, webhook = hooked.partner, hooked.webhook
    booked = await book(partner, flight(days_ahead=20, mode="manual"))
    product_id = booked["products"][0]["product_id"]
    started = await start(http, partner, product_id, (await quote(http, partner, product_id))["quote_id"])
    code = started["code"]
    assert started["status"] == "awaiting_agent_quote"

    rescheduling = await mock(http, partner, product_id, delay_minutes=90)
    waiting = await until(http, partner, f"/v1/reschedulings/{rescheduling}", lambda b: b["status"] == "waiting_for_product")
    assert waiting["status"] == "waiting_for_product"
    shown = await until(http, agent, f"/v1/cancellations/{code}", lambda b: b["involuntary"])
    assert shown["status"] == "awaiting_agent_quote"
    queue = await (await http.get("/v1/agent/cancellations?status=awaiting_agent_quote", headers=agent.headers)).json()
    assert [(i["code"], i["involuntary"]) for i in queue["items"] if i["code"] == code] == [(code, True)]

    refused = await problem(await agent_quote(http, agent, code, "40.00"), 422, "involuntary_no_penalty")
    assert [e["field"] for e in refused["errors"]] == ["penalty.amount"]
    quoted = await agent_quote(http, agent, code, "0.00")
    assert quoted.status == 200, await quote_text(quoted)
    body = await quoted.json()
    assert (body["status"], body["penalty"], body["involuntary"]) == ("awaiting_partner_decision", ZERO, True)
    assert body["waiver"]["code"] == "SCHEDULE_CHANGE"
    event = await webhook.event("cancellation.quoted", code)
    assert event["data"]["involuntary"] is True

    decided = await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=partner.headers)
    assert decided.status == 200, await decided.text()
    assert ((await decided.json())["status"], (await decided.json())["penalty"]) == ("cancelled", ZERO)
    # The change had nothing left to act on; no penalty was taken from the traveller.
    await until(http, partner, f"/v1/reschedulings/{rescheduling}", lambda b: b["status"] == "obsolete")
    assert await payments(http, partner, booked["reservation_id"]) == [("fare", "240.00"), ("refund", "-240.00")]


async def quote_text(response) -> str:  # type: ignore[no-untyped-def]
    return str(await response.text())


async def test_change_awaiting_the_partner_requotes_at_zero(  # type: ignore[no-untyped-def]
    http: TestClient, hooked: Hooked, agent: Actor, book,  # noqa: F811
) -> None:
    partner, webhook = hooked.partner, hooked.webhook
    booked = await book(partner, flight(days_ahead=20, mode="manual"))
    product_id = booked["products"][0]["product_id"]
    code = (await start(http, partner, product_id, (await quote(http, partner, product_id))["quote_id"]))["code"]
    quoted = await agent_quote(http, agent, code, "100.00")
    assert quoted.status == 200
    first = await webhook.event("cancellation.quoted", code)
    assert (first["data"]["penalty"], first["data"]["involuntary"]) == (eur("100.00"), False)

    await mock(http, partner, product_id, kind="flight_cancelled")
    requoted = await until(http, partner, f"/v1/cancellations/{code}", lambda b: b["involuntary"])
    assert (requoted["status"], requoted["penalty"], requoted["refund"]) == ("awaiting_partner_decision", ZERO, PAID)
    assert requoted["decision_deadline"] == first["data"]["decision_deadline"]
    assert requoted["waiver"]["penalty_waived"] == eur("100.00")
    await webhook.until(lambda: sum(1 for r in webhook.received if r.body["type"] == "cancellation.quoted"
                                    and r.body["data"]["code"] == code) == 2, BOUND_S)
    # The agent's quote is past: quoting again is refused as before.
    await problem(await agent_quote(http, agent, code, "0.00"), 409, "not_awaiting_quote")

    decided = await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=partner.headers)
    assert decided.status == 200, await decided.text()
    final = await decided.json()
    assert (final["status"], final["penalty"], final["refund"]) == ("cancelled", ZERO, PAID)
    positions = await (await http.get(f"/v1/cancellations/{code}/positions", headers=partner.headers)).json()
    assert positions["cancellation_fee_position"]["amount"] == ZERO
    assert positions["cancellation_fee_position"]["waiver_code"] == "SCHEDULE_CHANGE"


async def test_a_disruption_makes_the_cancellations_on_its_flight_involuntary(  # type: ignore[no-untyped-def]
    http: TestClient, hooked: Hooked, agent: Actor, temporal_env,  # noqa: F811
) -> None:
    """A push naming a flight fans out in a workflow: each product's open cancellation is told too."""
    partner = hooked.partner
    number = f"ZZ{randrange(1000, 10000)}"
    departure = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=20)
    manual = on_flight(number, departure)
    manual["cancellation_policy"] = {"mode": "manual"}
    product_id, other_id = await book_flights(http, partner, manual, on_flight(number, departure))
    code = (await start(http, partner, product_id, (await quote(http, partner, product_id))["quote_id"]))["code"]

    supplier = await new_supplier(http, ADMIN, ["ZZ"])
    pushed = await push(http, supplier, flight_push(number, departure, f"dsr-{number}"))
    assert pushed.status == 202, await pushed.text()
    assert await fanned_out(temporal_env.client, (await pushed.json())["disruption_id"]) == 2

    shown = await until(http, agent, f"/v1/cancellations/{code}", lambda b: b["involuntary"])
    assert shown["status"] == "awaiting_agent_quote"
    await problem(await agent_quote(http, agent, code, "40.00"), 422, "involuntary_no_penalty")
    # The other product on the flight had no cancellation: its rescheduling offers its alternatives as before.
    flows = await (await http.get(f"/v1/flows?product_id={other_id}", headers=partner.headers)).json()
    assert [f["kind"] for f in flows["items"]] == ["rescheduling"]
