"""Credits over HTTP (docs/api.md#credits, docs/settlement.md#credits) on the real dev server, SQLite and
PostgreSQL: refunds taken as credits (automatic and manual cancellations, the rescheduling refund),
the credits API with its filters, pages and totals, paying changes and checkouts with a credit, every
refusal, partner isolation, and a credit expiring on its own."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from tests.api.conftest import ADMIN, Actor, flight, hotel, new_partner
from tests.api.test_foundation import problem
from tests.api.test_settlement import journal
from tests.waits import history_event
from workflows.credit_expiry import expiry_workflow_id

BOUND_S = 60
DAY = timedelta(days=1)


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


async def ok(response: Any, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def cancelled_to_credit(http: TestClient, who: Actor, product_id: str, **body: Any) -> dict[str, Any]:
    """Quote the product and cancel it, the refund going into a credit: the cancellation's answer."""
    quote = await ok(await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={}, headers=who.headers), 201)
    return await ok(await http.post(f"/v1/products/{product_id}/cancellations", headers=who.headers,
                                    json={"quote_id": quote["quote_id"], "refund_to": "credit", **body}))


async def credit_of(http: TestClient, who: Actor | dict[str, str], credit_id: str) -> dict[str, Any]:
    headers = who.headers if isinstance(who, Actor) else who
    return await ok(await http.get(f"/v1/credits/{credit_id}", headers=headers))


async def credits(http: TestClient, who: Actor | dict[str, str], **params: str) -> dict[str, Any]:
    headers = who.headers if isinstance(who, Actor) else who
    return await ok(await http.get(f"/v1/credits?{urlencode(params)}", headers=headers))


async def events(http: TestClient, who: Actor, event_type: str) -> list[dict[str, Any]]:
    found = await ok(await http.get("/v1/events?limit=200", headers=who.headers))
    return [e for e in found["items"] if e["type"] == event_type]


async def context_for(http: TestClient, who: Actor, book: Any) -> dict[str, Any]:
    """A change context of a new flight of ``who``: total_due 54.00 EUR (fare difference 24.00, fee 30.00)."""
    product = flight()
    booked = await book(who, product)
    product_id = booked["products"][0]["product_id"]
    day = (datetime.fromisoformat(product["segments"][0]["departure"]).date() + DAY).isoformat()
    items = (await ok(await http.post(f"/v1/products/{product_id}/change-alternatives", json={"departure_date": day},
                                      headers=who.headers)))["items"]
    context = await ok(await http.post("/v1/change-contexts", json={"itinerary_id": items[1]["itinerary_id"]},
                                       headers=who.headers), 201)
    assert context["total_due"] == eur("54.00")
    return {**context, "reservation_id": booked["reservation_id"]}


async def book_with(http: TestClient, who: Actor, context: dict[str, Any], credit_id: str) -> Any:
    return await http.post(f"/v1/change-contexts/{context['context_id']}/book", json={"credit_id": credit_id},
                           headers=who.headers)


