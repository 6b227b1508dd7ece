"""The console shows the travellers a partial cancellation concerns (docs/console.md,
docs/api.md#partial-cancellation), in Debian's Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import Actor
from tests.api.test_partial_cancellation import TRAVELLERS, manual_service
from tests.console.conftest import Browser, recorded

expect = pytest.importorskip(
    "playwright.async_api", reason="the playwright package is not installed: `make test` installs the test extra"
).expect


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """On SQLite: what is checked is the page (the endpoints are checked on both databases in tests/api)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'aftersales.db'}"


async def test_a_partial_cancellation_names_its_travellers_and_the_share_paid(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor,
) -> None:
    booked = await http.post("/v1/sandbox/reservations", headers=partner.headers,
                             json={"travellers": TRAVELLERS, "products": [manual_service()]})
    product_id = (await booked.json())["products"][0]["product_id"]
    quote = await (await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={"traveller_ids": ["T2"]},
                                   headers=partner.headers)).json()
    cancel = await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                             headers=partner.headers)
    assert cancel.status == 202, await cancel.text()
    code = (await cancel.json())["code"]
    await recorded(http, agent.headers, code)

    page = browser.page
    await browser.open_console()
    await browser.sign_in(agent.key)
    await page.get_by_role("table", name="Awaiting quote").get_by_role("button", name=code).click()
    facts = page.locator("#flow dl")
    await expect(facts).to_contain_text("TravellersGrace (1 of 3 travellers)")
    await expect(facts).to_contain_text("Paid33.33")
