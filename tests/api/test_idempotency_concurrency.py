"""Idempotency under concurrency (docs/api.md#idempotency), on SQLite and PostgreSQL: ten simultaneous
requests with the same Idempotency-Key and body, as a client retrying on a timeout sends them,
execute once for every kind of mutating endpoint; the other nine get the first answer back."""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from api import middlewares
from api.middlewares import claim_lease
from config.settings import Settings
from store.idempotency import Claim, InProgress, StoredResponse
from store.repositories import Store
from store.schema import api_keys, events, flows, idempotency_records, partners, quotes, reservations
from tests.api.conftest import ADMIN, Actor, cancel_with_a_quote, flight, hotel, reservation_body
from tests.api.test_foundation import problem

TWINS = 10


async def ten(http: TestClient, method: str, path: str, headers: dict[str, str], body: Any = None) -> list[tuple[int, Any]]:
    """The same request TWINS times at once, with one Idempotency-Key; (status, body) of each answer."""
    keyed = {**headers, "Idempotency-Key": f"retry-{uuid.uuid4().hex}"}

    async def one() -> tuple[int, Any]:
        response = await http.request(method, path, json=body if body is not None else {}, headers=keyed)
        return response.status, await response.json()

    return list(await asyncio.gather(*(one() for _ in range(TWINS))))


def answered_once(answers: list[tuple[int, Any]], expected: int, *, secret_fields: tuple[str, ...] = ()) -> Any:
    """Every twin got the first answer (secrets shown once: replays carry null instead)."""
    statuses = {status for status, _ in answers}
    assert statuses == {expected}, answers
    bodies = [{k: v for k, v in body.items() if k not in secret_fields} for _, body in answers]
    assert all(body == bodies[0] for body in bodies), answers
    if secret_fields:
        shown = [body for _, body in answers if all(body[name] is not None for name in secret_fields)]
        assert len(shown) == 1, answers  # the one execution's answer; every replay has null there
        return shown[0]
    return answers[0][1]


async def count(store: Store, table: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    async with store.engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table).where(*where))).scalar_one())


async def test_creations_in_the_store_run_once(http: TestClient, store: Store, partner: Actor) -> None:
    answers = await ten(http, "POST", "/v1/sandbox/reservations", partner.headers, reservation_body())
    created = answered_once(answers, 201)
    assert await count(store, reservations, reservations.c.partner_id == partner.id) == 1
    assert created["reservation_id"].startswith("RES-")

    name = f"Twins {uuid.uuid4().hex[:6]}"
    answers = await ten(http, "POST", "/v1/admin/partners", ADMIN, {"name": name})
    first = answered_once(answers, 201, secret_fields=("api_key", "webhook_secret"))
    assert await count(store, partners, partners.c.name == name) == 1
    # The key shown once works; the database never kept it in a replayable answer.
    assert (await http.get("/v1/events", headers={"Authorization": f"Bearer {first['api_key']}"})).status == 200
    async with store.engine.connect() as conn:
        stored = [row.body for row in (await conn.execute(sa.select(idempotency_records.c.body))).all()]
    assert not any(first["api_key"] in (body or "") or first["webhook_secret"] in (body or "") for body in stored)


async def test_quotes_and_flow_starts_run_once(http: TestClient, store: Store, partner: Actor, book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, flight(days_ahead=30))
    product_id = reservation["products"][0]["product_id"]

    quote = answered_once(await ten(http, "POST", f"/v1/products/{product_id}/cancellation-quotes", partner.headers), 201)
    assert await count(store, quotes, quotes.c.product_id == product_id) == 1

    answers = await ten(http, "POST", f"/v1/products/{product_id}/cancellations", partner.headers,
                        {"quote_id": quote["quote_id"]})
    cancelled = answered_once(answers, 200)
    assert cancelled["status"] == "cancelled"
    assert await count(store, flows, flows.c.product_id == product_id, flows.c.kind == "cancellation") == 1
    assert await count(store, events, events.c.flow_code == cancelled["code"],
                       events.c.type == "cancellation.completed") == 1


async def test_special_requests_and_change_contexts_start_once(http: TestClient, store: Store, partner: Actor,
                                                               book) -> None:  # type: ignore[no-untyped-def]
    changeable = flight(days_ahead=40)
    reservation = await book(partner, changeable, flight(days_ahead=45))
    first_id, second_id = (p["product_id"] for p in reservation["products"])

    answers = await ten(http, "POST", f"/v1/products/{second_id}/special-requests", partner.headers,
                        {"code": "WCHR", "traveller_id": "T1"})
    started = answered_once(answers, 202)
    assert await count(store, flows, flows.c.product_id == second_id, flows.c.kind == "special_request") == 1
    assert started["request_id"].startswith("SR-")

    day = changeable["segments"][0]["departure"][:10]
    offered = answered_once(await ten(http, "POST", f"/v1/products/{first_id}/change-alternatives", partner.headers,
                                      {"departure_date": day}), 200)
    context = answered_once(await ten(http, "POST", "/v1/change-contexts", partner.headers,
                                      {"itinerary_id": offered["items"][0]["itinerary_id"]}), 201)
    assert await count(store, flows, flows.c.product_id == first_id, flows.c.kind == "change") == 1
    assert context["code"].startswith("CF-")


