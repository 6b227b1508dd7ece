"""Cancellation over HTTP (docs/api.md#cancellations) on the real dev server, with the worker running the flows."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from aiohttp.test_utils import TestClient

from store.quotes import Quote
from store.repositories import Store
from tests.api.conftest import Actor, feed_of, flight, hotel
from tests.api.test_foundation import problem


async def quote_for(http: TestClient, who: Actor, product_id: str) -> dict:
    response = await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={}, headers=who.headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def test_automatic_cancellation_applies_the_tier_and_is_final(http: TestClient, partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, flight(days_ahead=3))  # inside 168 h, outside 24 h: 50 %
    product_id = reservation["products"][0]["product_id"]
    allowance = await http.get(f"/v1/products/{product_id}/cancellation-allowance", headers=partner.headers)
    assert await allowance.json() == {"product_id": product_id, "allowance": "allowed", "reasons": []}

    quote = await quote_for(http, partner, product_id)
    assert quote["resolution"] == "automatic"
    assert quote["paid"] == {"amount": "240.00", "currency": "EUR"}
    assert quote["penalty"] == {"amount": "120.00", "currency": "EUR"}
    assert quote["refund"] == {"amount": "120.00", "currency": "EUR"}

    response = await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                               headers=partner.headers)
    assert response.status == 200, await response.text()
    done = await response.json()
    assert done["status"] == "cancelled" and done["code"].startswith("CAN-")
    assert done["penalty"] == quote["penalty"] and done["refund"] == quote["refund"]

    info = await (await http.get(f"/v1/cancellations/{done['code']}", headers=partner.headers)).json()
    assert info["status"] == "cancelled" and [h["event"] for h in info["history"]][-1] == "cancelled"
    view = await (await http.get(f"/v1/reservations/{reservation['reservation_id']}", headers=partner.headers)).json()
    assert view["products"][0]["status"] == "cancelled"
    assert [(f["code"], f["kind"], f["status"]) for f in view["flows"]] == [(done["code"], "cancellation", "cancelled")]

    again = await http.get(f"/v1/products/{product_id}/cancellation-allowance", headers=partner.headers)
    assert (await again.json())["reasons"] == ["already_cancelled"]
    await problem(await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={}, headers=partner.headers),
                  409, "cancellation_disallowed")

    events = await feed_of(http, partner.headers, 2)
    # The refund the cancellation posted is reported too (docs/settlement.md#the-refunds-ledger).
    assert [e["type"] for e in events["items"]] == ["cancellation.completed", "refund.posted"]
    assert events["items"][0]["data"]["code"] == done["code"]
    assert events["items"][0]["delivery"] == {"status": "pending", "attempts": 0}


async def test_allowance_reasons(http: TestClient, partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, flight(days_ahead=-1), flight(mode="none"), hotel(), status="pending")
    ids = [p["product_id"] for p in reservation["products"]]
    answers = [await (await http.get(f"/v1/products/{i}/cancellation-allowance", headers=partner.headers)).json()
               for i in ids]
    assert answers[0]["allowance"] == "disallowed"
    assert answers[0]["reasons"] == ["usage_dates_passed", "reservation_pending"]
    assert answers[1]["reasons"] == ["reservation_pending", "not_cancellable"]
    assert answers[2]["reasons"] == ["reservation_pending"]


async def test_manual_cancellation_agent_quotes_partner_accepts(http: TestClient, partner: Actor, agent: Actor,
                                                                other_partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, hotel())
    product_id = reservation["products"][0]["product_id"]
    allowance = await (await http.get(f"/v1/products/{product_id}/cancellation-allowance",
                                      headers=partner.headers)).json()
    assert allowance["allowance"] == "unknown"
    quote = await quote_for(http, partner, product_id)
    assert quote["resolution"] == "manual" and quote["penalty"] is None and quote["refund"] is None
    started = await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                              headers=partner.headers)
    assert started.status == 202
    code = (await started.json())["code"]
    assert (await started.json())["status"] == "awaiting_agent_quote"

    # While it runs, the product is locked: the allowance says so and a second cancel is refused.
    busy = await (await http.get(f"/v1/products/{product_id}/cancellation-allowance", headers=partner.headers)).json()
    assert busy["reasons"] == ["flow_in_progress"]

    queue = await (await http.get("/v1/agent/cancellations?status=awaiting_agent_quote&limit=200",
                                  headers=agent.headers)).json()
    assert code in [item["code"] for item in queue["items"]]
    await problem(await http.get("/v1/agent/cancellations", headers=partner.headers), 403, "forbidden")

    await problem(await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=partner.headers),
                  409, "not_awaiting_decision")
    wrong = await http.post(f"/v1/agent/cancellations/{code}/quote", headers=agent.headers, json={
        "penalty": {"amount": "100.00", "currency": "EUR"}, "refund": {"amount": "400.00", "currency": "EUR"}})
    errors = (await problem(wrong, 422, "invalid_quote"))["errors"]
    assert errors[0]["field"] == "refund.amount"
    wrong_currency = await http.post(f"/v1/agent/cancellations/{code}/quote", headers=agent.headers, json={
        "penalty": {"amount": "100.00", "currency": "USD"}, "refund": {"amount": "500.00", "currency": "EUR"}})
    await problem(wrong_currency, 422, "invalid_quote")

    quoted = await http.post(f"/v1/agent/cancellations/{code}/quote", headers=agent.headers, json={
        "penalty": {"amount": "100.00", "currency": "EUR"}, "refund": {"amount": "500.00", "currency": "EUR"},
        "note": "late cancellation fee"})
    assert quoted.status == 200, await quoted.text()
    info = await quoted.json()
    assert info["status"] == "awaiting_partner_decision" and info["agent_note"] == "late cancellation fee"
    assert info["decision_deadline"]
    await problem(await http.post(f"/v1/agent/cancellations/{code}/quote", headers=agent.headers, json={
        "penalty": {"amount": "100.00", "currency": "EUR"}, "refund": {"amount": "500.00", "currency": "EUR"}}),
        409, "not_awaiting_quote")

    await problem(await http.get(f"/v1/cancellations/{code}", headers=other_partner.headers), 404, "not_found")
    await problem(await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"},
                                   headers=other_partner.headers), 404, "not_found")

    accepted = await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=partner.headers)
    assert accepted.status == 200, await accepted.text()
    assert (await accepted.json())["status"] == "cancelled"
    repeat = await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=partner.headers)
    assert repeat.status == 200 and (await repeat.json())["status"] == "cancelled"
    await problem(await http.patch(f"/v1/cancellations/{code}", json={"decision": "reject"}, headers=partner.headers),
                  409, "not_awaiting_decision")
    events = await feed_of(http, partner.headers, 3)
    assert [e["type"] for e in events["items"]] == ["cancellation.quoted", "cancellation.completed", "refund.posted"]
    after = await feed_of(http, partner.headers, 2, f"?after={events['items'][0]['id']}")
    assert [e["type"] for e in after["items"]] == ["cancellation.completed", "refund.posted"]


async def test_manual_cancellation_rejected_keeps_the_product(http: TestClient, partner: Actor, agent: Actor,
                                                              book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, hotel())
    product_id = reservation["products"][0]["product_id"]
    quote = await quote_for(http, partner, product_id)
    code = (await (await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                                   headers=partner.headers)).json())["code"]
    await http.post(f"/v1/agent/cancellations/{code}/quote", headers=agent.headers, json={
        "penalty": {"amount": "600.00", "currency": "EUR"}, "refund": {"amount": "0.00", "currency": "EUR"}})
    rejected = await http.patch(f"/v1/cancellations/{code}", json={"decision": "reject"}, headers=partner.headers)
    assert (await rejected.json())["status"] == "rejected"
    view = await (await http.get(f"/v1/reservations/{reservation['reservation_id']}", headers=partner.headers)).json()
    assert view["products"][0]["status"] == "confirmed"
    # The lock is released: a new quote may be asked for.
    assert (await quote_for(http, partner, product_id))["resolution"] == "manual"


async def test_quote_rules(http: TestClient, partner: Actor, other_partner: Actor, store: Store, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, flight())
    product_id = reservation["products"][0]["product_id"]
    first = await quote_for(http, partner, product_id)
    second = await quote_for(http, partner, product_id)
    path = f"/v1/products/{product_id}/cancellations"
    await problem(await http.post(path, json={"quote_id": first["quote_id"]}, headers=partner.headers),
                  409, "quote_superseded")
    await problem(await http.post(path, json={"quote_id": "qt_unknown"}, headers=partner.headers), 404, "not_found")
    await problem(await http.post(path, json={"quote_id": second["quote_id"]}, headers=other_partner.headers),
                  404, "not_found")
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    await store.quotes.save(Quote(
        quote_id="qt_expired_" + product_id, product_id=product_id, partner_id=partner.id, resolution="automatic",
        paid=first["paid"], penalty=first["penalty"], refund=first["refund"], created_at=past, expires_at=past))
    await problem(await http.post(path, json={"quote_id": "qt_expired_" + product_id}, headers=partner.headers),
                  410, "quote_expired")
    await problem(await http.post(path, json={}, headers=partner.headers), 422, "validation_failed")


async def test_six_simultaneous_cancels_one_wins(http: TestClient, partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, hotel())
    product_id = reservation["products"][0]["product_id"]
    quote = await quote_for(http, partner, product_id)
    responses = await asyncio.gather(*[
        http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                  headers=partner.headers)
        for _ in range(6)
    ])
    statuses = sorted(r.status for r in responses)
    assert statuses == [202, 409, 409, 409, 409, 409]
    codes = [(await r.json())["code"] for r in responses]
    assert codes.count("flow_in_progress") == 5
    view = await (await http.get(f"/v1/reservations/{reservation['reservation_id']}", headers=partner.headers)).json()
    assert len(view["flows"]) == 1
