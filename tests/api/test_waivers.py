"""Waivers over HTTP (docs/flows.md#waivers) on the real dev server and a real worker, on SQLite and
PostgreSQL: an agent grants one with a code, a partner asks for one, and the waiver with the penalty it
gave up shows on the flow, the fee position and the payments journal (JSON and CSV)."""

from __future__ import annotations

import csv
import io
from typing import Any

from aiohttp.test_utils import TestClient

from tests.api.conftest import Actor, flight
from tests.api.test_foundation import problem
from tests.api.test_involuntary import agent_quote, eur, quote, start

TIERS = [{"hours_before_start": 168, "penalty_percent": "50"}, {"hours_before_start": 24, "penalty_percent": "100"}]


def manual_with_tiers(days_ahead: float) -> dict[str, Any]:
    """A manual policy that still states its tiers: what a waiver gives up is measured against them."""
    product = flight(days_ahead=days_ahead, mode="manual")
    product["cancellation_policy"]["tiers"] = TIERS
    return product


async def csv_rows(http: TestClient, who: Actor, reservation_id: str) -> list[dict[str, str]]:
    response = await http.get(f"/v1/payments?reservation_id={reservation_id}", headers={**who.headers, "Accept": "text/csv"})
    assert response.status == 200 and response.content_type == "text/csv"
    return list(csv.DictReader(io.StringIO(await response.text())))


async def test_an_agent_grants_a_waiver_with_a_code(http: TestClient, partner: Actor, agent: Actor, book) -> None:  # type: ignore[no-untyped-def]
    booked = await book(partner, manual_with_tiers(days_ahead=3))
    product_id = booked["products"][0]["product_id"]
    code = (await start(http, partner, product_id, (await quote(http, partner, product_id))["quote_id"]))["code"]

    unknown = await problem(await agent_quote(http, agent, code, "20.00", waiver={"code": "BIRTHDAY"}), 422,
                            "validation_failed")
    assert [e["field"] for e in unknown["errors"]] == ["waiver.code"]
    quoted = await agent_quote(http, agent, code, "20.00", waiver={"code": "GOODWILL", "note": "loyal customer"})
    assert quoted.status == 200, await quoted.text()
    info = await quoted.json()
    assert (info["penalty"], info["involuntary"]) == (eur("20.00"), False)
    assert info["waiver"] == {"code": "GOODWILL", "note": "loyal customer", "granted_by": agent.id,
                              "penalty_waived": eur("100.00")}  # 50 % of 240 is 120; 20 charged

    decided = await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=partner.headers)
    assert decided.status == 200, await decided.text()
    assert (await decided.json())["waiver"]["code"] == "GOODWILL"
    fee = (await (await http.get(f"/v1/cancellations/{code}/positions", headers=partner.headers)).json())[
        "cancellation_fee_position"]
    assert (fee["amount"], fee["waiver_code"], fee["penalty_waived"]) == (eur("20.00"), "GOODWILL", eur("100.00"))

    journal = await (await http.get(f"/v1/payments?reservation_id={booked['reservation_id']}",
                                    headers=partner.headers)).json()
    assert [(p["category"], p["amount"]["amount"], p["waiver_code"]) for p in journal["items"]] == [
        ("fare", "240.00", None), ("refund", "-220.00", "GOODWILL")]
    rows = await csv_rows(http, partner, booked["reservation_id"])
    assert [(r["category"], r["waiver_code"], r["penalty_waived"]) for r in rows] == [
        ("fare", "", ""), ("refund", "GOODWILL", "100.00")]


async def test_a_partner_asks_for_a_waiver_and_an_agent_decides(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, agent: Actor, book,
) -> None:
    booked = await book(partner, flight(days_ahead=3))  # automatic: 50 % now
    product_id = booked["products"][0]["product_id"]
    bad = await problem(await http.post(f"/v1/products/{product_id}/cancellation-quotes", headers=partner.headers,
                                        json={"waiver_request": {"code": "NOPE"}}), 422, "validation_failed")
    assert [e["field"] for e in bad["errors"]] == ["waiver_request.code"]

    asked = await quote(http, partner, product_id, waiver_request={"code": "MEDICAL", "note": "hospitalised"})
    assert (asked["resolution"], asked["penalty"], asked["refund"]) == ("manual", None, None)
    assert asked["waiver_request"] == {"code": "MEDICAL", "note": "hospitalised"}
    started = await start(http, partner, product_id, asked["quote_id"])
    assert started["status"] == "awaiting_agent_quote"
    code = started["code"]

    queue = await (await http.get("/v1/agent/cancellations?status=awaiting_agent_quote", headers=agent.headers)).json()
    [shown] = [item for item in queue["items"] if item["code"] == code]
    assert shown["waiver_request"] == {"code": "MEDICAL", "note": "hospitalised"} and shown["waiver"] is None

    quoted = await agent_quote(http, agent, code, "0.00", waiver={"code": "MEDICAL", "note": "certificate seen"})
    assert quoted.status == 200, await quoted.text()
    decided = await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=partner.headers)
    final = await decided.json()
    assert (final["status"], final["penalty"], final["refund"]) == ("cancelled", eur("0.00"), eur("240.00"))
    assert final["waiver"]["penalty_waived"] == eur("120.00")
    assert final["waiver_request"] == {"code": "MEDICAL", "note": "hospitalised"}
    rows = await csv_rows(http, partner, booked["reservation_id"])
    assert [(r["category"], r["amount"], r["waiver_code"], r["penalty_waived"]) for r in rows] == [
        ("fare", "240.00", "", ""), ("refund", "-240.00", "MEDICAL", "120.00")]


async def test_a_quote_without_a_waiver_shows_none(http: TestClient, partner: Actor, agent: Actor, book) -> None:  # type: ignore[no-untyped-def]
    booked = await book(partner, flight(days_ahead=20, mode="manual"))
    product_id = booked["products"][0]["product_id"]
    code = (await start(http, partner, product_id, (await quote(http, partner, product_id))["quote_id"]))["code"]
    quoted = await agent_quote(http, agent, code, "40.00")
    body = await quoted.json()
    assert (body["waiver"], body["waiver_request"], body["involuntary"]) == (None, None, False)
    # Once quoted, a waiver cannot be added by quoting again.
    await problem(await agent_quote(http, agent, code, "40.00", waiver={"code": "OTHER"}), 409, "not_awaiting_quote")
