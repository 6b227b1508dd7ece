"""Production mode: the sandbox disappears and the sandbox admin key stops working."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

ADMIN_KEY = "a-production-admin-key-0123456789"


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"AFTERSALES_ENV": "production", "AFTERSALES_ADMIN_KEY": ADMIN_KEY}


async def test_sandbox_routes_are_404_and_sandbox_key_is_refused(http: TestClient) -> None:
    created = await http.post("/v1/admin/partners", json={"name": "Prod"},
                              headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert created.status == 201
    key = (await created.json())["api_key"]
    response = await http.post("/v1/sandbox/reservations", json={}, headers={"Authorization": f"Bearer {key}"})
    assert response.status == 404
    assert (await response.json())["code"] == "not_found"
    refused = await http.post("/v1/admin/partners", json={"name": "X"},
                              headers={"Authorization": "Bearer sandbox-admin-key"})
    assert refused.status == 401


async def test_sandbox_deadline_advance_and_agent_quote_do_not_exist(http: TestClient) -> None:
    """No caller can make a production flow's deadline pass early, nor quote as the sandbox agent."""
    created = await http.post("/v1/admin/partners", json={"name": "Prod"}, headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    partner = {"Authorization": f"Bearer {(await created.json())['api_key']}"}
    for path, body in (("/v1/sandbox/flows/CAN-ABCD1234/advance", None),
                       ("/v1/sandbox/cancellations/CAN-ABCD1234/agent-quote", {"penalty": {"amount": "1", "currency": "EUR"}}),
                       ("/v1/sandbox/rescheduling/mock", {"product_id": "PRD-ABCDEFGHIJ", "kind": "flight_cancelled"})):
        response = await http.post(path, json=body, headers=partner)
        assert response.status == 404, path
        assert (await response.json())["code"] == "not_found"
    document = await (await http.get("/v1/openapi.json")).json()
    assert not [path for path in document["paths"] if path.startswith("/v1/sandbox/")]