async def test_a_cancellation_refunds_into_a_credit_the_partner_alone_sees(
    http: TestClient, partner: Actor, other_partner: Actor, agent: Actor, book: Any
) -> None:
    booked = await book(partner, flight())
    reservation_id, product_id = booked["reservation_id"], booked["products"][0]["product_id"]
    answer = await cancelled_to_credit(http, partner, product_id)
    assert (answer["status"], answer["refund"], answer["refund_to"]) == ("cancelled", eur("240.00"), "credit")
    credit_id = answer["credit_id"]

    credit = await credit_of(http, partner, credit_id)
    assert {k: credit[k] for k in ("credit_id", "partner_id", "reservation_id", "product_id", "flow_code", "traveller_ids",
                                   "amount", "remaining", "redeemed", "expired", "state")} == {
        "credit_id": credit_id, "partner_id": partner.id, "reservation_id": reservation_id, "product_id": product_id,
        "flow_code": answer["code"], "traveller_ids": ["T1"], "amount": eur("240.00"), "remaining": eur("240.00"),
        "redeemed": eur("0.00"), "expired": eur("0.00"), "state": "active"}
    created = datetime.fromisoformat(credit["created_at"])
    assert datetime.fromisoformat(credit["expires_at"]) == created + timedelta(days=365)
    assert credit["movements"] == [{"kind": "issued", "amount": eur("240.00"), "flow_code": answer["code"],
                                    "at": credit["created_at"]}]
    info = await ok(await http.get(f"/v1/cancellations/{answer['code']}", headers=partner.headers))
    assert (info["refund_to"], info["credit_id"]) == ("credit", credit_id)
    assert datetime.fromisoformat(info["credit_expires_at"]) == datetime.fromisoformat(credit["expires_at"])

    # No refund: no ledger refund, no refund entry; the partner paid the fare and holds the credit.
    assert (await ok(await http.get(f"/v1/refunds?flow_code={answer['code']}", headers=partner.headers)))["items"] == []
    assert [e["category"] for e in await journal(http, partner, reservation_id=reservation_id)] == ["fare"]
    [issued] = await events(http, partner, "credit.issued")
    assert issued["data"] == credit

    # Another partner: 404 and an empty list, never a hint; agents and the admin see it.
    await problem(await http.get(f"/v1/credits/{credit_id}", headers=other_partner.headers), 404, "not_found")
    assert (await credits(http, other_partner))["items"] == []
    assert (await credits(http, other_partner, partner_id=partner.id))["items"] == []
    assert (await credit_of(http, agent, credit_id))["credit_id"] == credit_id
    assert [c["credit_id"] for c in (await credits(http, ADMIN, partner_id=partner.id))["items"]] == [credit_id]
    await problem(await http.get("/v1/credits/crd_doesnotexist", headers=partner.headers), 404, "not_found")


async def test_a_credit_pays_changes_until_it_is_used(http: TestClient, partner: Actor, book: Any) -> None:
    credit_id = (await cancelled_to_credit(http, partner, (await book(partner, hotel(mode="automatic")))["products"][0]["product_id"]
                                           ))["credit_id"]
    assert (await credit_of(http, partner, credit_id))["amount"] == eur("600.00")

    # Changes at 54.00 each: eleven take 594.00 of the 600.00; the twelfth takes the 6.00 left.
    first = await context_for(http, partner, book)
    booked = await ok(await book_with(http, partner, first, credit_id))
    assert booked["status"] == "modified"
    assert booked["credit_payment"] == {"credit_id": credit_id, "paid": eur("54.00"), "due": eur("0.00"),
                                        "remaining": eur("546.00"), "state": "active"}
    entries = await journal(http, partner, reservation_id=first["reservation_id"])
    assert [(e["category"], e["amount"]["amount"], e["credit_id"]) for e in entries] == [
        ("fare", "240.00", None), ("fee", "30.00", None), ("fare_difference", "24.00", None),
        ("credit_redemption", "-54.00", credit_id)]
    # The journal still sums to the cash paid: the fare; the change was paid with the credit.
    assert sum(Decimal(e["amount"]["amount"]) for e in entries) == Decimal("240.00")
    change = await ok(await http.get(f"/v1/changes/{first['code']}", headers=partner.headers))
    assert change["credit_id"] == credit_id

    # The payments CSV shows the redemption, with its credit.
    response = await http.get(f"/v1/payments?{urlencode({'category': 'credit_redemption'})}",
                              headers={**partner.headers, "Accept": "text/csv"})
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [(r["flow_code"], r["amount"], r["currency"], r["credit_id"]) for r in rows] == [
        (first["code"], "-54.00", "EUR", credit_id)]

    # Spend it down: the last change is paid in part, the rest is due as usual.
    spent = Decimal("54.00")
    while spent + Decimal("54.00") <= Decimal("600.00"):
        await ok(await book_with(http, partner, await context_for(http, partner, book), credit_id))
        spent += Decimal("54.00")
    last = await ok(await book_with(http, partner, await context_for(http, partner, book), credit_id))
    assert last["credit_payment"] == {"credit_id": credit_id, "paid": eur("6.00"), "due": eur("48.00"),
                                      "remaining": eur("0.00"), "state": "used"}
    used = await credit_of(http, partner, credit_id)
    assert (used["state"], used["redeemed"], [m["kind"] for m in used["movements"]].count("redeemed")) == (
        "used", eur("600.00"), 12)
    assert len(await events(http, partner, "credit.redeemed")) == 12
    await problem(await book_with(http, partner, await context_for(http, partner, book), credit_id), 409, "credit_not_active")