async def test_updates_to_a_running_flow_apply_once(http: TestClient, store: Store, partner: Actor, agent: Actor,
                                                    book) -> None:  # type: ignore[no-untyped-def]
    reservation = await book(partner, hotel())
    product_id = reservation["products"][0]["product_id"]
    started = await cancel_with_a_quote(http, partner, product_id)
    code = (await started.json())["code"]

    agent_quote = {"penalty": {"amount": "100.00", "currency": "EUR"}, "refund": {"amount": "500.00", "currency": "EUR"}}
    quoted = answered_once(await ten(http, "POST", f"/v1/agent/cancellations/{code}/quote", agent.headers,
                                     agent_quote), 200)
    assert quoted["status"] == "awaiting_partner_decision"
    assert await count(store, events, events.c.flow_code == code, events.c.type == "cancellation.quoted") == 1

    decided = answered_once(await ten(http, "PATCH", f"/v1/cancellations/{code}", partner.headers,
                                      {"decision": "reject"}), 200)
    assert decided["status"] == "rejected"
    assert await count(store, events, events.c.flow_code == code, events.c.type == "cancellation.rejected") == 1


async def test_key_rotation_runs_once(http: TestClient, store: Store, partner: Actor) -> None:
    answers = await ten(http, "POST", "/v1/partner/api-keys/rotate", partner.headers)
    rotated = answered_once(answers, 201, secret_fields=("api_key",))
    assert await count(store, api_keys, api_keys.c.principal_id == partner.id) == 2
    assert (await http.get("/v1/events", headers={"Authorization": f"Bearer {rotated['api_key']}"})).status == 200


async def test_a_twin_gets_the_first_answer_or_409_and_another_body_422(
    http: TestClient, store: Store, partner: Actor, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A claim held by a request that is still running, written as the gateway writes it.
    owner, key = f"partner:{partner.id}", "held-" + uuid.uuid4().hex
    path, body = "/v1/sandbox/reservations", json.dumps(reservation_body()).encode()
    held = await store.idempotency.claim(owner, key, fingerprint("POST", path, body), claim_lease(settings))
    assert isinstance(held, Claim)
    headers = {**partner.headers, "Idempotency-Key": key, "Content-Type": "application/json"}

    other = await http.post(path, data=json.dumps(reservation_body(flight(days_ahead=60))), headers=headers)
    await problem(other, 422, "idempotency_key_reused")
    monkeypatch.setattr(middlewares, "twin_wait", lambda settings: 0.3)
    await problem(await http.post(path, data=body, headers=headers), 409, "idempotency_key_in_use")

    # Once the first request answers, a twin gets that answer and runs nothing.
    assert await store.idempotency.save(owner, key, held, 201, json.dumps({"reservation_id": "RES-FIRSTANSWER"}))
    replayed = await http.post(path, data=body, headers=headers)
    assert replayed.status == 201 and replayed.headers["Idempotent-Replayed"] == "true"
    assert (await replayed.json())["reservation_id"] == "RES-FIRSTANSWER"
    assert await count(store, reservations, reservations.c.partner_id == partner.id) == 0


async def test_a_claim_left_by_a_dead_request_is_taken_over_after_its_lease(
    http: TestClient, store: Store, partner: Actor, settings: Settings
) -> None:
    owner, key = f"partner:{partner.id}", "dead-" + uuid.uuid4().hex
    path, body = "/v1/sandbox/reservations", json.dumps(reservation_body()).encode()
    dead = await store.idempotency.claim(owner, key, fingerprint("POST", path, body), claim_lease(settings))
    assert isinstance(dead, Claim)
    assert isinstance(await store.idempotency.claim(owner, key, fingerprint("POST", path, body), claim_lease(settings)),
                      InProgress)
    # The request died long ago: its claim is older than the lease.
    async with store.engine.begin() as conn:
        await conn.execute(idempotency_records.update().where(idempotency_records.c.key == key)
                           .values(created_at=datetime.now(timezone.utc) - claim_lease(settings) - timedelta(seconds=1)))

    response = await http.post(path, data=body, headers={**partner.headers, "Idempotency-Key": key,
                                                         "Content-Type": "application/json"})
    assert response.status == 201, await response.text()
    assert isinstance(await store.idempotency.find(owner, key), StoredResponse)
    # The dead request, were it to finish now, cannot overwrite the answer.
    assert not await store.idempotency.save(owner, key, dead, 201, "{}")


async def test_no_key_or_no_auth_writes_nothing(http: TestClient, store: Store, partner: Actor) -> None:
    before = await count(store, idempotency_records)
    key = {"Idempotency-Key": "anonymous-" + uuid.uuid4().hex}
    await problem(await http.post("/v1/sandbox/reservations", json=reservation_body(), headers=key), 401, "unauthorized")
    await problem(await http.post("/v1/sandbox/reservations", json=reservation_body(),
                                  headers={**key, "Authorization": "Bearer nope"}), 401, "unauthorized")
    await problem(await http.post("/v1/admin/agents", json={"name": "x"}, headers={**key, **partner.headers}),
                  403, "forbidden")
    await problem(await http.post("/v1/nothing-here", json={}, headers={**key, **partner.headers}), 404, "not_found")
    unkeyed = await http.post("/v1/sandbox/reservations", json=reservation_body(), headers=partner.headers)
    assert unkeyed.status == 201
    assert await count(store, idempotency_records) == before


async def test_expired_records_are_purged(store: Store) -> None:
    async with store.engine.begin() as conn:
        await conn.execute(idempotency_records.insert().values(
            principal="partner:ptn_old", key="old", request_hash="0" * 64, status=201, body="{}",
            created_at=datetime.now(timezone.utc) - timedelta(days=3)))
    assert await store.idempotency.purge_expired() >= 1
    assert await store.idempotency.find("partner:ptn_old", "old") is None


def fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()
