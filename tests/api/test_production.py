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
