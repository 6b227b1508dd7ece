"""The gateway's conventions (docs/api.md) over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import ADMIN, Actor, flight, reservation_body


async def problem(response, status: int, code: str) -> dict:  # type: ignore[no-untyped-def]
    assert response.status == status, await response.text()
    assert response.content_type == "application/problem+json"
    body = await response.json()
    assert body["code"] == code and body["status"] == status and body["type"] == f"/problems/{code}"
    assert "Traceback" not in json.dumps(body)
    return body


async def test_healthz_checks_temporal_and_database(http: TestClient) -> None:
    response = await http.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok", "temporal": "ok", "database": "ok"}
    assert response.headers["X-Request-Id"]


async def test_request_id_is_echoed_when_sane(http: TestClient) -> None:
    response = await http.get("/healthz", headers={"X-Request-Id": "abc-123"})
    assert response.headers["X-Request-Id"] == "abc-123"
    response = await http.get("/healthz", headers={"X-Request-Id": "bad id\twith tab"})
    assert response.headers["X-Request-Id"] != "bad id\twith tab"


async def test_openapi_is_generated_from_the_request_models(http: TestClient) -> None:
    response = await http.get("/v1/openapi.json")
    assert response.status == 200
    spec = await response.json()
    assert spec["openapi"].startswith("3.1")
    operation = spec["paths"]["/v1/sandbox/reservations"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.endswith("/ReservationSpec")
    assert "Money" in spec["components"]["schemas"]
    assert "/v1/admin/partners" in spec["paths"]
    docs = await http.get("/docs")
    assert docs.status == 200 and "openapi.json" in await docs.text()


async def test_admin_creates_partner_and_agent_with_keys_shown_once(http: TestClient) -> None:
    response = await http.post("/v1/admin/partners", json={"name": "Acme", "webhook_url": "http://127.0.0.1:1/x"},
                               headers=ADMIN)
    created = await response.json()
    assert response.status == 201
    assert set(created) == {"partner_id", "name", "api_key", "webhook_url", "webhook_secret"}
    agent = await http.post("/v1/admin/agents", json={"name": "Grace"}, headers=ADMIN)
    assert agent.status == 201 and set(await agent.json()) == {"agent_id", "name", "api_key"}


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("POST", "/v1/admin/partners", {"admin"}),
        ("POST", "/v1/admin/agents", {"admin"}),
        ("PUT", "/v1/partner/webhook", {"partner"}),
        ("POST", "/v1/sandbox/reservations", {"partner"}),
    ],
)
async def test_auth_matrix(http: TestClient, partner: Actor, agent: Actor, method: str, path: str,
                           allowed: set[str]) -> None:
    callers = {"admin": ADMIN, "partner": partner.headers, "agent": agent.headers}
    for role, headers in callers.items():
        response = await http.request(method, path, json={}, headers=headers)
        if role in allowed:
            assert response.status == 422, (role, await response.text())  # past auth, stopped by validation
        else:
            await problem(response, 403, "forbidden")
    await problem(await http.request(method, path, json={}), 401, "unauthorized")
    await problem(await http.request(method, path, json={}, headers={"Authorization": "Bearer nope"}), 401,
                  "unauthorized")
    await problem(await http.request(method, path, json={}, headers={"Authorization": "Basic abc"}), 401,
                  "unauthorized")


async def test_partner_reads_own_reservation_and_never_another(http: TestClient, partner: Actor,
                                                                other_partner: Actor, agent: Actor, book) -> None:  # type: ignore[no-untyped-def]
    created = await book(partner)
    path = f"/v1/reservations/{created['reservation_id']}"
    mine = await http.get(path, headers=partner.headers)
    assert mine.status == 200
    body = await mine.json()
    assert body["reservation_id"] == created["reservation_id"] and body["flows"] == []
    assert [p["kind"] for p in body["products"]] == ["flight", "hotel"]
    assert body["products"][0]["price"] == {"amount": "240.00", "currency": "EUR"}
    assert "partner_id" not in body
    # Another partner: 404 exactly like an id that does not exist.
    theirs = await problem(await http.get(path, headers=other_partner.headers), 404, "not_found")
    missing = await problem(await http.get("/v1/reservations/RES-NOPE", headers=other_partner.headers), 404,
                            "not_found")
    assert theirs == missing
    assert (await http.get(path, headers=agent.headers)).status == 200
    await problem(await http.get(path), 401, "unauthorized")


async def test_money_is_exact_in_answers(http: TestClient, partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    jpy = flight(amount="1200", currency="JPY")
    kwd = flight(amount="1.25", currency="KWD")
    eur = flight(amount="240", currency="EUR")
    created = await book(partner, jpy, kwd, eur)
    prices = [p["price"] for p in created["products"]]
    assert prices == [
        {"amount": "1200", "currency": "JPY"},
        {"amount": "1.250", "currency": "KWD"},
        {"amount": "240.00", "currency": "EUR"},
    ]


@pytest.mark.parametrize(
    ("amount", "currency", "message_part"),
    [
        (240, "EUR", "not a number"),
        (240.5, "EUR", "not a number"),
        ("1.234", "EUR", "decimal places"),
        ("12.5", "JPY", "decimal places"),
        ("10", "XYZ", "currency"),
    ],
)
async def test_bad_money_is_422_with_the_field(http: TestClient, partner: Actor, amount: object, currency: str,
                                               message_part: str) -> None:
    product = flight()
    product["price"] = {"amount": amount, "currency": currency}
    response = await http.post("/v1/sandbox/reservations", json=reservation_body(product), headers=partner.headers)
    body = await problem(response, 422, "validation_failed")
    fields = {e["field"]: e["message"] for e in body["errors"]}
    field = "products[0].price.currency" if message_part == "currency" else "products[0].price.amount"
    assert field in fields, fields
    assert message_part in fields[field].lower() or message_part in json.dumps(fields).lower()


async def test_malformed_json_is_400(http: TestClient, partner: Actor) -> None:
    response = await http.post("/v1/sandbox/reservations", data=b'{"status": ', headers=partner.headers)
    await problem(response, 400, "malformed_json")
    response = await http.post("/v1/sandbox/reservations", data=b"\xff\xfe", headers=partner.headers)
    await problem(response, 400, "malformed_json")


async def test_body_over_one_mebibyte_is_413(http: TestClient, partner: Actor) -> None:
    big = json.dumps({"status": "confirmed", "padding": "x" * (1024 * 1024 + 10)})
    response = await http.post("/v1/sandbox/reservations", data=big, headers=partner.headers)
    await problem(response, 413, "payload_too_large")


async def test_unknown_route_and_method(http: TestClient) -> None:
    await problem(await http.get("/v1/nothing-here"), 404, "not_found")
    await problem(await http.delete("/v1/admin/partners", headers=ADMIN), 405, "method_not_allowed")


async def test_unknown_fields_and_bad_shapes_are_422(http: TestClient, partner: Actor) -> None:
    body = reservation_body()
    body["surprise"] = 1
    body["products"][0]["segments"][0]["arrival"] = body["products"][0]["segments"][0]["departure"]
    response = await http.post("/v1/sandbox/reservations", json=body, headers=partner.headers)
    errors = (await problem(response, 422, "validation_failed"))["errors"]
    assert {e["field"] for e in errors} >= {"surprise", "products[0].segments[0]"}
    response = await http.post("/v1/sandbox/reservations", json=[1, 2], headers=partner.headers)
    await problem(response, 422, "validation_failed")


async def test_idempotency_key_replays_and_refuses_reuse(http: TestClient, partner: Actor) -> None:
    headers = {**partner.headers, "Idempotency-Key": "create-1"}
    body = reservation_body()
    first = await http.post("/v1/sandbox/reservations", json=body, headers=headers)
    second = await http.post("/v1/sandbox/reservations", json=body, headers=headers)
    assert first.status == second.status == 201
    assert await first.json() == await second.json()
    assert second.headers.get("Idempotent-Replayed") == "true"
    other = reservation_body(flight(days_ahead=60))
    reused = await http.post("/v1/sandbox/reservations", json=other, headers=headers)
    await problem(reused, 422, "idempotency_key_reused")
    too_long = await http.post("/v1/sandbox/reservations", json=body,
                               headers={**partner.headers, "Idempotency-Key": "k" * 256})
    await problem(too_long, 422, "validation_failed")


async def test_idempotency_keys_are_per_caller(http: TestClient, partner: Actor, other_partner: Actor) -> None:
    body = reservation_body()
    mine = await http.post("/v1/sandbox/reservations", json=body,
                           headers={**partner.headers, "Idempotency-Key": "same"})
    theirs = await http.post("/v1/sandbox/reservations", json=body,
                             headers={**other_partner.headers, "Idempotency-Key": "same"})
    assert mine.status == theirs.status == 201
    assert (await mine.json())["reservation_id"] != (await theirs.json())["reservation_id"]


async def test_partner_sets_its_webhook(http: TestClient, partner: Actor) -> None:
    response = await http.put("/v1/partner/webhook", json={"url": "https://partner.example/hooks"},
                              headers=partner.headers)
    assert response.status == 200 and await response.json() == {"url": "https://partner.example/hooks"}
    bad = await http.put("/v1/partner/webhook", json={"url": "not a url"}, headers=partner.headers)
    await problem(bad, 422, "validation_failed")


async def test_healthz_names_the_failing_part(settings, store) -> None:  # type: ignore[no-untyped-def]
    from aiohttp.test_utils import TestServer
    from temporalio.client import Client
    from temporalio.contrib.pydantic import pydantic_data_converter

    from api.app import create_app

    # Nothing listens on port 1: Temporal is "down" for this gateway (its reconciler's starts too).
    unreachable = await Client.connect("127.0.0.1:1", lazy=True, data_converter=pydantic_data_converter)
    async with TestClient(TestServer(create_app(settings, store=store, temporal=unreachable))) as client:
        response = await client.get("/healthz")
        assert response.status == 503
        assert await response.json() == {"status": "degraded", "temporal": "unavailable", "database": "ok"}


async def test_keys_and_secrets_never_reach_the_request_log(http: TestClient, capsys) -> None:  # type: ignore[no-untyped-def]
    response = await http.post("/v1/admin/partners", json={"name": "Quiet"}, headers=ADMIN)
    created = await response.json()
    await http.get("/healthz", headers={"Authorization": f"Bearer {created['api_key']}"})
    out = capsys.readouterr().out
    assert "request" in out and "/v1/admin/partners" in out
    for secret in (created["api_key"], created["webhook_secret"], "sandbox-admin-key"):
        assert secret not in out
