"""Actors of the HTTP tests: an admin, partners, an agent, and sandbox reservations."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient

from tests.waits import eventually

ADMIN = {"Authorization": "Bearer sandbox-admin-key"}
FEED_BOUND_S = 30.0


async def feed_of(http: TestClient, headers: dict[str, str], at_least: int, query: str = "") -> dict[str, Any]:
    """A page of ``GET /v1/events{query}`` once it holds ``at_least`` events (bounded). On PostgreSQL the
    feed shows an event once every writing transaction older than it is over, on the whole server
    (docs/triggers.md#the-feeds-order), so one committed an instant ago may be a moment away."""
    async def page() -> dict[str, Any] | None:
        body: dict[str, Any] = await (await http.get(f"/v1/events{query}", headers=headers)).json()
        return body if len(body["items"]) >= at_least else None
    return await eventually(page, FEED_BOUND_S, f"{at_least} events in /v1/events{query}")


@dataclass(frozen=True)
class Actor:
    id: str
    key: str
    body: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def flight(days_ahead: float = 30, *, mode: str = "automatic", carrier: str = "ZZ", amount: str = "240.00",
           currency: str = "EUR") -> dict[str, Any]:
    departure = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=days_ahead)
    return {
        "kind": "flight",
        "carrier": carrier,
        "segments": [{
            "origin": "MAD", "destination": "CDG",
            "departure": departure.isoformat(), "arrival": (departure + timedelta(hours=2, minutes=5)).isoformat(),
            "flight_number": f"{carrier}101",
        }],
        "price": {"amount": amount, "currency": currency},
        "vat_rate": "0.081",
        "cancellation_policy": {"mode": mode, "tiers": [
            {"hours_before_start": 168, "penalty_percent": "50"},
            {"hours_before_start": 24, "penalty_percent": "100"},
        ]} if mode == "automatic" else {"mode": mode},
        "change_policy": {"changeable": True, "manual": False, "change_fee": {"amount": "30", "currency": currency}},
        "special_request_options": [{"code": "WCHR", "name": "Wheelchair", "price": None}],
    }


def hotel(days_ahead: int = 30, *, mode: str = "manual") -> dict[str, Any]:
    check_in = (datetime.now(timezone.utc) + timedelta(days=days_ahead)).date()
    return {
        "kind": "hotel", "hotel": "Hotel Lutetia",
        "check_in": check_in.isoformat(), "check_out": (check_in + timedelta(days=3)).isoformat(),
        "price": {"amount": "600.00", "currency": "EUR"}, "vat_rate": "0.10",
        "cancellation_policy": {"mode": mode}, "change_policy": {"changeable": False},
    }


def reservation_body(*products: dict[str, Any], status: str = "confirmed") -> dict[str, Any]:
    return copy.deepcopy({
        "status": status,
        "travellers": [{"traveller_id": "T1", "name": "Ada Lovelace"}],
        "products": list(products) or [flight(), hotel()],
    })


async def cancel_with_a_quote(http: TestClient, who: Actor, product_id: str) -> ClientResponse:
    """Quote the product and cancel it with that quote, as a partner does: the cancellation's answer."""
    quote = await (await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={}, headers=who.headers)).json()
    return await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                           headers=who.headers)


async def new_partner(http: TestClient, name: str = "Acme Travel", webhook_url: str | None = None) -> Actor:
    body: dict[str, Any] = {"name": name}
    if webhook_url:
        body["webhook_url"] = webhook_url
    response = await http.post("/v1/admin/partners", json=body, headers=ADMIN)
    assert response.status == 201, await response.text()
    created = await response.json()
    return Actor(created["partner_id"], created["api_key"], created)


@pytest_asyncio.fixture
async def partner(http: TestClient) -> Actor:
    return await new_partner(http)


@pytest_asyncio.fixture
async def other_partner(http: TestClient) -> Actor:
    return await new_partner(http, "Other Partner")


@pytest_asyncio.fixture
async def agent(http: TestClient) -> Actor:
    response = await http.post("/v1/admin/agents", json={"name": "Grace"}, headers=ADMIN)
    assert response.status == 201
    created = await response.json()
    return Actor(created["agent_id"], created["api_key"], created)


@pytest.fixture
def book(http: TestClient) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def create(owner: Actor, *products: dict[str, Any], status: str = "confirmed") -> dict[str, Any]:
        response = await http.post(
            "/v1/sandbox/reservations", json=reservation_body(*products, status=status), headers=owner.headers
        )
        assert response.status == 201, await response.text()
        return await response.json()

    return create