async def test_paying_with_a_credit_is_refused_when_it_cannot_pay(
    http: TestClient, partner: Actor, other_partner: Actor, book: Any
) -> None:
    context = await context_for(http, partner, book)
    theirs = (await cancelled_to_credit(http, other_partner, (await book(other_partner, flight()))["products"][0]["product_id"]
                                        ))["credit_id"]
    await problem(await book_with(http, partner, context, theirs), 404, "not_found")
    await problem(await book_with(http, partner, context, "crd_doesnotexist"), 404, "not_found")
    francs = (await cancelled_to_credit(http, partner, (await book(partner, flight(currency="CHF")))["products"][0]["product_id"]
                                        ))["credit_id"]
    mismatch = await problem(await book_with(http, partner, context, francs), 422, "credit_currency_mismatch")
    assert "CHF" in mismatch["detail"]
    # The refusals left the change waiting: it is booked without a credit as usual.
    booked = await ok(await http.post(f"/v1/change-contexts/{context['context_id']}/book", json={}, headers=partner.headers))
    assert (booked["status"], booked["credit_payment"]) == ("modified", None)


async def test_bad_credit_fields_are_422(http: TestClient, partner: Actor, book: Any) -> None:
    product_id = (await book(partner, flight()))["products"][0]["product_id"]
    quote = await ok(await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={}, headers=partner.headers), 201)
    wrong = await problem(await http.post(f"/v1/products/{product_id}/cancellations", headers=partner.headers,
                                          json={"quote_id": quote["quote_id"], "refund_to": "voucher"}), 422, "validation_failed")
    assert wrong["errors"][0]["field"] == "refund_to"
    rejected = await problem(await http.patch("/v1/cancellations/CAN-00000000", headers=partner.headers,
                                              json={"decision": "reject", "refund_to": "credit"}), 422, "validation_failed")
    assert "refund_to goes with accept" in rejected["errors"][0]["message"]
    for body in ({"payment_method": "credit"}, {"payment_method": "card", "credit_id": "crd_x"}):
        await problem(await http.post("/v1/checkout-contexts/CCX-00000000/book", json=body, headers=partner.headers),
                      422, "validation_failed")
    await problem(await http.get("/v1/credits?state=spent", headers=partner.headers), 422, "validation_failed")
    await problem(await http.get("/v1/credits?currency=XYZ", headers=partner.headers), 422, "validation_failed")
    await problem(await http.get("/v1/credits?expires_before=tomorrow", headers=partner.headers), 422, "validation_failed")
    await problem(await http.get("/v1/credits?cursor=forged", headers=partner.headers), 422, "validation_failed")
    await problem(await http.get("/v1/credits/balances?cursor=forged", headers=partner.headers), 422, "validation_failed")


async def test_a_checkout_is_paid_with_a_credit(http: TestClient, partner: Actor, agent: Actor, book: Any) -> None:
    credit_id = (await cancelled_to_credit(http, partner, (await book(partner, flight()))["products"][0]["product_id"]))["credit_id"]
    manual = {**flight(), "change_policy": {"changeable": True, "manual": True}}
    booked = await book(partner, manual)
    checkout = await ok(await http.post(f"/v1/agent/products/{booked['products'][0]['product_id']}/checkouts",
                                        json={"description": "new dates", "amount": eur("300.00")}, headers=agent.headers), 201)
    context = await ok(await http.post(f"/v1/checkouts/{checkout['checkout_id']}/prebook",
                                       json={"transaction_id": booked["reservation_id"]}, headers=partner.headers), 201)
    paid = await ok(await http.post(f"/v1/checkout-contexts/{context['checkout_context_id']}/book",
                                    json={"payment_method": "credit", "credit_id": credit_id}, headers=partner.headers))
    assert paid["credit_payment"] == {"credit_id": credit_id, "paid": eur("240.00"), "due": eur("60.00"),
                                      "remaining": eur("0.00"), "state": "used"}
    entries = await journal(http, partner, reservation_id=booked["reservation_id"])
    assert [(e["category"], e["amount"]["amount"]) for e in entries] == [
        ("fare", "240.00"), ("fee", "300.00"), ("credit_redemption", "-240.00")]


