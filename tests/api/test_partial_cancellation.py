"""Partial cancellation over HTTP (docs/api.md#partial-cancellation) on the real dev server, with the
worker running the flows: one traveller of several drops out, the others still travel, and every
figure of settlement follows that traveller's share."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from aiohttp.test_utils import TestClient

from tests.api.conftest import Actor, feed_of, flight, hotel
from tests.api.test_foundation import problem
from tests.api.test_involuntary import until
from tests.api.test_rescheduling import Hooked, accept, hooked, mock  # noqa: F401  (hooked: a fixture)

TRAVELLERS = [{"traveller_id": f"T{n}", "name": name} for n, name in ((1, "Ada"), (2, "Grace"), (3, "Edsger"))]


def money(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": "EUR"}


def manual_service(**extra: Any) -> dict[str, Any]:
    """An ``other`` product an agent quotes: partial by default."""
    return {"kind": "other", "name": "Guided tour", "starts_at": "2031-06-01T09:00:00+00:00",
            "ends_at": "2031-06-01T17:00:00+00:00", "price": money("100.00"), "vat_rate": "0.10",
            "cancellation_policy": {"mode": "manual"}, **extra}


async def book(http: TestClient, who: Actor, *products: dict[str, Any], travellers: list[dict[str, str]] = TRAVELLERS
               ) -> tuple[str, list[str]]:
    response = await http.post("/v1/sandbox/reservations", headers=who.headers,
                                json={"travellers": travellers, "products": list(products)})
    assert response.status == 201, await response.text()
    body = await response.json()
    return body["reservation_id"], [p["product_id"] for p in body["products"]]


async def quote(http: TestClient, who: Actor, product_id: str, *traveller_ids: str, status: int = 201) -> dict[str, Any]:
    response = await http.post(f"/v1/products/{product_id}/cancellation-quotes", headers=who.headers,
                               json={"traveller_ids": list(traveller_ids)} if traveller_ids else {})
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def cancel(http: TestClient, who: Actor, product_id: str, quote_id: str) -> Any:
    return await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote_id}, headers=who.headers)


async def get(http: TestClient, who: Actor, path: str) -> Any:
    response = await http.get(path, headers=who.headers)
    assert response.status == 200, await response.text()
    return await response.json()


def travellers_of(view: dict[str, Any], index: int = 0) -> list[tuple[str, str, str]]:
    return [(t["traveller_id"], t["status"], t["fare"]["amount"]) for t in view["products"][index]["travellers"]]


async def test_one_traveller_of_three_then_the_rest(http: TestClient, partner: Actor) -> None:
    # 100.00 EUR for three: 33.34, 33.33, 33.33; three days ahead the 50 % tier applies.
    reservation_id, (product_id,) = await book(http, partner, flight(days_ahead=3, amount="100.00"))
    view = await get(http, partner, f"/v1/reservations/{reservation_id}")
    assert travellers_of(view) == [("T1", "confirmed", "33.34"), ("T2", "confirmed", "33.33"), ("T3", "confirmed", "33.33")]
    assert view["products"][0]["traveller_ids"] == ["T1", "T2", "T3"]

    first = await quote(http, partner, product_id, "T2")
    assert (first["traveller_ids"], first["paid"], first["penalty"], first["refund"]) == (
        ["T2"], money("33.33"), money("16.67"), money("16.66"))
    done = await cancel(http, partner, product_id, first["quote_id"])
    assert done.status == 200, await done.text()
    code = (await done.json())["code"]
    assert (await done.json())["traveller_ids"] == ["T2"]

    info = await get(http, partner, f"/v1/cancellations/{code}")
    assert (info["status"], info["traveller_ids"], info["paid"]) == ("cancelled", ["T2"], money("33.33"))
    view = await get(http, partner, f"/v1/reservations/{reservation_id}")
    assert view["products"][0]["status"] == "confirmed"
    assert travellers_of(view) == [("T1", "confirmed", "33.34"), ("T2", "cancelled", "33.33"), ("T3", "confirmed", "33.33")]

    positions = await get(http, partner, f"/v1/cancellations/{code}/positions")
    original, fee = positions["original_position"], positions["cancellation_fee_position"]
    assert positions["traveller_ids"] == ["T2"]
    assert (original["quantity"], original["amount"], fee["amount"], positions["refund"]) == (
        1, money("-33.33"), money("16.67"), money("16.66"))
    assert Decimal(original["amount"]["amount"]) + Decimal(fee["amount"]["amount"]) == -Decimal("16.66")

    refunds = await get(http, partner, f"/v1/refunds?flow_code={code}")
    assert [(r["amount"], r["state"], r["traveller_ids"]) for r in refunds["items"]] == [(money("16.66"), "posted", ["T2"])]
    events = (await feed_of(http, partner.headers, 2))["items"]
    assert [(e["type"], e["data"]["traveller_ids"]) for e in events] == [
        ("cancellation.completed", ["T2"]), ("refund.posted", ["T2"])]

    # The refund procedure: what the travellers who remain paid, and each of them alone.
    procedure = await get(http, partner, f"/v1/products/{product_id}/refund-procedure")
    assert (procedure["price"], procedure["penalty"], procedure["difference"]) == (
        money("66.67"), money("33.34"), money("33.33"))
    assert [(t["traveller_id"], t["price"], t["difference"]) for t in procedure["travellers"]] == [
        ("T1", money("33.34"), money("16.67")), ("T3", money("33.33"), money("16.66"))]

    # T2 is gone; T9 never was; a special request for T2 is refused.
    gone = await problem(await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={"traveller_ids": ["T2"]},
                                         headers=partner.headers), 409, "cancellation_disallowed")
    assert "already_cancelled" in gone["detail"]
    stranger = await problem(await http.post(f"/v1/products/{product_id}/cancellation-quotes",
                                              json={"traveller_ids": ["T1", "T9"]}, headers=partner.headers),
                             422, "validation_failed")
    assert stranger["errors"][0]["field"] == "traveller_ids[1]"
    twice = await problem(await http.post(f"/v1/products/{product_id}/cancellation-quotes",
                                          json={"traveller_ids": ["T1", "T1"]}, headers=partner.headers),
                          422, "validation_failed")
    assert twice["errors"][0]["field"] == "traveller_ids[1]"
    asked = await http.post(f"/v1/products/{product_id}/special-requests", json={"code": "WCHR", "traveller_id": "T2"},
                            headers=partner.headers)
    assert (await problem(asked, 422, "validation_failed"))["errors"][0]["field"] == "traveller_id"
    still = await http.post(f"/v1/products/{product_id}/special-requests", json={"code": "WCHR", "traveller_id": "T3"},
                            headers=partner.headers)
    assert still.status == 202, await still.text()

    # No traveller named: every one still confirmed, and the product goes with the last of them.
    rest = await quote(http, partner, product_id)
    assert (rest["traveller_ids"], rest["paid"]) == (["T1", "T3"], money("66.67"))
    ended = await cancel(http, partner, product_id, rest["quote_id"])
    assert ended.status == 200, await ended.text()
    last = (await ended.json())["code"]
    view = await get(http, partner, f"/v1/reservations/{reservation_id}")
    assert view["products"][0]["status"] == "cancelled"
    assert [status for _, status, _ in travellers_of(view)] == ["cancelled"] * 3
    assert (await get(http, partner, f"/v1/cancellations/{last}/positions"))["original_position"]["quantity"] == 2

    # The journal: the fare, then each share's refund; it sums to what the partner finally pays.
    entries = (await get(http, partner, f"/v1/payments?reservation_id={reservation_id}"))["items"]
    assert [(e["category"], e["amount"]["amount"]) for e in entries] == [
        ("fare", "100.00"), ("refund", "-16.66"), ("refund", "-33.33")]
    assert sum(Decimal(e["amount"]["amount"]) for e in entries) == Decimal("50.01")  # 16.67 + 33.34 in penalties


async def test_the_policy_says_whether_travellers_go_one_by_one(http: TestClient, partner: Actor) -> None:
    whole_flight = flight(days_ahead=30)
    whole_flight["cancellation_policy"]["partial"] = False
    _, (hotel_id, flight_id) = await book(http, partner, hotel(), whole_flight)
    for product_id in (hotel_id, flight_id):
        refused = await problem(await http.post(f"/v1/products/{product_id}/cancellation-quotes",
                                                json={"traveller_ids": ["T1"]}, headers=partner.headers),
                                409, "cancellation_disallowed")
        assert "partial_not_allowed" in refused["detail"]
        # Every traveller at once is no subset: allowed.
        assert (await quote(http, partner, product_id, "T1", "T2", "T3"))["traveller_ids"] == ["T1", "T2", "T3"]


async def test_fares_and_travellers_are_checked_when_sold(http: TestClient, partner: Actor) -> None:
    body = {"travellers": TRAVELLERS[:2]}
    cases = [
        {"traveller_ids": ["T1", "T9"]},
        {"traveller_ids": ["T1", "T1"]},
        {"fares": [{"traveller_id": "T1", "amount": money("60.00")}, {"traveller_id": "T2", "amount": money("30.00")}]},
        {"fares": [{"traveller_id": "T1", "amount": money("60.00")}, {"traveller_id": "T1", "amount": money("40.00")}]},
        {"traveller_ids": ["T1"], "fares": [{"traveller_id": "T2", "amount": money("100.00")}]},
        {"fares": [{"traveller_id": "T1", "amount": money("60.00")}, {"traveller_id": "T2",
                                                                       "amount": {"amount": "40.00", "currency": "USD"}}]},
    ]
    for case in cases:
        response = await http.post("/v1/sandbox/reservations", headers=partner.headers,
                                   json={**body, "products": [manual_service(**case)]})
        await problem(response, 422, "validation_failed")
    reservation_id, _ = await book(http, partner, manual_service(traveller_ids=["T2"]), manual_service(
        fares=[{"traveller_id": "T1", "amount": money("60.00")}, {"traveller_id": "T2", "amount": money("40.00")}]),
        travellers=TRAVELLERS[:2])
    view = await get(http, partner, f"/v1/reservations/{reservation_id}")
    assert travellers_of(view, 0) == [("T2", "confirmed", "100.00")]
    assert travellers_of(view, 1) == [("T1", "confirmed", "60.00"), ("T2", "confirmed", "40.00")]


async def test_two_travellers_at_once_one_flow_at_a_time(http: TestClient, partner: Actor, agent: Actor) -> None:
    fares = [{"traveller_id": "T1", "amount": money("60.00")}, {"traveller_id": "T2", "amount": money("40.00")}]
    reservation_id, (product_id,) = await book(http, partner, manual_service(fares=fares), travellers=TRAVELLERS[:2])
    one, two = await quote(http, partner, product_id, "T1"), await quote(http, partner, product_id, "T2")
    assert (one["resolution"], one["paid"], two["paid"]) == ("manual", money("60.00"), money("40.00"))

    first, second = await asyncio.gather(cancel(http, partner, product_id, one["quote_id"]),
                                         cancel(http, partner, product_id, two["quote_id"]))
    assert sorted([first.status, second.status]) == [202, 409]
    winner, loser, waiting = (first, second, two) if first.status == 202 else (second, first, one)
    await problem(loser, 409, "flow_in_progress")
    code = (await winner.json())["code"]
    share = one["paid"] if waiting is two else two["paid"]

    # The agent quotes the share: penalty + refund = the paid share, not the price.
    whole = await http.post(f"/v1/agent/cancellations/{code}/quote", headers=agent.headers,
                            json={"penalty": money("10.00"), "refund": money("90.00")})
    await problem(whole, 422, "invalid_quote")
    refund = money(str(Decimal(share["amount"]) - 10))
    quoted = await http.post(f"/v1/agent/cancellations/{code}/quote", headers=agent.headers,
                             json={"penalty": money("10.00"), "refund": refund})
    assert quoted.status == 200, await quoted.text()
    accepted = await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=partner.headers)
    assert (await accepted.json())["status"] == "cancelled"

    # It ended: the other traveller's quote goes now.
    after = await cancel(http, partner, product_id, waiting["quote_id"])
    assert after.status == 202, await after.text()
    view = await get(http, partner, f"/v1/reservations/{reservation_id}")
    assert view["products"][0]["status"] == "confirmed"
    assert sorted(status for _, status, _ in travellers_of(view)) == ["cancelled", "confirmed"]
    entries = (await get(http, partner, f"/v1/payments?reservation_id={reservation_id}"))["items"]
    assert [(e["category"], e["amount"]) for e in entries] == [("fare", money("100.00")), ("refund", money(f"-{refund['amount']}"))]


async def test_a_quote_for_the_same_traveller_supersedes_one_for_another_does_not(http: TestClient, partner: Actor) -> None:
    _, (product_id,) = await book(http, partner, flight(days_ahead=30, amount="90.00"))
    t1 = await quote(http, partner, product_id, "T1")
    t2 = await quote(http, partner, product_id, "T2")
    both = await quote(http, partner, product_id, "T2", "T3")
    await problem(await cancel(http, partner, product_id, t2["quote_id"]), 409, "quote_superseded")
    done = await cancel(http, partner, product_id, t1["quote_id"])
    assert done.status == 200, await done.text()
    assert (await done.json())["refund"] == money("30.00")
    rest = await cancel(http, partner, product_id, both["quote_id"])
    assert rest.status == 200 and (await rest.json())["refund"] == money("60.00")


async def test_a_change_after_a_partial_cancellation_concerns_the_travellers_who_remain(
    http: TestClient, partner: Actor
) -> None:
    trip = flight(days_ahead=30, amount="90.00")
    reservation_id, (product_id,) = await book(http, partner, trip)
    day = trip["segments"][0]["departure"][:10]
    whole = await http.post(f"/v1/products/{product_id}/change-alternatives", json={"departure_date": day},
                            headers=partner.headers)
    assert whole.status == 200, await whole.text()
    before = (await whole.json())["items"]
    gone = await cancel(http, partner, product_id, (await quote(http, partner, product_id, "T2"))["quote_id"])
    assert gone.status == 200, await gone.text()

    after = (await (await http.post(f"/v1/products/{product_id}/change-alternatives", json={"departure_date": day},
                                    headers=partner.headers)).json())["items"]
    # Two travellers of three remain: the fee and the fare difference are two thirds of the whole product's.
    assert {item["change_fee"]["amount"] for item in after} == {"20.00"}
    assert [Decimal(item["fare_difference"]["amount"]) for item in after] == [
        (Decimal(item["fare_difference"]["amount"]) * 2 / 3).quantize(Decimal("0.01")) for item in before]
    offer = after[-1]
    context = await http.post("/v1/change-contexts", json={"itinerary_id": offer["itinerary_id"]}, headers=partner.headers)
    assert context.status == 201, await context.text()
    booked = await http.post(f"/v1/change-contexts/{(await context.json())['context_id']}/book", json={},
                             headers=partner.headers)
    assert booked.status == 200, await booked.text()
    view = await get(http, partner, f"/v1/reservations/{reservation_id}")
    # The cancelled traveller's fare stays what was refunded from; the others carry the new fare.
    difference = Decimal(offer["fare_difference"]["amount"])
    assert travellers_of(view) == [("T1", "confirmed", str(Decimal("30.00") + difference / 2)),
                                   ("T2", "cancelled", "30.00"),
                                   ("T3", "confirmed", str(Decimal("30.00") + difference / 2))]
    entries = (await get(http, partner, f"/v1/payments?reservation_id={reservation_id}"))["items"]
    assert [(e["category"], e["amount"]["amount"]) for e in entries] == [
        ("fare", "90.00"), ("refund", "-30.00"), ("fee", "20.00"), ("fare_difference", offer["fare_difference"]["amount"])]


async def test_a_rescheduling_refund_gives_back_what_the_travellers_who_remain_paid(
    http: TestClient, hooked: Hooked  # noqa: F811  (the fixture imported above)
) -> None:
    partner, webhook = hooked.partner, hooked.webhook
    reservation_id, (product_id,) = await book(http, partner, flight(days_ahead=30, amount="90.00"))
    gone = await cancel(http, partner, product_id, (await quote(http, partner, product_id, "T2"))["quote_id"])
    assert gone.status == 200, await gone.text()
    code = await mock(http, partner, product_id, kind="flight_cancelled")
    await webhook.event("rescheduling.detected", code)
    alternatives = (await get(http, partner, f"/v1/reschedulings/{code}/alternatives"))["items"]
    assert [a["refund"] for a in alternatives if a["kind"] == "refund"] == [money("60.00")]
    accepted = await accept(http, partner, code, "refund")
    assert accepted.status == 200, await accepted.text()
    await webhook.event("rescheduling.accepted", code)
    view = await get(http, partner, f"/v1/reservations/{reservation_id}")
    assert view["products"][0]["status"] == "cancelled"
    entries = (await get(http, partner, f"/v1/payments?reservation_id={reservation_id}"))["items"]
    assert [(e["category"], e["amount"]["amount"]) for e in entries] == [("fare", "90.00"), ("refund", "-30.00"),
                                                                         ("refund", "-60.00")]


async def test_a_travellers_refund_taken_as_a_credit_names_it(http: TestClient, partner: Actor) -> None:
    reservation_id, (product_id,) = await book(http, partner, flight(days_ahead=30, amount="90.00"))
    kept = await quote(http, partner, product_id, "T3")
    answer = await http.post(f"/v1/products/{product_id}/cancellations", headers=partner.headers,
                             json={"quote_id": kept["quote_id"], "refund_to": "credit"})
    assert answer.status == 200, await answer.text()
    done = await answer.json()
    credit = await get(http, partner, f"/v1/credits/{done['credit_id']}")
    assert (credit["amount"], credit["traveller_ids"], credit["flow_code"]) == (money("30.00"), ["T3"], done["code"])
    entries = (await get(http, partner, f"/v1/payments?reservation_id={reservation_id}"))["items"]
    assert [e["category"] for e in entries] == ["fare"]  # a credit moves no cash
    view = await get(http, partner, f"/v1/reservations/{reservation_id}")
    assert [status for _, status, _ in travellers_of(view)] == ["confirmed", "confirmed", "cancelled"]


async def test_a_traveller_cancelled_after_the_airline_changed_the_flight_pays_no_penalty(
    http: TestClient, hooked: Hooked  # noqa: F811  (the fixture imported above)
) -> None:
    partner, webhook = hooked.partner, hooked.webhook
    _, (product_id,) = await book(http, partner, flight(days_ahead=3, amount="90.00"))
    code = await mock(http, partner, product_id, kind="time_change")
    await webhook.event("rescheduling.detected", code)
    accepted = await accept(http, partner, code, "proposed")
    assert accepted.status == 200, await accepted.text()
    kept = await quote(http, partner, product_id, "T2")
    # Involuntary (docs/flows.md#involuntary-cancellations) on the share: the whole 30.00 comes back.
    assert (kept["traveller_ids"], kept["involuntary"], kept["paid"], kept["penalty"], kept["refund"]) == (
        ["T2"], True, money("30.00"), money("0.00"), money("30.00"))
    procedure = await get(http, partner, f"/v1/products/{product_id}/refund-procedure")
    assert [(t["traveller_id"], t["penalty"]) for t in procedure["travellers"]] == [
        ("T1", money("0.00")), ("T2", money("0.00")), ("T3", money("0.00"))]


async def test_a_change_that_waited_behind_a_partial_cancellation_refunds_only_who_remains(
    http: TestClient, hooked: Hooked, agent: Actor  # noqa: F811  (the fixture imported above)
) -> None:
    """The schedule change arrives while T2's manual cancellation holds the product: its alternatives are
    priced then, on the whole price, and its refund (cash or credit) is still only what T1 and T3 paid."""
    partner, webhook = hooked.partner, hooked.webhook
    for refund_to in ("original_payment", "credit"):
        # A second product, so that what the reservation has left to refund is more than this one's share.
        reservation_id, (product_id, _tour) = await book(
            http, partner, flight(days_ahead=30, mode="manual", amount="90.00"), manual_service())
        kept = await quote(http, partner, product_id, "T2")
        started = await cancel(http, partner, product_id, kept["quote_id"])
        assert started.status == 202, await started.text()
        cancellation = (await started.json())["code"]
        code = await mock(http, partner, product_id, kind="flight_cancelled")
        # Involuntary now (docs/flows.md#involuntary-cancellations): the agent quotes T2's share at 0.
        await until(http, agent, f"/v1/cancellations/{cancellation}", lambda info: info["involuntary"])
        quoted = await http.post(f"/v1/agent/cancellations/{cancellation}/quote", headers=agent.headers,
                                 json={"penalty": money("0.00"), "refund": money("30.00")})
        assert quoted.status == 200, await quoted.text()
        decided = await http.patch(f"/v1/cancellations/{cancellation}", json={"decision": "accept"},
                                   headers=partner.headers)
        assert (await decided.json())["status"] == "cancelled"
        await webhook.event("rescheduling.detected", code)
        alternatives = (await get(http, partner, f"/v1/reschedulings/{code}/alternatives"))["items"]
        assert [a["refund"] for a in alternatives if a["kind"] == "refund"] == [money("90.00")]  # priced on arrival
        chosen = await http.post(f"/v1/reschedulings/{code}/accept", headers=partner.headers,
                                 json={"alternative_id": "refund", "refund_to": refund_to})
        assert chosen.status == 200, await chosen.text()
        await webhook.event("rescheduling.accepted", code)
        entries = (await get(http, partner, f"/v1/payments?reservation_id={reservation_id}"))["items"]
        credits = (await get(http, partner, f"/v1/credits?reservation_id={reservation_id}"))["items"]
        if refund_to == "credit":
            assert [(e["category"], e["amount"]["amount"]) for e in entries] == [
                ("fare", "90.00"), ("fare", "100.00"), ("refund", "-30.00")]
            assert [(c["amount"], c["flow_code"]) for c in credits] == [(money("60.00"), code)]
        else:
            assert [(e["category"], e["amount"]["amount"]) for e in entries] == [
                ("fare", "90.00"), ("fare", "100.00"), ("refund", "-30.00"), ("refund", "-60.00")]
            assert credits == []
