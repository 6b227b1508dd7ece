"""Bad input never answers 500 and never leaks a key (docs/api.md#errors), on SQLite and PostgreSQL:
deep JSON, huge numbers, NUL bytes, over-long strings on every body-taking route; NUL and absurd ids
in paths and queries; malformed Authorization headers sent raw; slow and aborted uploads. The
gateway is healthy afterwards, and no key appears in any log line or answer.

Then an attacker's tour of values that parse but do not fit (docs/api.md#conventions): times in the
years 1 and 9999 or as Unix seconds, datetimes for dates, forged cursors and signature timestamps
with numbers no column or clock holds, negative and absurd amounts, a reservation whose sale cannot
be recorded, two Idempotency-Keys: each a 422 (a 401 for a signature), and the largest sale
accepted is cancelled and recorded."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
import structlog
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from multidict import CIMultiDict

from api.app import resources
from api.endpoints import Endpoint
from api.page_cursors import next_cursor
from api.payments import PaymentsQuery
from api.refunds import RefundsQuery
from config.settings import Settings
from domain.signature import SIGNATURE_HEADER, sign
from store.accounts import Principal
from tests.api.conftest import ADMIN, Actor, cancel_with_a_quote, flight, hotel, reservation_body

BOUND_S = 30


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"AFTERSALES_HTTP_HEADER_TIMEOUT": "2s", "AFTERSALES_HTTP_BODY_TIMEOUT": "2s"}


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> Iterator[list[dict[str, Any]]]:
    """Every log line of the test: structlog's events and stdlib logging (aiohttp's own) alike."""
    caplog.set_level(logging.DEBUG)
    with structlog.testing.capture_logs() as captured:
        yield captured


def leaked(secret: str, logs: list[dict[str, Any]], caplog: pytest.LogCaptureFixture) -> bool:
    return secret in json.dumps(logs, default=str) or secret in caplog.text


def body_routes(settings: Settings) -> list[Endpoint]:
    return [e for r in resources(settings) for e in r.endpoints if e.body is not None]


def concrete(path: str) -> str:
    return re.sub(r"{\w+}", "ID-DOES-NOT-EXIST", path)


def caller(endpoint: Endpoint, partner: Actor, agent: Actor) -> dict[str, str]:
    if "partner" in endpoint.roles:
        return partner.headers
    if "agent" in endpoint.roles:
        return agent.headers
    return ADMIN


BAD_BODIES = {
    "nested arrays": b"[" * 1000 + b"]" * 1000,
    "nested objects": b'{"a":' * 1000 + b"1" + b"}" * 1000,
    "very deep": b"[" * 200_000,
    "huge integer": b'{"amount": ' + b"9" * 900_000 + b"}",
    "huge float": b'{"amount": 0.' + b"1" * 900_000 + b"}",
    "huge exponent": b'{"amount": 1e999999999}',
    "NaN": b'{"amount": NaN}',
    "NUL in a string": json.dumps({"name": "a\u0000b", "quote_id": "qt_\u0000", "url": "https://x.example/\u0000",
                                   "itinerary_id": "\u0000", "product_id": "\u0000", "principal_id": "\u0000",
                                   "code": "\u0000", "traveller_id": "\u0000"}).encode(),
    "NUL in a key": b'{"\\u0000": 1}',
    "over-long strings": json.dumps({"name": "x" * 20_000, "note": "y" * 20_000, "url": "https://x.example/" + "a" * 20_000,
                                     "quote_id": "q" * 20_000, "principal_id": "p" * 20_000}).encode(),
    "not UTF-8": b'{"name": "\xff\xfe"}',
}


@pytest.mark.parametrize("case", BAD_BODIES)
async def test_bad_bodies_on_every_route_are_4xx(http: TestClient, partner: Actor, agent: Actor, settings: Settings,
                                                 logs: list[dict[str, Any]], caplog: pytest.LogCaptureFixture,
                                                 case: str) -> None:
    for endpoint in body_routes(settings):
        response = await http.request(endpoint.method, concrete(endpoint.path), data=BAD_BODIES[case],
                                      headers={**caller(endpoint, partner, agent), "Content-Type": "application/json"})
        text = await response.text()
        assert 400 <= response.status < 500, (case, endpoint.method, endpoint.path, response.status, text)
        assert response.content_type == "application/problem+json" and "Traceback" not in text
    assert not [entry for entry in logs if entry.get("log_level") == "error"]
    assert not leaked(partner.key, logs, caplog)
    assert (await http.get("/healthz")).status == 200


async def test_nul_and_absurd_ids_in_paths_and_queries_are_4xx(http: TestClient, partner: Actor, agent: Actor,
                                                               settings: Settings) -> None:
    routes = [e for r in resources(settings) for e in r.endpoints if "{" in e.path]
    for endpoint in routes:
        for bad in ("%00", "ID%00X", "x" * 300, "%01%02", "%0d%0aFAKE", "\u00e9" * 50):
            path = re.sub(r"{\w+}", bad, endpoint.path)
            response = await http.request(endpoint.method, path, json={}, headers=caller(endpoint, partner, agent))
            # An id no object can have is 404 before anything else; an unusual but possible one reaches
            # the body's validation (422) or the lookup (404).
            expected = {404} if bad != "\u00e9" * 50 else {404, 422}
            assert response.status in expected, (endpoint.method, path, response.status, await response.text())
    for path, who in [("/v1/events?cursor=%00", partner), ("/v1/events?after=%00", partner),
                      ("/v1/events?limit=%00", partner), ("/v1/agent/cancellations?status=%00", agent),
                      ("/v1/agent/cancellations?cursor=%00", agent), ("/v1/events?cursor=" + "c" * 5000, partner),
                      ("/v1/events?limit=" + "9" * 5000, partner)]:
        response = await http.get(path, headers=who.headers)
        assert response.status == 422, (path, response.status, await response.text())
    response = await http.get("/v1/admin/api-keys?principal_id=%00", headers=ADMIN)
    assert response.status == 422
    assert (await http.get("/healthz")).status == 200


async def raw(http: TestClient, request: bytes) -> bytes:
    """Send bytes as they are (no client would send these) and read the answer until the server closes."""
    assert http.server.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", http.server.port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), BOUND_S)
    finally:
        writer.close()


async def test_malformed_authorization_is_never_logged_nor_echoed(http: TestClient, partner: Actor, agent: Actor,
                                                                  settings: Settings, logs: list[dict[str, Any]],
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    key = partner.key
    headers = [
        f"Authorization: Bearer {key}\x01".encode(),
        f"Authorization: Bearer \x7f{key}".encode(),
        f"Authorization: Bearer {key}\x00tail".encode(),
        f"Authorization: Bearer {key}".encode() + b"A" * 9000,
        f"Authorization: Bearer {key}\r Bearer".encode(),
        f"X-Forwarded-For: {key}".encode() + b"\x02",
        f"Authorization: Bearer {key}\xff\xfe".encode("latin-1"),
    ]
    for endpoint in [e for e in body_routes(settings)][:6] + [e for r in resources(settings) for e in r.endpoints
                                                               if e.method == "GET"][:3]:
        for header in headers:
            request = (f"{endpoint.method} {concrete(endpoint.path)} HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n".encode() + header
                       + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            answer = await raw(http, request)
            status = int(answer.split(b" ", 2)[1])
            assert 400 <= status < 500, answer[:300]
            assert key.encode() not in answer
            assert b"nosniff" in answer and b"aiohttp" not in answer
    assert not leaked(key, logs, caplog)
    assert (await http.get("/v1/events", headers=partner.headers)).status == 200
    assert (await http.get("/healthz")).status == 200


async def test_slow_headers_are_cut_off(http: TestClient) -> None:
    # Headers that never end: the connection is closed once the header timeout has passed.
    answer = await raw(http, b"POST /v1/events HTTP/1.1\r\nHost: gateway\r\nX-Slow: 1\r\n")
    assert answer == b"" or b" 408 " in answer.split(b"\r\n", 1)[0]


async def test_a_trickled_body_is_408_and_an_aborted_upload_is_logged_as_such(
    http: TestClient, partner: Actor, logs: list[dict[str, Any]]
) -> None:
    head = (f"POST /v1/sandbox/reservations HTTP/1.1\r\nHost: gateway\r\nAuthorization: Bearer {partner.key}\r\n"
            "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n").encode()
    answer = await raw(http, head + b'{"status"')
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"request_timeout" in answer

    aborted = asyncio.Event()
    with structlog.testing.capture_logs(processors=[_spy(aborted)]) as seen:
        assert http.server.port is not None
        _reader, writer = await asyncio.open_connection("127.0.0.1", http.server.port)
        writer.write(head + b'{"status": "confirmed"')
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        await asyncio.wait_for(aborted.wait(), BOUND_S)
    assert not [entry for entry in seen if entry["event"] == "unhandled_error"]
    request_lines = [entry for entry in seen if entry["event"] == "request"]
    assert request_lines and request_lines[-1]["status"] == 499
    assert (await http.get("/healthz")).status == 200


def _spy(aborted: asyncio.Event) -> Any:
    def spy(logger: object, method: str, event: dict[str, Any]) -> dict[str, Any]:
        if event.get("event") == "request" and event.get("status") == 499:
            aborted.set()
        return event

    return spy


async def test_every_answer_carries_the_security_headers(http: TestClient, partner: Actor) -> None:
    answers = {
        "authenticated": await http.get("/v1/events", headers=partner.headers),
        "problem": await http.get("/v1/events"),
        "unknown route": await http.get("/nothing"),
        "health": await http.get("/healthz"),
        "document": await http.get("/v1/openapi.json"),
        "page": await http.get("/docs"),
        "script": await http.get("/docs.js"),
    }
    for name, response in answers.items():
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert response.headers["Server"] == "aftersales", name
        assert "Cache-Control" in response.headers, name
    assert answers["authenticated"].headers["Cache-Control"] == "no-store"
    policy = answers["page"].headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy and "unsafe-inline" not in policy
    assert "default-src 'none'" in policy and "frame-ancestors 'none'" in policy
    page = await answers["page"].text()
    assert "<script>" not in page and "<style>" not in page  # nothing inline: the policy allows none


# --- an attacker's tour: values that parse but do not fit (docs/api.md#conventions) ----------------


@dataclass(frozen=True)
class Supplier:
    key: str
    secret: str


@pytest_asyncio.fixture
async def supplier(http: TestClient) -> Supplier:
    response = await http.post("/v1/admin/suppliers", json={"name": "ZZ Air", "carriers": ["ZZ"]}, headers=ADMIN)
    assert response.status == 201, await response.text()
    created = await response.json()
    return Supplier(created["api_key"], created["signing_secret"])


async def assert_invalid(response: ClientResponse, field: str, status: int = 422,
                         code: str = "validation_failed") -> None:
    body = await response.json()
    assert response.status == status and body["code"] == code, (response.status, body)
    if field:
        assert field in [error["field"] for error in body["errors"]], body["errors"]


def segment(departure: Any, arrival: Any) -> dict[str, Any]:
    return {"origin": "MAD", "destination": "CDG", "departure": departure, "arrival": arrival, "flight_number": "ZZ101"}


def with_segment(departure: Any, arrival: Any) -> dict[str, Any]:
    return {**flight(), "segments": [segment(departure, arrival)]}


def other(starts_at: Any, ends_at: Any) -> dict[str, Any]:
    product = {key: value for key, value in flight().items() if key not in ("carrier", "segments")}
    return {**product, "kind": "other", "name": "Transfer", "starts_at": starts_at, "ends_at": ends_at}


def priced(product: dict[str, Any], amount: str) -> dict[str, Any]:
    return {**product, "price": {"amount": amount, "currency": "EUR"}}


TIMES_OUT_OF_RANGE = {
    "year 1 east of UTC": ("0001-01-01T00:30:00+01:00", "0001-01-01T02:00:00+01:00"),
    "year 9999 west of UTC": ("9999-12-31T22:00:00-01:00", "9999-12-31T23:30:00-01:00"),
    "Unix seconds as a number": (1_800_000_000, 1_800_007_200),
    "Unix seconds as a string": ("1800000000", "1800007200"),
    "no offset": ("2027-03-20T08:00:00", "2027-03-20T10:00:00"),
    "no seconds": ("2027-03-20T08:00+01:00", "2027-03-20T10:00+01:00"),
}


@pytest.mark.parametrize("case", TIMES_OUT_OF_RANGE)
async def test_sold_times_out_of_range_or_not_rfc_3339_are_422(http: TestClient, partner: Actor, case: str) -> None:
    departure, arrival = TIMES_OUT_OF_RANGE[case]
    for product, field in ((with_segment(departure, arrival), "products[0].segments[0].departure"),
                           (other(departure, arrival), "products[0].starts_at")):
        response = await http.post("/v1/sandbox/reservations", json=reservation_body(product), headers=partner.headers)
        await assert_invalid(response, field)


@pytest.mark.parametrize("check_in", ["2026-12-20T10:00:00+01:00", "2026-12-20T00:00:00", "20261220", "0001-01-01",
                                      "9999-12-31", 1_800_000_000])
async def test_a_date_is_yyyy_mm_dd_within_range(http: TestClient, partner: Actor, check_in: Any) -> None:
    product = {**hotel(), "check_in": check_in, "check_out": "2027-01-10"}
    response = await http.post("/v1/sandbox/reservations", json=reservation_body(product), headers=partner.headers)
    await assert_invalid(response, "products[0].check_in")


async def test_change_searches_out_of_range_are_422(http: TestClient, partner: Actor, book: Any) -> None:
    product_id = (await book(partner, flight()))["products"][0]["product_id"]
    for dates in ({"departure_date": "9999-12-31"}, {"departure_date": "0001-01-01"},
                  {"departure_date": "2027-01-10", "return_date": "9999-12-31"},
                  {"departure_date": "2027-01-10T10:00:00+01:00"}):
        response = await http.post(f"/v1/products/{product_id}/change-alternatives", json=dates, headers=partner.headers)
        await assert_invalid(response, next(iter(reversed(dates))))


@pytest.mark.parametrize("query", ["start_time=0001-01-01T00:00:00%2B01:00", "end_time=9999-12-31T23:59:59-01:00",
                                   "start_time=1800000000", "end_time=2027-01-01"])
async def test_payment_filters_out_of_range_are_422(http: TestClient, partner: Actor, query: str) -> None:
    response = await http.get(f"/v1/payments?{query}", headers=partner.headers)
    await assert_invalid(response, f"query.{query.split('=')[0]}")


async def test_forged_cursors_with_huge_numbers_are_422(http: TestClient, partner: Actor, agent: Actor) -> None:
    caller = Principal("partner", partner.id)
    for huge in (2**31, 10**30, 10**120):
        response = await http.get(f"/v1/payments?cursor={next_cursor(huge, PaymentsQuery().scope(caller))}",
                                  headers=partner.headers)
        await assert_invalid(response, "query.cursor")
        scope = {**RefundsQuery().model_dump(exclude={"limit", "cursor", "fields"}), "caller": f"partner:{partner.id}"}
        response = await http.get(f"/v1/refunds?cursor={next_cursor(huge, scope)}", headers=partner.headers)
        await assert_invalid(response, "query.cursor")
    # The agent queue's cursor is a deadline in microseconds and a code: digits no datetime holds, or
    # digits int() takes but that are not ASCII.
    for forged in (f"{10**30}.CAN-00000000", f"{10**120}.CAN-00000000", "\u00b2.CAN-00000000",
                   "\u0661\u0662.CAN-00000000", "-1.CAN-00000000"):
        response = await http.get("/v1/agent/cancellations", params={"cursor": forged}, headers=agent.headers)
        await assert_invalid(response, "query.cursor")


async def test_signatures_with_odd_timestamps_are_401(http: TestClient, partner: Actor, supplier: Supplier,
                                                      book: Any) -> None:
    product_id = (await book(partner, flight()))["products"][0]["product_id"]
    body = json.dumps({"change_id": "CHG-1", "product_id": product_id, "kind": "flight_cancelled"}).encode()
    valid = sign(supplier.secret, int(time.time()), body)
    digest = valid.split(",", 1)[1]
    for timestamp in ("\u00b2", "\u0661\u0662\u0663", "9" * 5000, "1" + "0" * 40, "-5", ""):
        response = await http.post("/v1/supplier/schedule-changes", data=body, headers={
            "Authorization": f"Bearer {supplier.key}", SIGNATURE_HEADER: f"t={timestamp},{digest}",
            "Content-Type": "application/json"})
        await assert_invalid(response, "", 401, "invalid_signature")


async def test_supplier_pushes_out_of_range_are_422(http: TestClient, partner: Actor, supplier: Supplier,
                                                    book: Any) -> None:
    product_id = (await book(partner, flight()))["products"][0]["product_id"]
    pushes = [
        ({"action_time_limit": "9999-12-31T23:00:00-01:00"}, "action_time_limit"),
        ({"action_time_limit": 1_800_000_000}, "action_time_limit"),
        ({"kind": "time_change", "proposed_segments": [segment("0001-01-01T00:30:00+01:00", "0001-01-01T02:00:00+01:00")]},
         "proposed_segments[0].departure"),
    ]
    for n, (change, field) in enumerate(pushes):
        body = json.dumps({"change_id": f"CHG-{n}", "product_id": product_id, "kind": "flight_cancelled", **change}).encode()
        response = await http.post("/v1/supplier/schedule-changes", data=body, headers={
            "Authorization": f"Bearer {supplier.key}", SIGNATURE_HEADER: sign(supplier.secret, int(time.time()), body),
            "Content-Type": "application/json"})
        await assert_invalid(response, field)


MONEY_OUT_OF_RANGE = {
    "a negative fare": ([priced(flight(), "-10.00")], "products[0].price.amount"),
    "a fare of minus zero": ([priced(flight(), "-0")], "products[0].price.amount"),
    "a fare of zero": ([priced(flight(), "0.00")], "products[0].price.amount"),
    "a negative change fee": ([{**flight(), "change_policy": {"changeable": True, "change_fee": {"amount": "-5",
                                                                                                   "currency": "EUR"}}}],
                              "products[0].change_policy.change_fee.amount"),
    "a negative option price": ([{**flight(), "special_request_options": [
        {"code": "WCHR", "name": "Wheelchair", "price": {"amount": "-1", "currency": "EUR"}}]}],
        "products[0].special_request_options[0].price.amount"),
    "a deposit of minus zero": ([{**flight(), "deposit": {"amount": "-0", "currency": "EUR"}}],
                                "products[0].deposit.amount"),
    "a fare of 13 integer digits": ([priced(flight(), "1000000000000.00")], "products[0].price.amount"),
    "a fare of 18 integer digits": ([priced(flight(), "999999999999999999.99")], "products[0].price.amount"),
    "a deposit of 13 integer digits": ([{**flight(), "deposit": {"amount": "1000000000000", "currency": "EUR"}}],
                                       "products[0].deposit.amount"),
    "two fares that each fit but not together": ([priced(flight(), "999999999999.99"), priced(flight(), "0.01")],
                                                 "products"),
    "a fare and a deposit that do not fit together": (
        [{**priced(flight(), "600000000000.00"), "deposit": {"amount": "400000000000.00", "currency": "EUR"}}],
        "products"),
}


@pytest.mark.parametrize("case", MONEY_OUT_OF_RANGE)
async def test_money_out_of_range_is_422(http: TestClient, partner: Actor, case: str) -> None:
    products, field = MONEY_OUT_OF_RANGE[case]
    response = await http.post("/v1/sandbox/reservations", json=reservation_body(*products), headers=partner.headers)
    await assert_invalid(response, field)


async def test_the_largest_reservation_accepted_is_cancelled_and_recorded(http: TestClient, partner: Actor,
                                                                         book: Any) -> None:
    # The attack that used to cancel at the supplier and then fail to record forever, at the bound:
    # fares in several currencies, each currency's sum the largest a reservation may carry.
    largest = [priced(flight(), "499999999999.99"), {**priced(flight(), "499999999999.99"), "deposit": {
        "amount": "0.01", "currency": "EUR"}}, {**flight(currency="JPY"), "price": {"amount": "999999999999",
                                                                                    "currency": "JPY"}}]
    reservation = await book(partner, *largest)
    for product in reservation["products"]:
        response = await cancel_with_a_quote(http, partner, product["product_id"])
        assert response.status == 200, await response.text()
        assert (await response.json())["status"] == "cancelled"
    payments = await (await http.get(f"/v1/payments?reservation_id={reservation['reservation_id']}&limit=200",
                                     headers=partner.headers)).json()
    refunds = [p for p in payments["items"] if p["category"] == "refund"]
    assert len(refunds) == 3
    procedure = await http.get(f"/v1/reservations/{reservation['reservation_id']}/refund-procedure",
                               headers=partner.headers)
    assert procedure.status == 200, await procedure.text()


async def test_two_idempotency_keys_on_one_request_are_422(http: TestClient, partner: Actor) -> None:
    headers = CIMultiDict([*partner.headers.items(), ("Idempotency-Key", "first"), ("Idempotency-Key", "second")])
    response = await http.post("/v1/sandbox/reservations", json=reservation_body(), headers=headers)
    await assert_invalid(response, "Idempotency-Key")
    # Nothing was created under either key: each alone still creates.
    alone = await http.post("/v1/sandbox/reservations", json=reservation_body(),
                            headers={**partner.headers, "Idempotency-Key": "first"})
    assert alone.status == 201 and "Idempotent-Replayed" not in alone.headers
