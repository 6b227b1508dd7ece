"""Settlement over HTTP (docs/api.md#settlement, docs/settlement.md) on the real dev server with the worker
running the flows: the payments journal, the refund procedure, cancellation positions, the refunds
ledger and deposits, every refusal, bad input and partner isolation."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from domain.journal import gapless, invariant_violations
from store.repositories import Store
from store.schema import quotes
from tests.api.conftest import ADMIN, Actor, cancel_with_a_quote, flight, hotel, new_partner
from tests.api.test_changes import alternatives, context_for, departure_day
from tests.api.test_foundation import problem
from tests.api.test_rescheduling import Hooked, accept, hooked, mock, rescheduling_code  # noqa: F401 (hooked: fixture)

EUR = "EUR"


def eur(amount: str) -> dict[str, str]:
    return {"amount": amount, "currency": EUR}


def with_deposit(product: dict[str, Any], amount: str = "100.00", currency: str = EUR) -> dict[str, Any]:
    return {**product, "deposit": {"amount": amount, "currency": currency}}


async def journal(http: TestClient, who: Actor | dict[str, str], **params: str) -> list[dict[str, Any]]:
    headers = who.headers if isinstance(who, Actor) else who
    response = await http.get(f"/v1/payments?{urlencode({'limit': '200', **params})}", headers=headers)
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["next"] is None
    items: list[dict[str, Any]] = body["items"]
    return items


def total(entries: list[dict[str, Any]], currency: str = EUR) -> Decimal:
    return sum((Decimal(e["amount"]["amount"]) for e in entries if e["amount"]["currency"] == currency), Decimal(0))


async def cancel_automatically(http: TestClient, who: Actor, product_id: str) -> dict[str, Any]:
    response = await cancel_with_a_quote(http, who, product_id)
    assert response.status == 200, await response.text()
    done: dict[str, Any] = await response.json()
    assert done["status"] == "cancelled"
    return done


async def new_refund(http: TestClient, who: Actor | dict[str, str], **body: Any):  # type: ignore[no-untyped-def]
    headers = who.headers if isinstance(who, Actor) else who
    return await http.post("/v1/refunds", json={"state": "draft", "reason": "goodwill", **body}, headers=headers)


async def created(response) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    assert response.status == 201, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def books_balance(store: Store, reservation_id: str) -> dict[str, Decimal]:
    """The invariant, checked on what the store holds: violations none, and the sums per currency."""
    entries = await store.payments.entries(reservation_id)
    assert invariant_violations(entries, await store.refunds.posted(reservation_id)) == []
    assert gapless(r.number for r in await store.refunds.posted())
    sums: dict[str, Decimal] = {}
    for entry in entries:
        sums[entry.amount.currency] = sums.get(entry.amount.currency, Decimal(0)) + entry.amount.amount
    return sums


# --- the journal and a flow's own refund ---------------------------------------------------------------


async def test_sale_and_cancellation_book_the_journal(http: TestClient, partner: Actor, store: Store, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, flight(days_ahead=3), with_deposit(hotel()))
    reservation_id = reservation["reservation_id"]
    flight_id, hotel_id = (p["product_id"] for p in reservation["products"])
    assert reservation["products"][1]["deposit"] == eur("100.00")

    sale = await journal(http, partner, reservation_id=reservation_id)
    assert [(e["category"], e["product_id"], e["amount"], e["vat_rate"], e["state"]) for e in sale] == [
        ("fare", flight_id, eur("240.00"), "0.081", "to_invoice"),
        ("fare", hotel_id, eur("600.00"), "0.10", "to_invoice"),
        ("deposit", hotel_id, eur("100.00"), None, "to_invoice"),
    ]
    assert all(e["payment_id"].startswith("pay_") and e["flow_code"] is None and e["invoiced_at"] is None for e in sale)

    done = await cancel_automatically(http, partner, flight_id)
    code = done["code"]
    after = await journal(http, partner, reservation_id=reservation_id)
    [refund_entry] = after[3:]
    assert (refund_entry["category"], refund_entry["amount"], refund_entry["flow_code"], refund_entry["product_id"]) == (
        "refund", eur("-120.00"), code, flight_id)
    # The invariant: what the partner finally pays, 120 of penalty + the hotel and its deposit.
    assert total(after) == Decimal("820.00")
    assert await books_balance(store, reservation_id) == {EUR: Decimal("820.00")}

    [refund] = (await (await http.get(f"/v1/refunds?flow_code={code}", headers=partner.headers)).json())["items"]
    assert refund_entry["refund_id"] == refund["refund_id"] and refund["refund_id"].startswith("rfd_")
    assert (refund["state"], refund["amount"], refund["reason"], refund["flow_code"], refund["category"]) == (
        "posted", eur("120.00"), "cancellation", code, "refund")
    assert refund["number"] is not None and refund["reference_number"].isdigit() and refund["posted_at"]
    assert refund["created_by"] == refund["decided_by"] == f"flow:{code}"

    events = (await (await http.get("/v1/events", headers=partner.headers)).json())["items"]
    posted = [e for e in events if e["type"] == "refund.posted"]
    assert len(posted) == 1 and posted[0]["data"] == refund
    assert posted[0]["delivery"] == {"status": "pending", "attempts": 0}

    positions = await http.get(f"/v1/cancellations/{code}/positions", headers=partner.headers)
    assert positions.status == 200, await positions.text()
    answer = await positions.json()
    original, fee = answer["original_position"], answer["cancellation_fee_position"]
    assert (answer["code"], answer["product_id"], answer["reservation_id"], answer["refund"]) == (
        code, flight_id, reservation_id, eur("120.00"))
    assert original["title"].startswith("Flight ZZ101 MAD-CDG ") and original["quantity"] == 1
    assert (original["amount"], original["vat_rate"], original["vat_amount"], original["net_amount"]) == (
        eur("-240.00"), "0.081", eur("-17.98"), eur("-222.02"))
    assert fee["title"].startswith("Cancellation fee, ") and fee["title"].endswith(" before start")
    assert (fee["amount"], fee["vat_amount"], fee["net_amount"]) == (eur("120.00"), eur("8.99"), eur("111.01"))
    assert Decimal(original["amount"]["amount"]) + Decimal(fee["amount"]["amount"]) == -Decimal("120.00")
    for who in (ADMIN,):
        assert (await http.get(f"/v1/cancellations/{code}/positions", headers=who)).status == 200


async def test_manual_cancellation_posts_the_agents_refund(http: TestClient, partner: Actor, agent: Actor,
                                                           other_partner: Actor, store: Store, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, hotel())
    product_id = reservation["products"][0]["product_id"]
    started = await cancel_with_a_quote(http, partner, product_id)
    code = (await started.json())["code"]

    # Positions exist only once it is cancelled; another partner learns nothing.
    await problem(await http.get(f"/v1/cancellations/{code}/positions", headers=partner.headers), 409, "not_cancelled")
    await problem(await http.get(f"/v1/cancellations/{code}/positions", headers=other_partner.headers), 404, "not_found")
    await problem(await http.get("/v1/cancellations/CAN-00000000/positions", headers=partner.headers), 404, "not_found")

    quoted = await http.post(f"/v1/agent/cancellations/{code}/quote", headers=agent.headers,
                             json={"penalty": eur("100.00"), "refund": eur("500.00")})
    assert quoted.status == 200, await quoted.text()
    accepted = await http.patch(f"/v1/cancellations/{code}", json={"decision": "accept"}, headers=partner.headers)
    assert (await accepted.json())["status"] == "cancelled"

    entries = await journal(http, partner, reservation_id=reservation["reservation_id"])
    assert [(e["category"], e["amount"]) for e in entries] == [("fare", eur("600.00")), ("refund", eur("-500.00"))]
    assert await books_balance(store, reservation["reservation_id"]) == {EUR: Decimal("100.00")}
    positions = await (await http.get(f"/v1/cancellations/{code}/positions", headers=agent.headers)).json()
    # 600 × 0.10 / 1.10 = 54.5454… → 54.55; 100 × 0.10 / 1.10 = 9.0909… → 9.09.
    assert positions["original_position"]["vat_amount"] == eur("-54.55")
    assert positions["cancellation_fee_position"]["vat_amount"] == eur("9.09")
    assert positions["refund"] == eur("500.00")


async def test_a_flow_refund_is_capped_by_what_agents_refunded(http: TestClient, partner: Actor, agent: Actor,
                                                               store: Store, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, flight(days_ahead=3), flight(days_ahead=3))
    reservation_id = reservation["reservation_id"]
    first, second = (p["product_id"] for p in reservation["products"])
    # Goodwill first: 420 of the 480 charged; 60 is left to refund.
    await created(await new_refund(http, agent, reservation_id=reservation_id, amount=eur("420"), state="posted"))

    done = await cancel_automatically(http, partner, first)  # the quote says 120 back
    [capped] = (await (await http.get(f"/v1/refunds?flow_code={done['code']}", headers=agent.headers)).json())["items"]
    assert (capped["state"], capped["amount"]) == ("posted", eur("60.00"))
    assert "capped" in capped["notes"] and "120.00 EUR" in capped["notes"]

    done = await cancel_automatically(http, partner, second)  # nothing left: recorded, not posted
    [nothing] = (await (await http.get(f"/v1/refunds?flow_code={done['code']}", headers=agent.headers)).json())["items"]
    assert (nothing["state"], nothing["amount"], nothing["number"]) == ("rejected", eur("120.00"), None)
    assert "capped" in nothing["rejection_reason"]
    assert await books_balance(store, reservation_id) == {EUR: Decimal("0.00")}


async def test_rescheduling_refund_posts_the_full_price(http: TestClient, hooked: Hooked, store: Store, book) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    partner = hooked.partner
    reservation = await book(partner, flight(days_ahead=30))
    product_id = reservation["products"][0]["product_id"]
    await mock(http, partner, product_id, kind="flight_cancelled")
    code = await rescheduling_code(http, partner, reservation["reservation_id"])
    await hooked.webhook.event("rescheduling.detected", code)
    response = await accept(http, partner, code, "refund")
    assert response.status == 200, await response.text()

    entries = await journal(http, partner, reservation_id=reservation["reservation_id"])
    assert [(e["category"], e["amount"], e["flow_code"]) for e in entries] == [
        ("fare", eur("240.00"), None), ("refund", eur("-240.00"), code)]
    [refund] = (await (await http.get(f"/v1/refunds?flow_code={code}", headers=partner.headers)).json())["items"]
    assert (refund["state"], refund["reason"], refund["amount"]) == ("posted", "rescheduling", eur("240.00"))
    assert await books_balance(store, reservation["reservation_id"]) == {EUR: Decimal("0.00")}
    # A rescheduling is not a cancellation flow: it has no positions route.
    await problem(await http.get(f"/v1/cancellations/{code}/positions", headers=partner.headers), 404, "not_found")


async def test_a_booked_change_books_its_fee_and_fare_difference(http: TestClient, partner: Actor, agent: Actor,
                                                                 store: Store, book) -> None:  # type: ignore[no-untyped-def]
    product = flight()
    reservation = await book(partner, product)
    reservation_id, product_id = reservation["reservation_id"], reservation["products"][0]["product_id"]
    items = (await (await alternatives(http, partner, product_id, departure_date=departure_day(product))).json())["items"]
    dearer = next(i for i in items if i["fare_difference"]["amount"] == "24.00")
    context = await context_for(http, partner, dearer["itinerary_id"])
    booked = await http.post(f"/v1/change-contexts/{context['context_id']}/book", json={}, headers=partner.headers)
    assert booked.status == 200, await booked.text()

    entries = await journal(http, partner, reservation_id=reservation_id)
    assert [(e["category"], e["amount"], e["flow_code"], e["vat_rate"]) for e in entries] == [
        ("fare", eur("240.00"), None, "0.081"),
        ("fee", eur("30.00"), context["code"], "0.081"),
        ("fare_difference", eur("24.00"), context["code"], "0.081"),
    ]
    assert await books_balance(store, reservation_id) == {EUR: Decimal("294.00")}  # 264 of fare + 30 of fee

    # Cancelling afterwards refunds against the fare paid (264) and keeps the fee.
    done = await cancel_automatically(http, partner, product_id)
    assert done["refund"] == eur("264.00")  # 30 days ahead: no penalty
    assert await books_balance(store, reservation_id) == {EUR: Decimal("30.00")}


# --- reading and confirming the journal ----------------------------------------------------------------


async def test_journal_filters_pages_csv_and_confirm(http: TestClient, partner: Actor, other_partner: Actor,
                                                     agent: Actor, book) -> None:  # type: ignore[no-untyped-def]
    first = await book(partner, flight(), with_deposit(hotel(), "50.00"))
    second = await book(partner, flight(amount="99.95"))
    theirs = await book(other_partner, flight())

    mine = await journal(http, partner)
    assert {e["reservation_id"] for e in mine} == {first["reservation_id"], second["reservation_id"]}
    assert [e["category"] for e in mine] == ["fare", "fare", "deposit", "fare"]  # oldest first
    assert [e["category"] for e in await journal(http, partner, category="deposit")] == ["deposit"]
    assert len(await journal(http, partner, reservation_id=second["reservation_id"])) == 1
    # Another partner's reservation or partner id: an empty list, never a hint.
    assert await journal(http, partner, reservation_id=theirs["reservation_id"]) == []
    assert await journal(http, partner, partner_id=other_partner.id) == []
    # Agents and admins read every partner's, and filter by partner.
    assert {e["partner_id"] for e in await journal(http, ADMIN, partner_id=other_partner.id)} == {other_partner.id}
    assert len(await journal(http, agent, reservation_id=theirs["reservation_id"])) == 1

    # Time window: start inclusive, end exclusive.
    booked_at = datetime.fromisoformat(mine[-1]["created_at"])
    assert [e["payment_id"] for e in await journal(http, partner, start_time=booked_at.isoformat())] == [mine[-1]["payment_id"]]
    assert mine[-1] not in await journal(http, partner, end_time=booked_at.isoformat())
    later = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    assert await journal(http, partner, start_time=later) == []

    # Pages of one, following the cursor.
    seen, cursor = [], None
    while True:
        params = {"limit": "1", **({"cursor": cursor} if cursor else {})}
        page = await (await http.get(f"/v1/payments?{urlencode(params)}", headers=partner.headers)).json()
        seen += [e["payment_id"] for e in page["items"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [e["payment_id"] for e in mine]

    # CSV: a header line, then the same rows; money as amount,currency columns.
    response = await http.get("/v1/payments?limit=2", headers={**partner.headers, "Accept": "text/csv"})
    assert response.status == 200 and response.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(await response.text())))
    assert [r["payment_id"] for r in rows] == [e["payment_id"] for e in mine[:2]]
    assert (rows[0]["amount"], rows[0]["currency"], rows[0]["category"]) == ("240.00", "EUR", "fare")
    assert 'rel="next"' in response.headers["Link"]
    everything = await http.get("/v1/payments", headers={**partner.headers, "Accept": "text/csv, application/json"})
    assert len(list(csv.DictReader(io.StringIO(await everything.text())))) == len(mine)
    assert "Link" not in everything.headers

    # Confirm: invoiced, and confirming again answers the same.
    payment_id = mine[0]["payment_id"]
    confirmed = await http.post(f"/v1/payments/{payment_id}/confirm", headers=partner.headers)
    assert confirmed.status == 200, await confirmed.text()
    entry = await confirmed.json()
    assert entry["state"] == "invoiced" and entry["invoiced_at"]
    again = await http.post(f"/v1/payments/{payment_id}/confirm", json={}, headers=partner.headers)
    assert again.status == 200 and await again.json() == entry
    assert [e["payment_id"] for e in await journal(http, partner, state="invoiced")] == [payment_id]
    assert len(await journal(http, partner, state="to_invoice")) == len(mine) - 1
    await problem(await http.post(f"/v1/payments/{payment_id}/confirm", headers=other_partner.headers), 404, "not_found")
    await problem(await http.post("/v1/payments/pay_nothing/confirm", headers=partner.headers), 404, "not_found")
    await problem(await http.post(f"/v1/payments/{payment_id}/confirm", headers=agent.headers), 403, "forbidden")
    await problem(await http.get("/v1/payments"), 401, "unauthorized")


async def test_journal_refuses_bad_queries(http: TestClient, partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    await book(partner, flight(), flight())
    page = await (await http.get("/v1/payments?limit=1", headers=partner.headers)).json()
    cursor = page["next"]
    cases = {
        "cursor=forged": "query.cursor",
        f"cursor={cursor}x": "query.cursor",
        f"cursor={cursor}&category=fare": "query.cursor",  # a cursor of another query
        "cursor=eyJhZnRlciI6IC0xLCAicXVlcnkiOiAieCJ9": "query.cursor",
        "category=fine": "query.category",
        "state=paid": "query.state",
        "start_time=2026-01-02T00:00:00%2B00:00&end_time=2026-01-01T00:00:00%2B00:00": "query.end_time",
        "start_time=2026-01-01T00:00:00": "query.start_time",  # no offset
        "end_time=yesterday": "query.end_time",
        "limit=0": "query.limit",
        "limit=201": "query.limit",
        "sort=amount": "query.sort",
    }
    for params, field in cases.items():
        body = await problem(await http.get(f"/v1/payments?{params}", headers=partner.headers), 422, "validation_failed")
        assert [e["field"] for e in body["errors"]] == [field], params


# --- the refund procedure ------------------------------------------------------------------------------


async def test_refund_procedure_answers_what_a_quote_would(http: TestClient, partner: Actor, other_partner: Actor,
                                                           agent: Actor, store: Store, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, flight(days_ahead=3), hotel(), flight(mode="none"),
                             flight(days_ahead=3, amount="1000", currency="JPY"))
    reservation_id = reservation["reservation_id"]
    ids = [p["product_id"] for p in reservation["products"]]
    async with store.engine.connect() as conn:
        quotes_before = (await conn.execute(sa.select(sa.func.count()).select_from(quotes))).scalar_one()

    response = await http.get(f"/v1/reservations/{reservation_id}/refund-procedure", headers=partner.headers)
    assert response.status == 200, await response.text()
    procedure = await response.json()
    assert procedure["reservation_id"] == reservation_id and procedure["refundable"] is True
    assert procedure["computed_at"]
    automatic, manual, fixed, yen = procedure["items"]
    # Each traveller still confirmed, alone (docs/api.md#partial-cancellation): here the reservation's only one.
    assert automatic == {"product_id": ids[0], "refundable": True, "resolution": "automatic", "price": eur("240.00"),
                         "penalty": eur("120.00"), "difference": eur("120.00"), "reasons": [],
                         "travellers": [{"traveller_id": "T1", "price": eur("240.00"), "penalty": eur("120.00"),
                                         "difference": eur("120.00")}]}
    assert manual == {"product_id": ids[1], "refundable": True, "resolution": "manual", "price": eur("600.00"),
                      "penalty": None, "difference": None, "reasons": [],
                      "travellers": [{"traveller_id": "T1", "price": eur("600.00"), "penalty": None, "difference": None}]}
    assert (fixed["refundable"], fixed["resolution"], fixed["reasons"]) == (False, None, ["not_cancellable"])
    assert (yen["penalty"], yen["difference"]) == ({"amount": "500", "currency": "JPY"}, {"amount": "500", "currency": "JPY"})
    assert procedure["totals"] == [
        {"currency": "EUR", "price": eur("240.00"), "penalty": eur("120.00"), "difference": eur("120.00")},
        {"currency": "JPY", "price": {"amount": "1000", "currency": "JPY"}, "penalty": {"amount": "500", "currency": "JPY"},
         "difference": {"amount": "500", "currency": "JPY"}},
    ]
    async with store.engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(quotes))).scalar_one() == quotes_before

    # The same terms as a quote made now.
    quote = await (await http.post(f"/v1/products/{ids[0]}/cancellation-quotes", json={}, headers=partner.headers)).json()
    assert (quote["penalty"], quote["refund"]) == (automatic["penalty"], automatic["difference"])

    one = await (await http.get(f"/v1/products/{ids[0]}/refund-procedure", headers=agent.headers)).json()
    assert one["reservation_id"] == reservation_id and one["difference"] == eur("120.00") and one["computed_at"]
    assert (await http.get(f"/v1/reservations/{reservation_id}/refund-procedure", headers=ADMIN)).status == 200
    await problem(await http.get(f"/v1/reservations/{reservation_id}/refund-procedure", headers=other_partner.headers),
                  404, "not_found")
    await problem(await http.get(f"/v1/products/{ids[0]}/refund-procedure", headers=other_partner.headers),
                  404, "not_found")

    # Once cancelled, nothing is refundable any more, and the reasons say why.
    await cancel_automatically(http, partner, ids[0])
    after = await (await http.get(f"/v1/products/{ids[0]}/refund-procedure", headers=partner.headers)).json()
    assert (after["refundable"], after["reasons"], after["difference"]) == (False, ["already_cancelled"], None)
    pending = await book(partner, flight(), status="pending")
    whole = await (await http.get(f"/v1/reservations/{pending['reservation_id']}/refund-procedure",
                                  headers=partner.headers)).json()
    assert whole["refundable"] is False and whole["totals"] == []
    assert whole["items"][0]["reasons"] == ["reservation_pending"]


# --- the refunds ledger --------------------------------------------------------------------------------


async def test_agents_work_the_ledger(http: TestClient, partner: Actor, other_partner: Actor, agent: Actor,
                                     store: Store, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, flight(), hotel())
    reservation_id = reservation["reservation_id"]

    draft = await created(await new_refund(http, agent, reservation_id=reservation_id, amount=eur("50"),
                                           back_office_code="BO-1", notes="late train"))
    assert (draft["state"], draft["number"], draft["posted_at"], draft["amount"]) == ("draft", None, None, eur("50.00"))
    assert (draft["partner_id"], draft["created_by"], draft["back_office_code"]) == (partner.id, f"agent:{agent.id}", "BO-1")
    path = f"/v1/refunds/{draft['refund_id']}"

    edited = await http.patch(path, json={"amount": eur("60"), "notes": "late train, 2 h"}, headers=agent.headers)
    assert edited.status == 200, await edited.text()
    assert (await edited.json())["amount"] == eur("60.00") and (await edited.json())["reason"] == "goodwill"
    posted = await http.post(f"{path}/post", headers=agent.headers)
    assert posted.status == 200, await posted.text()
    done = await posted.json()
    assert done["state"] == "posted" and done["number"] and done["posted_at"] and done["decided_by"] == f"agent:{agent.id}"

    # Only a draft changes.
    await problem(await http.post(f"{path}/post", headers=agent.headers), 409, "refund_not_draft")
    await problem(await http.post(f"{path}/reject", json={"reason": "no"}, headers=agent.headers), 409, "refund_not_draft")
    await problem(await http.patch(path, json={"notes": "x"}, headers=agent.headers), 409, "refund_not_draft")

    other = await created(await new_refund(http, ADMIN, reservation_id=reservation_id, amount=eur("10")))
    assert int(other["reference_number"]) > int(draft["reference_number"]) and other["created_by"] == "admin"
    rejected = await http.post(f"/v1/refunds/{other['refund_id']}/reject", json={"reason": "duplicate claim"},
                               headers=agent.headers)
    assert rejected.status == 200
    assert (await rejected.json())["state"] == "rejected" and (await rejected.json())["rejection_reason"] == "duplicate claim"
    await problem(await http.post(f"/v1/refunds/{other['refund_id']}/post", headers=agent.headers), 409, "refund_not_draft")

    # Unique back-office code, on create and on edit.
    await problem(await new_refund(http, agent, reservation_id=reservation_id, amount=eur("1"), back_office_code="BO-1"),
                  409, "duplicate_back_office_code")
    third = await created(await new_refund(http, agent, reservation_id=reservation_id, amount=eur("1")))
    await problem(await http.patch(f"/v1/refunds/{third['refund_id']}", json={"back_office_code": "BO-1"},
                                   headers=agent.headers), 409, "duplicate_back_office_code")
    cleared = await http.patch(f"/v1/refunds/{third['refund_id']}", json={"back_office_code": None}, headers=agent.headers)
    assert cleared.status == 200 and (await cleared.json())["back_office_code"] is None

    # Never more than was charged (840 EUR): on create-posted and on post.
    await problem(await new_refund(http, agent, reservation_id=reservation_id, amount=eur("780.01"), state="posted"),
                  422, "refund_exceeds_charged")
    big = await created(await new_refund(http, agent, reservation_id=reservation_id, amount=eur("780")))
    await created(await new_refund(http, agent, reservation_id=reservation_id, amount=eur("0.01"), state="posted"))
    await problem(await http.post(f"/v1/refunds/{big['refund_id']}/post", headers=agent.headers), 422, "refund_exceeds_charged")
    assert (await (await http.get(f"/v1/refunds/{big['refund_id']}", headers=agent.headers)).json())["state"] == "draft"
    assert await books_balance(store, reservation_id) == {EUR: Decimal("779.99")}

    # The journal and the trigger of each posting.
    entries = await journal(http, partner, reservation_id=reservation_id, category="refund")
    assert [(e["refund_id"], e["amount"]) for e in entries][0] == (draft["refund_id"], eur("-60.00"))
    feed = (await (await http.get("/v1/events", headers=partner.headers)).json())["items"]
    assert [e["data"]["refund_id"] for e in feed if e["type"] == "refund.posted"][0] == draft["refund_id"]

    # Partners read their own, never write; another partner sees nothing.
    mine = await (await http.get(f"/v1/refunds?reservation_id={reservation_id}", headers=partner.headers)).json()
    assert {r["refund_id"] for r in mine["items"]} >= {draft["refund_id"], other["refund_id"]}
    assert (await http.get(path, headers=partner.headers)).status == 200
    await problem(await http.get(path, headers=other_partner.headers), 404, "not_found")
    theirs = await (await http.get("/v1/refunds", headers=other_partner.headers)).json()
    assert theirs == {"items": [], "next": None}
    assert (await (await http.get(f"/v1/refunds?partner_id={partner.id}", headers=other_partner.headers)).json())["items"] == []
    await problem(await new_refund(http, partner, reservation_id=reservation_id, amount=eur("1")), 403, "forbidden")
    await problem(await http.post(f"{path}/post", headers=partner.headers), 403, "forbidden")
    await problem(await http.patch(path, json={"notes": "x"}, headers=partner.headers), 403, "forbidden")
    await problem(await http.get("/v1/refunds/rfd_nothing", headers=agent.headers), 404, "not_found")
    await problem(await http.post("/v1/refunds/rfd_nothing/post", headers=agent.headers), 404, "not_found")

    # Filters and the sparse fieldset.
    by_state = await (await http.get(f"/v1/refunds?reservation_id={reservation_id}&state=rejected",
                                     headers=agent.headers)).json()
    assert [r["refund_id"] for r in by_state["items"]] == [other["refund_id"]]
    by_code = await (await http.get("/v1/refunds?back_office_code=BO-1", headers=agent.headers)).json()
    assert [r["refund_id"] for r in by_code["items"]] == [draft["refund_id"]]
    projected = await (await http.get(f"{path}?fields=refund_id,state,number", headers=partner.headers)).json()
    assert projected == {"refund_id": draft["refund_id"], "state": "posted", "number": done["number"]}
    listed = await (await http.get(f"/v1/refunds?reservation_id={reservation_id}&fields=reference_number&limit=2",
                                   headers=agent.headers)).json()
    assert all(set(item) == {"reference_number"} for item in listed["items"]) and listed["next"]
    rest = await (await http.get(f"/v1/refunds?reservation_id={reservation_id}&fields=reference_number&limit=2"
                                 f"&cursor={listed['next']}", headers=agent.headers)).json()
    assert rest["items"] and rest["items"][0] not in listed["items"]
    for query, field in (("fields=refund_id,colour", "query.fields"), ("fields=", "query.fields"),
                         ("state=pending", "query.state"), ("cursor=abc", "query.cursor")):
        body = await problem(await http.get(f"/v1/refunds?{query}", headers=agent.headers), 422, "validation_failed")
        assert [e["field"] for e in body["errors"]] == [field]
    await problem(await http.get(f"{path}?fields=amount,secret", headers=agent.headers), 422, "validation_failed")


async def test_refunds_refuse_bad_input(http: TestClient, agent: Actor, partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, flight())
    reservation_id = reservation["reservation_id"]
    cases: list[tuple[dict[str, Any], str]] = [
        ({"amount": {"amount": "10.001", "currency": "EUR"}}, "amount.amount"),  # too many minor digits
        ({"amount": {"amount": 10.5, "currency": "EUR"}}, "amount.amount"),  # a float
        ({"amount": {"amount": "10", "currency": "EUR"}, "state": "approved"}, "state"),
        ({"amount": {"amount": "-5", "currency": "EUR"}}, "amount.amount"),
        ({"amount": {"amount": "0", "currency": "EUR"}}, "amount.amount"),
        ({"amount": {"amount": "10", "currency": "USD"}}, "amount.currency"),  # not a currency of the reservation
        ({"amount": {"amount": "10", "currency": "XYZ"}}, "amount.currency"),
        ({"amount": {"amount": "10", "currency": "EUR"}, "reservation_id": "RES-NONE"}, "reservation_id"),
        ({"amount": {"amount": "10", "currency": "EUR"}, "reason": ""}, "reason"),
        ({"amount": {"amount": "10", "currency": "EUR"}, "colour": "red"}, "colour"),
    ]
    for overrides, field in cases:
        body = {"reservation_id": reservation_id, "state": "draft", "reason": "goodwill", **overrides}
        answer = await problem(await http.post("/v1/refunds", json=body, headers=agent.headers), 422, "validation_failed")
        assert field in [e["field"] for e in answer["errors"]], (overrides, answer)
    bad_json = await http.post("/v1/refunds", data=b"{not json", headers={**agent.headers, "Content-Type": "application/json"})
    await problem(bad_json, 400, "malformed_json")

    draft = await created(await new_refund(http, agent, reservation_id=reservation_id, amount=eur("5")))
    for change, field in (({"amount": eur("0")}, "amount.amount"), ({"amount": {"amount": "5", "currency": "GBP"}}, "amount.currency"),
                          ({"reason": None}, "reason"), ({"state": "posted"}, "state")):
        answer = await problem(await http.patch(f"/v1/refunds/{draft['refund_id']}", json=change, headers=agent.headers),
                               422, "validation_failed")
        assert field in [e["field"] for e in answer["errors"]], change
    await problem(await http.post(f"/v1/refunds/{draft['refund_id']}/reject", json={}, headers=agent.headers),
                  422, "validation_failed")


async def test_two_posts_that_together_exceed_the_charge_one_wins(http: TestClient, partner: Actor, agent: Actor,
                                                                   store: Store, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, flight())  # 240 charged
    drafts = [await created(await new_refund(http, agent, reservation_id=reservation["reservation_id"], amount=eur("150")))
              for _ in range(2)]
    answers = await asyncio.gather(*(http.post(f"/v1/refunds/{d['refund_id']}/post", headers=agent.headers) for d in drafts))
    assert sorted(a.status for a in answers) == [200, 422]
    assert await books_balance(store, reservation["reservation_id"]) == {EUR: Decimal("90.00")}


# --- deposits ------------------------------------------------------------------------------------------


async def test_a_deposit_is_refunded_once(http: TestClient, partner: Actor, other_partner: Actor, agent: Actor,
                                          store: Store, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, with_deposit(flight(), "75.50"), flight())
    with_one, without = (p["product_id"] for p in reservation["products"])

    await problem(await http.post(f"/v1/products/{with_one}/deposit-refunds", headers=other_partner.headers), 404, "not_found")
    response = await http.post(f"/v1/products/{with_one}/deposit-refunds", headers=partner.headers)
    refund = await created(response)
    assert (refund["state"], refund["category"], refund["reason"], refund["amount"], refund["product_id"]) == (
        "posted", "deposit", "deposit", eur("75.50"), with_one)
    assert refund["number"] and refund["created_by"] == f"partner:{partner.id}"
    await problem(await http.post(f"/v1/products/{with_one}/deposit-refunds", headers=partner.headers),
                  409, "deposit_already_refunded")
    await problem(await http.post(f"/v1/products/{with_one}/deposit-refunds", headers=agent.headers),
                  409, "deposit_already_refunded")
    await problem(await http.post(f"/v1/products/{without}/deposit-refunds", headers=partner.headers), 409, "no_deposit")
    await problem(await http.post("/v1/products/PRD-NOTHING/deposit-refunds", headers=partner.headers), 404, "not_found")

    deposits = await journal(http, partner, reservation_id=reservation["reservation_id"], category="deposit")
    assert [(e["amount"], e["refund_id"]) for e in deposits] == [(eur("75.50"), None), (eur("-75.50"), refund["refund_id"])]
    assert await books_balance(store, reservation["reservation_id"]) == {EUR: Decimal("480.00")}


async def test_a_deposit_must_be_positive_money(http: TestClient, partner: Actor) -> None:
    for deposit, field in (({"amount": "0", "currency": "EUR"}, "products[0].deposit.amount"),
                           ({"amount": "-1", "currency": "EUR"}, "products[0].deposit.amount"),
                           ({"amount": 10, "currency": "EUR"}, "products[0].deposit.amount"),
                           ({"amount": "1.001", "currency": "EUR"}, "products[0].deposit.amount")):
        body = {"travellers": [{"traveller_id": "T1", "name": "Ada"}], "products": [{**flight(), "deposit": deposit}]}
        answer = await problem(await http.post("/v1/sandbox/reservations", json=body, headers=partner.headers),
                               422, "validation_failed")
        assert [e["field"] for e in answer["errors"]] == [field], deposit


async def test_a_deposit_in_another_currency_is_a_currency_of_the_reservation(http: TestClient, partner: Actor,
                                                                               agent: Actor, store: Store, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, with_deposit(hotel(), "20000", "JPY"))
    reservation_id = reservation["reservation_id"]
    yen = await created(await new_refund(http, agent, reservation_id=reservation_id,
                                         amount={"amount": "5000", "currency": "JPY"}, state="posted"))
    assert yen["amount"] == {"amount": "5000", "currency": "JPY"}
    await problem(await http.post(f"/v1/products/{reservation['products'][0]['product_id']}/deposit-refunds",
                                  headers=partner.headers), 422, "refund_exceeds_charged")
    assert await books_balance(store, reservation_id) == {EUR: Decimal("600.00"), "JPY": Decimal("15000")}


async def test_settlement_routes_are_in_the_openapi_document(http: TestClient) -> None:
    paths = (await (await http.get("/v1/openapi.json")).json())["paths"]
    for path in ("/v1/payments", "/v1/payments/{payment_id}/confirm", "/v1/refunds", "/v1/refunds/{refund_id}",
                 "/v1/refunds/{refund_id}/post", "/v1/refunds/{refund_id}/reject",
                 "/v1/reservations/{reservation_id}/refund-procedure", "/v1/products/{product_id}/refund-procedure",
                 "/v1/cancellations/{code}/positions", "/v1/products/{product_id}/deposit-refunds"):
        assert path in paths, path


async def test_another_partner_sees_no_settlement(http: TestClient, book) -> None:  # type: ignore[no-untyped-def]
    owner = await new_partner(http, "Owner")
    stranger = await new_partner(http, "Stranger")
    reservation = await book(owner, flight(days_ahead=3))
    done = await cancel_automatically(http, owner, reservation["products"][0]["product_id"])
    assert await journal(http, stranger) == []
    assert (await (await http.get("/v1/refunds", headers=stranger.headers)).json())["items"] == []
    await problem(await http.get(f"/v1/cancellations/{done['code']}/positions", headers=stranger.headers), 404, "not_found")
    feed = (await (await http.get("/v1/events", headers=stranger.headers)).json())["items"]
    assert feed == []