async def test_a_manual_cancellation_and_a_rescheduling_refund_into_credits(
    http: TestClient, temporal_env: WorkflowEnvironment, partner: Actor, agent: Actor, book: Any
) -> None:
    product_id = (await book(partner, hotel()))["products"][0]["product_id"]
    quote = await ok(await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={}, headers=partner.headers), 201)
    code = (await ok(await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                                     headers=partner.headers), 202))["code"]
    await history_event(temporal_env.client.get_workflow_handle(code), EventType.EVENT_TYPE_TIMER_STARTED, BOUND_S)
    await ok(await http.post(f"/v1/agent/cancellations/{code}/quote", headers=agent.headers,
                             json={"penalty": eur("100.00"), "refund": eur("500.00"), "note": "fee"}))
    accepted = await ok(await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept", "refund_to": "credit"},
                                         headers=partner.headers))
    assert (accepted["status"], accepted["refund_to"]) == ("cancelled", "credit")
    assert (await credit_of(http, partner, accepted["credit_id"]))["amount"] == eur("500.00")

    flown = await book(partner, flight())
    await ok(await http.post("/v1/sandbox/rescheduling/mock", headers=partner.headers,
                             json={"product_id": flown["products"][0]["product_id"], "kind": "flight_cancelled"}), 202)
    view = await ok(await http.get(f"/v1/reservations/{flown['reservation_id']}", headers=partner.headers))
    [rescheduling] = [f["code"] for f in view["flows"] if f["kind"] == "rescheduling"]
    await history_event(temporal_env.client.get_workflow_handle(rescheduling), EventType.EVENT_TYPE_TIMER_STARTED, BOUND_S)
    refused = await problem(await http.post(f"/v1/reschedulings/{rescheduling}/accept", headers=partner.headers,
                                            json={"alternative_id": "rebook-1d", "refund_to": "credit"}), 422, "validation_failed")
    assert refused["errors"] == [{"field": "refund_to", "message": "credit goes only with the refund alternative"}]
    chosen = await ok(await http.post(f"/v1/reschedulings/{rescheduling}/accept", headers=partner.headers,
                                      json={"alternative_id": "refund", "refund_to": "credit"}))
    assert (chosen["status"], chosen["refund_to"]) == ("accepted", "credit")
    credit = await credit_of(http, partner, chosen["credit_id"])
    assert (credit["flow_code"], credit["amount"]) == (rescheduling, eur("240.00"))
    assert (await ok(await http.get(f"/v1/refunds?flow_code={rescheduling}", headers=partner.headers)))["items"] == []


async def test_the_same_cancellation_request_again_issues_one_credit(http: TestClient, partner: Actor, book: Any) -> None:
    product_id = (await book(partner, flight()))["products"][0]["product_id"]
    quote = await ok(await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={}, headers=partner.headers), 201)
    headers = {**partner.headers, "Idempotency-Key": "cancel-to-credit-1"}
    body = {"quote_id": quote["quote_id"], "refund_to": "credit"}
    answers = await asyncio.gather(*(http.post(f"/v1/products/{product_id}/cancellations", json=body, headers=headers)
                                     for _ in range(5)))
    codes = {(await a.json()).get("code") for a in answers if a.status == 200}
    assert len(codes) == 1
    assert len((await credits(http, partner))["items"]) == 1
    assert len(await events(http, partner, "credit.issued")) == 1


