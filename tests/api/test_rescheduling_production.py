"""Production mode: the sandbox airline's mock is gone (404); the rescheduling routes stay."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from tests.api.test_foundation import problem

ADMIN_KEY = "a-production-admin-key-0123456789"


@pytest.fixture
def settings_overrides() -> dict[str, str]:
    return {"AFTERSALES_ENV": "production", "AFTERSALES_ADMIN_KEY": ADMIN_KEY}


async def test_mock_is_404_in_production(http: TestClient) -> None:
    created = await http.post("/v1/admin/partners", json={"name": "Prod"},
                              headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    assert created.status == 201
    partner = {"Authorization": f"Bearer {(await created.json())['api_key']}"}

    await problem(await http.post("/v1/sandbox/rescheduling/mock", json={"product_id": "PRD-X", "kind": "time_change"},
                                  headers=partner), 404, "not_found")
    # The flow's own routes exist in production: an unknown code is an unknown flow.
    await problem(await http.get("/v1/reschedulings/RS-00000000", headers=partner), 404, "not_found")
    spec = await (await http.get("/v1/openapi.json")).json()
    assert "/v1/sandbox/rescheduling/mock" not in spec["paths"]
    assert "/v1/reschedulings/{code}/accept" in spec["paths"]
