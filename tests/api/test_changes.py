"""Changes over HTTP (docs/api.md#changes) on the real dev server, with the worker running the flows: the automatic
path (alternatives → context → book), the agent's checkout path, and every refusal."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from temporalio.testing import WorkflowEnvironment

from domain.change_flow import ChangeInfo
from store.change_offers import ChangeOffer
from store.repositories import Store
from tests.api.conftest import Actor, feed_of, flight, hotel, new_partner
from tests.api.test_foundation import problem
from tests.workflows.receiver import WebhookReceiver
from workflows.trigger_delivery import trigger_workflow_id

BOUND_S = 60


SHORT_CONTEXT = {"AFTERSALES_CHANGE_CONTEXT_TTL": "1s"}
SHORT_CHECKOUT = {"AFTERSALES_CHECKOUT_TTL": "1s"}


def manual_flight(**options: Any) -> dict[str, Any]:
    product = flight(**options)
    product["change_policy"] = {"changeable": True, "manual": True}
    return product


def changeable_hotel() -> dict[str, Any]:
    product = hotel()
    product["change_policy"] = {"changeable": True, "change_fee": {"amount": "20.00", "currency": "EUR"}}
    return product


def round_trip() -> dict[str, Any]:
    product = flight()
    out = product["segments"][0]
    back = datetime.fromisoformat(out["departure"]) + timedelta(days=7)
    product["segments"].append({"origin": "CDG", "destination": "MAD", "departure": back.isoformat(),
                                "arrival": (back + timedelta(hours=2)).isoformat(), "flight_number": "ZZ102"})
    return product


def departure_day(product: dict[str, Any], days_later: int = 1) -> str:
    return (datetime.fromisoformat(product["segments"][0]["departure"]).date() + timedelta(days=days_later)).isoformat()


async def alternatives(http: TestClient, who: Actor, product_id: str, **dates: str) -> Any:
    return await http.post(f"/v1/products/{product_id}/change-alternatives", json=dates, headers=who.headers)


async def allowance(http: TestClient, who: Actor, product_id: str) -> dict[str, Any]:
    response = await http.get(f"/v1/products/{product_id}/change-allowance", headers=who.headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def context_for(http: TestClient, who: Actor, itinerary_id: str) -> dict[str, Any]:
    response = await http.post("/v1/change-contexts", json={"itinerary_id": itinerary_id}, headers=who.headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def finished(temporal_env: WorkflowEnvironment, code: str) -> ChangeInfo:
    handle = temporal_env.client.get_workflow_handle(code, result_type=ChangeInfo)
    return await asyncio.wait_for(handle.result(), BOUND_S)


async def test_allowance_reasons_and_path(http: TestClient, partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    confirmed = await book(partner, flight(), manual_flight(), hotel(), flight(days_ahead=-1))
    auto, manual, fixed, flown = (p["product_id"] for p in confirmed["products"])
    assert await allowance(http, partner, auto) == {"product_id": auto, "allowed": True, "manual": False, "reasons": []}
    assert await allowance(http, partner, manual) == {"product_id": manual, "allowed": True, "manual": True,
                                                      "reasons": []}
    assert (await allowance(http, partner, fixed))["reasons"] == ["airline_restriction"]
    assert (await allowance(http, partner, flown))["reasons"] == ["usage_dates_passed"]

    pending = await book(partner, flight(), status="pending")
    assert (await allowance(http, partner, pending["products"][0]["product_id"]))["reasons"] == ["reservation_pending"]

    quote = await (await http.post(f"/v1/products/{auto}/cancellation-quotes", json={}, headers=partner.headers)).json()
    cancelled = await http.post(f"/v1/products/{auto}/cancellations", json={"quote_id": quote["quote_id"]},
                                headers=partner.headers)
    assert (await cancelled.json())["status"] == "cancelled"
    answer = await allowance(http, partner, auto)
    assert answer["allowed"] is False and answer["reasons"] == ["already_cancelled"]


async def test_automatic_change_alternatives_context_book(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, other_partner: Actor, book
) -> None:
    product = flight()
    reservation = await book(partner, product)
    reservation_id, product_id = reservation["reservation_id"], reservation["products"][0]["product_id"]
    day = departure_day(product)

    response = await alternatives(http, partner, product_id, departure_date=day)
    assert response.status == 200, await response.text()
    items = (await response.json())["items"]
    assert [item["segments"][0]["departure"] for item in items] == [
        f"{day}T07:00:00Z", f"{day}T13:00:00Z", f"{day}T19:00:00Z"]
    assert all(item["segments"][0]["origin"] == "MAD" and item["segments"][0]["destination"] == "CDG" for item in items)
    assert [item["fare_difference"]["amount"] for item in items] == ["-12.00", "24.00", "60.00"]
    assert {item["change_fee"]["amount"] for item in items} == {"30.00"}
    # A cheaper fare is not refunded: total_due = max(fare_difference, 0) + change_fee, never negative.
    assert [item["total_due"] for item in items] == [{"amount": a, "currency": "EUR"} for a in ("30.00", "54.00", "90.00")]
    assert [item["price"]["amount"] for item in items] == ["240.00", "264.00", "300.00"]
    chosen, other = items[1], items[0]

    await problem(await http.post("/v1/change-contexts", json={"itinerary_id": chosen["itinerary_id"]},
                                  headers=other_partner.headers), 404, "not_found")
    context = await context_for(http, partner, chosen["itinerary_id"])
    assert context["context_id"].startswith("CTX-") and context["code"].startswith("CF-")
    assert (context["product_id"], context["itinerary_id"]) == (product_id, chosen["itinerary_id"])
    assert context["total_due"] == {"amount": "54.00", "currency": "EUR"}
    code = context["code"]

    # The context holds the product's lock until it is booked or expires.
    assert (await allowance(http, partner, product_id))["reasons"] == ["flow_in_progress"]
    await problem(await alternatives(http, partner, product_id, departure_date=day), 409, "flow_in_progress")
    await problem(await http.post("/v1/change-contexts", json={"itinerary_id": other["itinerary_id"]},
                                  headers=partner.headers), 409, "flow_in_progress")
    view = await (await http.get(f"/v1/reservations/{reservation_id}", headers=partner.headers)).json()
    assert [(f["code"], f["kind"], f["status"]) for f in view["flows"]] == [(code, "change", "awaiting_booking")]

    path = f"/v1/change-contexts/{context['context_id']}/book"
    await problem(await http.post(path, json={}, headers=other_partner.headers), 404, "not_found")
    booked = await http.post(path, json={"invoice_hint": "PO-1234"}, headers=partner.headers)
    assert booked.status == 200, await booked.text()
    answer = await booked.json()
    assert (answer["code"], answer["status"]) == (code, "modified")
    assert answer["product"]["segments"] == chosen["segments"]
    assert answer["product"]["price"] == {"amount": "264.00", "currency": "EUR"}
    assert answer["product"]["start"] == datetime.fromisoformat(chosen["segments"][0]["departure"]).isoformat()
    again = await http.post(path, json={"invoice_hint": "PO-other"}, headers=partner.headers)
    assert again.status == 200 and await again.json() == answer

    info = await (await http.get(f"/v1/changes/{code}", headers=partner.headers)).json()
    assert info["status"] == "modified" and info["invoice_hint"] == "PO-1234"
    assert info["itinerary_id"] == chosen["itinerary_id"] and info["total_due"]["amount"] == "54.00"
    assert [h["event"] for h in info["history"]] == ["awaiting_booking", "modified"]
    await problem(await http.get(f"/v1/changes/{code}", headers=other_partner.headers), 404, "not_found")
    await problem(await http.get("/v1/changes/CF-00000000", headers=partner.headers), 404, "not_found")

    view = await (await http.get(f"/v1/reservations/{reservation_id}", headers=partner.headers)).json()
    assert [(f["code"], f["kind"], f["status"]) for f in view["flows"]] == [(code, "change", "modified")]
    assert view["products"][0]["segments"] == chosen["segments"]
    events = await feed_of(http, partner.headers, 1)
    assert [e["type"] for e in events["items"]] == ["change.completed"]
    assert events["items"][0]["data"]["code"] == code

    # The lock is released, and the other alternatives were priced against the old itinerary.
    assert await allowance(http, partner, product_id) == {"product_id": product_id, "allowed": True, "manual": False,
                                                          "reasons": []}
    await problem(await http.post("/v1/change-contexts", json={"itinerary_id": other["itinerary_id"]},
                                  headers=partner.headers), 409, "itinerary_superseded")


async def test_hotel_and_round_trip_alternatives(http: TestClient, partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    stay, trip = changeable_hotel(), round_trip()
    reservation = await book(partner, stay, trip)
    hotel_id, trip_id = (p["product_id"] for p in reservation["products"])
    check_in = date.fromisoformat(stay["check_in"]) + timedelta(days=1)

    longer = await alternatives(http, partner, hotel_id, check_in=check_in.isoformat(),
                                check_out=(check_in + timedelta(days=4)).isoformat())
    assert longer.status == 200, await longer.text()
    [item] = (await longer.json())["items"]
    assert (item["hotel"], item["check_in"]) == ("Hotel Lutetia", check_in.isoformat())
    assert (item["price"]["amount"], item["fare_difference"]["amount"], item["total_due"]["amount"]) == (
        "800.00", "200.00", "220.00")

    both = await alternatives(http, partner, trip_id, departure_date=departure_day(trip),
                              return_date=departure_day(trip, days_later=8))
    assert both.status == 200, await both.text()
    first = (await both.json())["items"][0]
    assert [s["departure"][:16] for s in first["segments"]] == [
        f"{departure_day(trip)}T07:00", f"{departure_day(trip, days_later=8)}T07:00"]


async def test_alternatives_refusals(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, other_partner: Actor, store: Store, book
) -> None:
    trip, stay = round_trip(), changeable_hotel()
    reservation = await book(partner, trip, stay, manual_flight(), hotel())
    trip_id, hotel_id, manual_id, fixed_id = (p["product_id"] for p in reservation["products"])
    yesterday = (datetime.now(timezone.utc) - timedelta(days=1)).date().isoformat()

    await problem(await alternatives(http, partner, trip_id, departure_date=yesterday), 422, "date_incompatible")
    await problem(await alternatives(http, partner, trip_id, departure_date=departure_day(trip, 3),
                                     return_date=departure_day(trip, 2)), 422, "date_incompatible")
    await problem(await alternatives(http, partner, hotel_id, check_in=stay["check_out"], check_out=stay["check_in"]),
                  422, "date_incompatible")
    missing = await problem(await alternatives(http, partner, trip_id, return_date=departure_day(trip)),
                            422, "validation_failed")
    assert missing["errors"][0]["field"] == "departure_date"
    await problem(await alternatives(http, partner, trip_id, departure_date="tomorrow"), 422, "validation_failed")
    await problem(await alternatives(http, partner, fixed_id, departure_date=departure_day(trip)),
                  409, "change_disallowed")
    await problem(await alternatives(http, partner, manual_id, departure_date=departure_day(trip)),
                  409, "manual_change")
    await problem(await alternatives(http, other_partner, trip_id, departure_date=departure_day(trip)),
                  404, "not_found")

    await problem(await http.post("/v1/change-contexts", json={"itinerary_id": "itn_unknown"},
                                  headers=partner.headers), 404, "not_found")
    past = datetime.now(timezone.utc) - timedelta(minutes=1)
    details = (await store.reservations.product(trip_id)).details  # type: ignore[union-attr]
    await store.change_offers.save([ChangeOffer(
        itinerary_id=f"itn_expired_{trip_id}", product_id=trip_id, partner_id=partner.id, base_fingerprint="x",
        itinerary=details, fare_difference={"amount": "0.00", "currency": "EUR"},
        change_fee={"amount": "30.00", "currency": "EUR"}, total_due={"amount": "30.00", "currency": "EUR"},
        created_at=past, expires_at=past)])
    await problem(await http.post("/v1/change-contexts", json={"itinerary_id": f"itn_expired_{trip_id}"},
                                  headers=partner.headers), 410, "itinerary_expired")
    await problem(await http.post("/v1/change-contexts/CTX-00000000/book", json={}, headers=partner.headers),
                  404, "not_found")
    await problem(await http.post("/v1/change-contexts/nonsense/book", json={}, headers=partner.headers),
                  404, "not_found")


@pytest.mark.parametrize("settings_overrides", [SHORT_CONTEXT])
async def test_context_expires_after_its_ttl(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, temporal_env: WorkflowEnvironment, book
) -> None:
    product = flight()
    reservation = await book(partner, product)
    product_id = reservation["products"][0]["product_id"]
    items = (await (await alternatives(http, partner, product_id, departure_date=departure_day(product))).json())["items"]
    context = await context_for(http, partner, items[0]["itinerary_id"])

    assert (await finished(temporal_env, context["code"])).status == "expired"

    await problem(await http.post(f"/v1/change-contexts/{context['context_id']}/book", json={},
                                  headers=partner.headers), 410, "context_expired")
    assert (await allowance(http, partner, product_id))["allowed"] is True
    view = await (await http.get(f"/v1/reservations/{reservation['reservation_id']}", headers=partner.headers)).json()
    assert [(f["code"], f["status"]) for f in view["flows"]] == [(context["code"], "expired")]
    assert view["products"][0]["segments"] == reservation["products"][0]["segments"]


async def test_checkout_issued_prebooked_and_booked(  # type: ignore[no-untyped-def]
    http: TestClient, agent: Actor, other_partner: Actor, temporal_env: WorkflowEnvironment
) -> None:
    hooked = await new_partner(http, "Hooked")
    async with WebhookReceiver(secret=hooked.body["webhook_secret"]) as receiver:
        response = await http.put("/v1/partner/webhook", json={"url": receiver.url}, headers=hooked.headers)
        assert response.status == 200
        product = manual_flight()
        created = await http.post("/v1/sandbox/reservations", headers=hooked.headers, json={
            "travellers": [{"traveller_id": "T1", "name": "Ada Lovelace"}], "products": [product]})
        reservation = await created.json()
        reservation_id, product_id = reservation["reservation_id"], reservation["products"][0]["product_id"]
        moved = [{**product["segments"][0], "flight_number": "ZZ777",
                  "departure": departure_day(product) + "T10:00:00+00:00",
                  "arrival": departure_day(product) + "T12:05:00+00:00"}]

        issued = await http.post(f"/v1/agent/products/{product_id}/checkouts", headers=agent.headers, json={
            "description": "moved to the next day by phone", "amount": {"amount": "75", "currency": "EUR"},
            "segments": moved})
        assert issued.status == 201, await issued.text()
        checkout = await issued.json()
        assert checkout["checkout_id"].startswith("CHK-") and checkout["expires_at"]

        # The partner learns the checkout id from the trigger, signed.
        await receiver.until(lambda: receiver.received, BOUND_S)
        [received] = receiver.received
        feed = await (await http.get("/v1/events", headers=hooked.headers)).json()
        event = feed["items"][0]
        assert event["type"] == "change.checkout_issued"
        outcome = await asyncio.wait_for(
            temporal_env.client.get_workflow_handle(trigger_workflow_id(event["id"])).result(), BOUND_S)
        assert outcome == "delivered"
        assert received.signed and received.body["id"] == event["id"]
        assert received.body["data"]["checkout_id"] == checkout["checkout_id"]
        assert received.body["data"]["total_due"] == {"amount": "75.00", "currency": "EUR"}

    prebook_path = f"/v1/checkouts/{checkout['checkout_id']}/prebook"
    await problem(await http.post(prebook_path, json={"transaction_id": reservation_id},
                                  headers=other_partner.headers), 404, "not_found")
    context_path = "/v1/checkout-contexts/" + checkout["checkout_id"].replace("CHK-", "CCX-") + "/book"
    await problem(await http.post(context_path, json={"payment_method": "card"}, headers=hooked.headers),
                  409, "not_prebooked")
    wrong = await problem(await http.post(prebook_path, json={"transaction_id": "RES-OTHER"}, headers=hooked.headers),
                          422, "validation_failed")
    assert wrong["errors"][0]["field"] == "transaction_id"

    prebooked = await http.post(prebook_path, json={"transaction_id": reservation_id}, headers=hooked.headers)
    assert prebooked.status == 201, await prebooked.text()
    context = await prebooked.json()
    assert context["checkout_context_id"].startswith("CCX-")
    assert context["amount"] == {"amount": "75.00", "currency": "EUR"}
    assert "card" in context["payment_methods"] and context["expires_at"] == checkout["expires_at"]
    repeat = await http.post(prebook_path, json={"transaction_id": reservation_id}, headers=hooked.headers)
    assert repeat.status == 201 and await repeat.json() == context

    book_path = f"/v1/checkout-contexts/{context['checkout_context_id']}/book"
    await problem(await http.post(book_path, json={"payment_method": "card"}, headers=other_partner.headers),
                  404, "not_found")
    unknown = await problem(await http.post(book_path, json={"payment_method": "bitcoin"}, headers=hooked.headers),
                            422, "validation_failed")
    assert unknown["errors"][0]["field"] == "payment_method"
    booked = await http.post(book_path, json={"payment_method": "card"}, headers=hooked.headers)
    assert booked.status == 200, await booked.text()
    answer = await booked.json()
    assert (answer["code"], answer["status"]) == (checkout["code"], "modified")
    assert answer["product"]["segments"][0]["flight_number"] == "ZZ777"
    again = await http.post(book_path, json={"payment_method": "card"}, headers=hooked.headers)
    assert again.status == 200 and await again.json() == answer

    info = await (await http.get(f"/v1/changes/{checkout['code']}", headers=agent.headers)).json()
    assert info["resolution"] == "manual" and info["payment_method"] == "card"
    assert [h["event"] for h in info["history"]] == ["checkout_issued", "checkout_prebooked", "modified"]
    feed = await feed_of(http, hooked.headers, 2)
    assert [e["type"] for e in feed["items"]] == ["change.checkout_issued", "change.completed"]
    view = await (await http.get(f"/v1/reservations/{reservation_id}", headers=hooked.headers)).json()
    assert [(f["code"], f["kind"], f["status"]) for f in view["flows"]] == [(checkout["code"], "change", "modified")]


async def test_checkout_refusals(http: TestClient, partner: Actor, agent: Actor, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, manual_flight(), hotel(), changeable_hotel())
    flight_id, fixed_id, hotel_id = (p["product_id"] for p in reservation["products"])
    path = f"/v1/agent/products/{flight_id}/checkouts"
    body = {"description": "fee by phone", "amount": {"amount": "75.00", "currency": "EUR"}}

    await problem(await http.post(path, json=body, headers=partner.headers), 403, "forbidden")
    wrong = await problem(await http.post(path, headers=agent.headers, json={
        **body, "amount": {"amount": "75.00", "currency": "USD"}}), 422, "validation_failed")
    assert wrong["errors"][0]["field"] == "amount.currency"
    negative = await problem(await http.post(path, headers=agent.headers, json={
        **body, "amount": {"amount": "-1.00", "currency": "EUR"}}), 422, "validation_failed")
    assert negative["errors"][0]["field"] == "amount.amount"
    await problem(await http.post(path, headers=agent.headers, json={**body, "amount": 75}), 422, "validation_failed")
    segments = await problem(await http.post(f"/v1/agent/products/{hotel_id}/checkouts", headers=agent.headers, json={
        **body, "segments": [{"origin": "MAD", "destination": "CDG", "departure": "2030-01-01T08:00:00+00:00",
                              "arrival": "2030-01-01T10:00:00+00:00", "flight_number": "ZZ1"}]}),
        422, "validation_failed")
    assert segments["errors"][0]["field"] == "segments"
    await problem(await http.post(f"/v1/agent/products/{fixed_id}/checkouts", json=body, headers=agent.headers),
                  409, "change_disallowed")

    issued = await http.post(path, json=body, headers=agent.headers)
    assert issued.status == 201, await issued.text()
    await problem(await http.post(path, json=body, headers=agent.headers), 409, "flow_in_progress")
    await problem(await http.post("/v1/checkouts/CHK-00000000/prebook", json={"transaction_id": "x"},
                                  headers=partner.headers), 404, "not_found")


@pytest.mark.parametrize("settings_overrides", [SHORT_CHECKOUT])
async def test_checkout_expires_after_its_ttl(  # type: ignore[no-untyped-def]
    http: TestClient, partner: Actor, agent: Actor, temporal_env: WorkflowEnvironment, book
) -> None:
    reservation = await book(partner, manual_flight())
    product_id = reservation["products"][0]["product_id"]
    issued = await http.post(f"/v1/agent/products/{product_id}/checkouts", headers=agent.headers, json={
        "description": "fee by phone", "amount": {"amount": "75.00", "currency": "EUR"}})
    checkout = await issued.json()

    assert (await finished(temporal_env, checkout["code"])).status == "expired"

    await problem(await http.post(f"/v1/checkouts/{checkout['checkout_id']}/prebook",
                                  json={"transaction_id": reservation["reservation_id"]}, headers=partner.headers),
                  410, "checkout_expired")
    feed = await feed_of(http, partner.headers, 2)
    assert [e["type"] for e in feed["items"]] == ["change.checkout_issued", "change.expired"]
    assert (await allowance(http, partner, product_id))["allowed"] is True
