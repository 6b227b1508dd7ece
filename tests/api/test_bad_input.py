"""Bad input never answers 500 and never leaks a key (docs/api.md#errors), on SQLite and PostgreSQL:
deep JSON, huge numbers, NUL bytes, over-long strings on every body-taking route; NUL and absurd ids
in paths and queries; malformed Authorization headers sent raw; slow and aborted uploads. The
gateway is healthy afterwards, and no key appears in any log line or answer."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from aiohttp.test_utils import TestClient

from api.app import resources
from api.endpoints import Endpoint
from config.settings import Settings
from tests.api.conftest import ADMIN, Actor

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