async def test_finance_filters_pages_and_totals_credits(
    http: TestClient, partner: Actor, agent: Actor, book: Any
) -> None:
    other = await new_partner(http, "Finance Travel")
    made = []
    for _ in range(3):
        booked = await book(partner, flight())
        made.append((booked["reservation_id"], await cancelled_to_credit(http, partner, booked["products"][0]["product_id"])))
    theirs = await cancelled_to_credit(http, other, (await book(other, flight(currency="CHF")))["products"][0]["product_id"])
    ids = [answer["credit_id"] for _, answer in made]

    # Pages of one, following the cursor, in the order they were issued.
    seen, cursor = [], None
    while True:
        page = await credits(http, partner, limit="1", **({"cursor": cursor} if cursor else {}))
        seen += [c["credit_id"] for c in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == ids
    first_page = await credits(http, partner, limit="1")
    await problem(await http.get(f"/v1/credits?{urlencode({'limit': '1', 'state': 'active', 'cursor': first_page['next']})}",
                                 headers=partner.headers), 422, "validation_failed")  # a cursor of other filters

    assert [c["credit_id"] for c in (await credits(http, partner, reservation_id=made[1][0]))["items"]] == [ids[1]]
    assert [c["credit_id"] for c in (await credits(http, partner, flow_code=made[2][1]["code"]))["items"]] == [ids[2]]
    assert (await credits(http, partner, state="expired"))["items"] == []
    later = (datetime.now(timezone.utc) + timedelta(days=366)).isoformat()
    assert len((await credits(http, partner, expires_before=later))["items"]) == 3
    assert (await credits(http, partner, expires_before=datetime.now(timezone.utc).isoformat()))["items"] == []
    assert [c["credit_id"] for c in (await credits(http, agent, currency="CHF", partner_id=other.id))["items"]] == [
        theirs["credit_id"]]
    assert (await credits(http, partner, currency="CHF"))["items"] == []

    # What is outstanding per partner and currency.
    mine = await ok(await http.get("/v1/credits/balances", headers=partner.headers))
    assert mine == {"items": [{"partner_id": partner.id, "currency": "EUR", "credits": 3, "issued": eur("720.00"),
                               "redeemed": eur("0.00"), "expired": eur("0.00"), "outstanding": eur("720.00")}], "next": None}
    everyone = await ok(await http.get(f"/v1/credits/balances?{urlencode({'partner_id': other.id})}", headers=ADMIN))
    assert [(b["currency"], b["outstanding"]) for b in everyone["items"]] == [("CHF", {"amount": "240.00", "currency": "CHF"})]
    paged = await ok(await http.get("/v1/credits/balances?limit=1", headers=agent.headers))
    assert len(paged["items"]) == 1 and paged["next"] is not None
    following = await ok(await http.get(f"/v1/credits/balances?{urlencode({'limit': '1', 'cursor': paged['next']})}",
                                        headers=agent.headers))
    assert following["items"][0] != paged["items"][0]


@pytest.mark.parametrize("settings_overrides", [{"AFTERSALES_CREDIT_VALIDITY": "3s"}])
async def test_a_credit_expires_on_its_own_once(
    http: TestClient, temporal_env: WorkflowEnvironment, partner: Actor, book: Any
) -> None:
    answer = await cancelled_to_credit(http, partner, (await book(partner, flight()))["products"][0]["product_id"])
    credit_id = answer["credit_id"]
    assert (await credit_of(http, partner, credit_id))["state"] == "active"
    # Its expiry workflow ends when it has recorded the expiry (within a bound, no sleeping).
    handle = temporal_env.client.get_workflow_handle(expiry_workflow_id(credit_id))
    assert await asyncio.wait_for(handle.result(), BOUND_S) == "expired"

    expired = await credit_of(http, partner, credit_id)
    assert (expired["state"], expired["remaining"], expired["expired"]) == ("expired", eur("0.00"), eur("240.00"))
    assert expired["movements"][-1] == {"kind": "expired", "amount": eur("240.00"), "flow_code": None,
                                        "at": expired["expires_at"]}
    [reported] = await events(http, partner, "credit.expired")
    assert reported["data"] == expired
    assert [c["credit_id"] for c in (await credits(http, partner, state="expired"))["items"]] == [credit_id]
    balance = (await ok(await http.get("/v1/credits/balances", headers=partner.headers)))["items"][0]
    assert (balance["expired"], balance["outstanding"]) == (eur("240.00"), eur("0.00"))  # breakage
    # Expiry moves no cash: the fare is what the partner paid.
    assert [e["category"] for e in await journal(http, partner, reservation_id=expired["reservation_id"])] == ["fare"]
    await problem(await book_with(http, partner, await context_for(http, partner, book), credit_id), 409, "credit_not_active")
