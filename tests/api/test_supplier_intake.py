"""Supplier pushes over HTTP (docs/api.md#supplier-pushes), in production and in sandbox mode: the key and
the signature over the raw body, the carriers bound to the key, roles, duplicates (also concurrent
ones) and the airline's action time limit."""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from domain.products import ReservationSpec
from domain.signature import sign
from store.repositories import Store
from tests.api.conftest import Actor, flight, hotel, new_partner, reservation_body
from tests.api.test_foundation import problem
from tests.api.test_rescheduling import Webhook, accept, reservation

BOUND_S = 60
PRODUCTION_ADMIN_KEY = "a-production-admin-key-0123456789"


@pytest.fixture(params=["production", "sandbox"])
def settings_overrides(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "production":
        return {"AFTERSALES_ENV": "production", "AFTERSALES_ADMIN_KEY": PRODUCTION_ADMIN_KEY}
    return {"AFTERSALES_ENV": "sandbox"}


@pytest.fixture
def admin(settings_overrides: dict[str, str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings_overrides.get('AFTERSALES_ADMIN_KEY', 'sandbox-admin-key')}"}


@dataclass(frozen=True)
class SupplierActor:
    id: str
    key: str
    secret: str
    carriers: list[str]


async def new_supplier(http: TestClient, admin: dict[str, str], carriers: list[str], name: str = "ZZ Airways") -> SupplierActor:
    response = await http.post("/v1/admin/suppliers", json={"name": name, "carriers": carriers}, headers=admin)
    assert response.status == 201, await response.text()
    body = await response.json()
    assert set(body) == {"supplier_id", "name", "carriers", "api_key", "signing_secret"}
    assert body["carriers"] == carriers and body["name"] == name
    return SupplierActor(body["supplier_id"], body["api_key"], body["signing_secret"], carriers)


def signed(supplier: SupplierActor, body: dict[str, Any], *, at: float | None = None,
           secret: str | None = None) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    stamp = int(time.time() if at is None else at)
    return raw, {
        "Authorization": f"Bearer {supplier.key}",
        "Content-Type": "application/json",
        "Aftersales-Signature": sign(secret or supplier.secret, stamp, raw),
    }


async def push(http: TestClient, supplier: SupplierActor, body: dict[str, Any], **signing: Any):  # type: ignore[no-untyped-def]
    raw, headers = signed(supplier, body, **signing)
    return await http.post("/v1/supplier/schedule-changes", data=raw, headers=headers)


async def pushed(http: TestClient, supplier: SupplierActor, body: dict[str, Any]) -> str:
    response = await push(http, supplier, body)
    assert response.status == 202, await response.text()
    answer = await response.json()
    assert answer["status"] == "received" and answer["code"].startswith("RS-")
    return str(answer["code"])


def time_change(product: dict[str, Any], change_id: str, minutes: int = 90, **extra: Any) -> dict[str, Any]:
    moved = [{**segment,
              "departure": (datetime.fromisoformat(segment["departure"]) + timedelta(minutes=minutes)).isoformat(),
              "arrival": (datetime.fromisoformat(segment["arrival"]) + timedelta(minutes=minutes)).isoformat()}
             for segment in product["segments"]]
    return {"change_id": change_id, "product_id": product["product_id"], "kind": "time_change",
            "proposed_segments": moved, "action_time_limit": None, **extra}


@dataclass
class PullFeed:
    """The partner's events as a partner without a webhook reads them (``GET /v1/events``). In
    production a webhook on 127.0.0.1 is refused (docs/triggers.md#where-triggers-may-go), so the
    production runs read the feed; an event is read once its flow's workflow shows it was stored."""

    http: TestClient
    partner: Actor
    temporal: Client
    seen: list[dict[str, Any]] = field(default_factory=list)

    async def event(self, event_type: str, code: str) -> dict[str, Any]:
        # rescheduling.detected is stored with awaiting_partner_action, just before the decision timer starts.
        assert event_type == "rescheduling.detected"
        history = self.temporal.get_workflow_handle(code).fetch_history_events(wait_new_event=True)
        async with asyncio.timeout(BOUND_S):
            async for history_event in history:
                if history_event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                    break
        feed = await (await self.http.get("/v1/events?limit=200", headers=self.partner.headers)).json()
        self.seen = feed["items"]
        [found] = [e for e in self.seen if e["type"] == event_type and e["data"]["code"] == code]
        return dict(found)

    def event_types(self) -> list[str]:
        return [e["type"] for e in self.seen]


@dataclass(frozen=True)
class Booking:
    partner: Actor
    webhook: Webhook | PullFeed
    reservation_id: str
    products: list[dict[str, Any]]


@pytest_asyncio.fixture
async def booking(  # type: ignore[no-untyped-def]
    http: TestClient, store: Store, admin: dict[str, str], settings_overrides: dict[str, str], temporal_env
) -> AsyncIterator[Booking]:
    """A partner with a webhook receiver (the pull feed in production) and a reservation of a ZZ flight,
    a YY flight and a hotel, booked as production books it (in the store: there is no sandbox supplier there)."""
    created = await http.post("/v1/admin/partners", json={"name": "Hooked Travel"}, headers=admin)
    assert created.status == 201
    body = await created.json()
    partner = Actor(body["partner_id"], body["api_key"], body)
    spec = ReservationSpec.model_validate(reservation_body(flight(carrier="ZZ"), flight(carrier="YY"), hotel()))
    if settings_overrides.get("AFTERSALES_ENV") == "production":
        reservation_id = await store.reservations.create(partner.id, spec, random.Random())
        view = await reservation(http, partner, reservation_id)
        yield Booking(partner, PullFeed(http, partner, temporal_env.client), reservation_id, view["products"])
        return
    async with Webhook(secret=body["webhook_secret"]) as webhook:
        assert (await http.put("/v1/partner/webhook", json={"url": webhook.url}, headers=partner.headers)).status == 200
        reservation_id = await store.reservations.create(partner.id, spec, random.Random())
        view = await reservation(http, partner, reservation_id)
        yield Booking(partner, webhook, reservation_id, view["products"])


async def test_admin_registers_a_supplier_whose_key_is_bound_to_its_carriers(
    http: TestClient, admin: dict[str, str], booking: Booking
) -> None:
    supplier = await new_supplier(http, admin, ["ZZ", "XZ"])
    invalid = await problem(await http.post("/v1/admin/suppliers", json={"name": "Bad", "carriers": ["zz1"]},
                                            headers=admin), 422, "validation_failed")
    assert [e["field"] for e in invalid["errors"]] == ["carriers[0]"]
    await problem(await http.post("/v1/admin/suppliers", json={"name": "Empty", "carriers": []}, headers=admin),
                  422, "validation_failed")
    await problem(await http.post("/v1/admin/suppliers", json={"name": "X", "carriers": ["ZZ"]},
                                  headers=booking.partner.headers), 403, "forbidden")

    zz, yy, hotel_product = booking.products
    code = await pushed(http, supplier, time_change(zz, "chg-1"))
    # Another carrier's flight, a hotel and an unknown product all answer 404: existence does not leak.
    await problem(await push(http, supplier, time_change(yy, "chg-2")), 404, "not_found")
    await problem(await push(http, supplier, {**time_change(zz, "chg-3"), "product_id": hotel_product["product_id"]}),
                  404, "not_found")
    await problem(await push(http, supplier, {**time_change(zz, "chg-4"), "product_id": "PRD-NOPE"}), 404, "not_found")

    flows = (await reservation(http, booking.partner, booking.reservation_id))["flows"]
    assert [(f["code"], f["kind"]) for f in flows] == [(code, "rescheduling")]
    spec = await (await http.get("/v1/openapi.json")).json()
    operation = spec["paths"]["/v1/supplier/schedule-changes"]["post"]
    [signature] = [p for p in operation["parameters"] if p["name"] == "Aftersales-Signature"]
    assert (signature["in"], signature["required"], operation["description"]) == ("header", True, "Roles: supplier.")
    assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/SchedulePush")
    detected = await booking.webhook.event("rescheduling.detected", code)
    assert detected["data"]["product_id"] == zz["product_id"]
    assert detected["data"]["change_id"] == "chg-1"


async def test_the_signature_over_the_raw_body_is_required(http: TestClient, admin: dict[str, str], booking: Booking) -> None:
    supplier = await new_supplier(http, admin, ["ZZ"])
    other = await new_supplier(http, admin, ["ZZ"], name="Other Airways")
    body = time_change(booking.products[0], "chg-signed")
    raw, headers = signed(supplier, body)

    missing = {k: v for k, v in headers.items() if k != "Aftersales-Signature"}
    refusals = [
        (raw, missing),
        (raw, {**headers, "Aftersales-Signature": "t=1,v1=00"}),
        (raw, signed(supplier, body, secret=other.secret)[1]),  # another supplier's secret
        (raw, signed(supplier, body, at=time.time() - 310)[1]),  # older than 5 minutes
        (raw, signed(supplier, body, at=time.time() + 310)[1]),  # more than 5 minutes ahead
        (raw.replace(b"chg-signed", b"chg-forged"), headers),  # the body changed after signing
        (json.dumps(body, indent=2).encode(), headers),  # the same JSON, other bytes: the raw body is signed
    ]
    for data, sent in refusals:
        answer = await problem(await http.post("/v1/supplier/schedule-changes", data=data, headers=sent),
                               401, "invalid_signature")
        assert supplier.secret not in json.dumps(answer)
    # Unsigned garbage is refused before it is parsed: 401, not 400.
    await problem(await http.post("/v1/supplier/schedule-changes", data=b"{not json", headers=missing),
                  401, "invalid_signature")
    assert (await reservation(http, booking.partner, booking.reservation_id))["flows"] == []

    # Signed a little while ago (within 5 minutes), with the supplier's own secret: received.
    assert (await push(http, supplier, body, at=time.time() - 240)).status == 202
    # A signed body that is not a valid change is still validated.
    invalid = await problem(await push(http, supplier, {**body, "change_id": "chg-x", "proposed_segments": []}),
                            422, "validation_failed")
    assert invalid["errors"][0]["message"] == "a time_change carries the proposed segments"


async def test_only_a_supplier_pushes_and_a_supplier_key_does_nothing_else(
    http: TestClient, admin: dict[str, str], booking: Booking, settings_overrides: dict[str, str]
) -> None:
    supplier = await new_supplier(http, admin, ["ZZ"])
    agent = await http.post("/v1/admin/agents", json={"name": "Grace"}, headers=admin)
    agent_headers = {"Authorization": f"Bearer {(await agent.json())['api_key']}"}
    body = time_change(booking.products[0], "chg-role")
    raw, headers = signed(supplier, body)
    for key_headers in (booking.partner.headers, agent_headers, admin):
        # Even with the supplier's valid signature, no other role may push.
        await problem(await http.post("/v1/supplier/schedule-changes", data=raw,
                                      headers={**headers, **key_headers}), 403, "forbidden")
    await problem(await http.post("/v1/supplier/schedule-changes", data=raw,
                                  headers={k: v for k, v in headers.items() if k != "Authorization"}),
                  401, "unauthorized")

    as_supplier = {"Authorization": f"Bearer {supplier.key}"}
    product_id = booking.products[0]["product_id"]
    for method, path, json_body in [
        ("GET", f"/v1/reservations/{booking.reservation_id}", None),
        ("GET", f"/v1/products/{product_id}/cancellation-allowance", None),
        ("POST", f"/v1/products/{product_id}/cancellation-quotes", {}),
        ("GET", "/v1/events", None),
        ("GET", "/v1/agent/cancellations", None),
        ("POST", "/v1/admin/partners", {"name": "Sneaky"}),
        ("POST", "/v1/admin/suppliers", {"name": "Sneaky", "carriers": ["YY"]}),
        ("PUT", "/v1/partner/webhook", {"url": "http://127.0.0.1:1/x"}),
    ]:
        await problem(await http.request(method, path, json=json_body, headers=as_supplier), 403, "forbidden")
    mock = await http.post("/v1/sandbox/rescheduling/mock", json={"product_id": product_id, "kind": "time_change"},
                           headers=as_supplier)
    # The mock exists only in sandbox; there it is a partner's.
    await problem(mock, 403 if settings_overrides["AFTERSALES_ENV"] == "sandbox" else 404,
                  "forbidden" if settings_overrides["AFTERSALES_ENV"] == "sandbox" else "not_found")
    assert (await reservation(http, booking.partner, booking.reservation_id))["flows"] == []


async def test_a_change_id_starts_one_flow_even_when_pushed_concurrently(
    http: TestClient, admin: dict[str, str], booking: Booking, temporal_env: WorkflowEnvironment
) -> None:
    supplier = await new_supplier(http, admin, ["ZZ"])
    body = {"change_id": "chg-dup", "product_id": booking.products[0]["product_id"], "kind": "flight_cancelled",
            "proposed_segments": None}

    answers = await asyncio.gather(*(push(http, supplier, body) for _ in range(12)))
    assert [a.status for a in answers] == [202] * 12
    codes = {(await a.json())["code"] for a in answers}
    assert len(codes) == 1
    [code] = codes
    assert [f["code"] for f in (await reservation(http, booking.partner, booking.reservation_id))["flows"]] == [code]
    await booking.webhook.event("rescheduling.detected", code)

    assert (await accept(http, booking.partner, code, "rebook-2d")).status == 200
    final = await asyncio.wait_for(temporal_env.client.get_workflow_handle(code).result(), BOUND_S)
    assert final["status"] == "accepted"
    # Re-delivered after the flow ended: the same answer, nothing starts again.
    assert await pushed(http, supplier, body) == code
    assert len((await reservation(http, booking.partner, booking.reservation_id))["flows"]) == 1
    assert booking.webhook.event_types().count("rescheduling.detected") == 1
    assert (await temporal_env.client.count_workflows(f"WorkflowId = '{code}'")).count == 1


async def test_an_earlier_action_time_limit_is_the_decision_deadline(
    http: TestClient, admin: dict[str, str], booking: Booking
) -> None:
    supplier = await new_supplier(http, admin, ["ZZ"])
    zz = booking.products[0]
    limit = (datetime.now(timezone.utc) + timedelta(hours=5)).replace(microsecond=0)
    early = await pushed(http, supplier, time_change(zz, "chg-early", action_time_limit=limit.isoformat()))
    detected = await booking.webhook.event("rescheduling.detected", early)
    assert datetime.fromisoformat(detected["data"]["decision_deadline"]) == limit
    info = await (await http.get(f"/v1/reschedulings/{early}", headers=booking.partner.headers)).json()
    assert datetime.fromisoformat(info["decision_deadline"]) == limit
    assert (await accept(http, booking.partner, early, "proposed")).status == 200

    # Later than the 72 h window: the window decides.
    late = await pushed(http, supplier, time_change(zz, "chg-late", action_time_limit=(limit + timedelta(days=10)).isoformat()))
    detected = await booking.webhook.event("rescheduling.detected", late)
    deadline = datetime.fromisoformat(detected["data"]["decision_deadline"])
    assert timedelta(hours=71) < deadline - datetime.now(timezone.utc) <= timedelta(hours=72)

    naive = await problem(await push(http, supplier, time_change(zz, "chg-naive", action_time_limit="2030-01-01T10:00:00")),
                          422, "validation_failed")
    assert [e["field"] for e in naive["errors"]] == ["action_time_limit"]


async def test_the_sandbox_mock_and_a_push_take_the_same_intake(
    http: TestClient, admin: dict[str, str], settings_overrides: dict[str, str]
) -> None:
    if settings_overrides["AFTERSALES_ENV"] != "sandbox":
        pytest.skip("the mock exists only in sandbox")
    partner = await new_partner(http, "Sandboxed")
    booked = await (await http.post("/v1/sandbox/reservations", json=reservation_body(flight()),
                                    headers=partner.headers)).json()
    product = booked["products"][0]
    supplier = await new_supplier(http, admin, ["ZZ"])
    mocked = await http.post("/v1/sandbox/rescheduling/mock", json={"product_id": product["product_id"], "kind": "time_change"},
                             headers=partner.headers)
    assert mocked.status == 202
    code = await pushed(http, supplier, time_change(product, "chg-sbx"))
    flows = (await reservation(http, partner, booked["reservation_id"]))["flows"]
    # Both changes are received; the second waits for the first to end (one active flow per product).
    assert len(flows) == 2 and code in {f["code"] for f in flows}
    assert all(f["kind"] == "rescheduling" for f in flows)
