"""The console shows an involuntary flow and a partner's waiver request, and its quote form sends a
waiver (docs/console.md, docs/flows.md#waivers), in Debian's Chromium."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import Actor, flight, hotel, reservation_body
from tests.api.test_involuntary import until
from tests.api.test_rescheduling import mock
from tests.console.conftest import Browser, recorded

expect = pytest.importorskip(
    "playwright.async_api", reason="the playwright package is not installed: `make test` installs the test extra"
).expect


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """On SQLite: what is checked is the page (the endpoints are checked on both databases in tests/api)."""
    return f"sqlite+aiosqlite:///{tmp_path / 'aftersales.db'}"


async def started(http: TestClient, partner: Actor, agent: Actor, product: dict[str, Any],
                  **quote_body: Any) -> tuple[str, str]:
    """A manual cancellation of a new booking of ``product``, waiting in the agents' queue: (code, product id)."""
    booked = await http.post("/v1/sandbox/reservations", json=reservation_body(product), headers=partner.headers)
    product_id = (await booked.json())["products"][0]["product_id"]
    quote = await (await http.post(f"/v1/products/{product_id}/cancellation-quotes", json=quote_body,
                                   headers=partner.headers)).json()
    cancel = await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]},
                             headers=partner.headers)
    assert cancel.status == 202, await cancel.text()
    code = (await cancel.json())["code"]
    await recorded(http, agent.headers, code)
    return code, product_id


async def test_an_involuntary_flow_is_flagged_and_takes_only_penalty_zero(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor,
) -> None:
    code, product_id = await started(http, partner, agent, flight(days_ahead=20, mode="manual"))
    await mock(http, partner, product_id, delay_minutes=120)
    await until(http, agent, f"/v1/cancellations/{code}", lambda info: info["involuntary"])

    page = browser.page
    await browser.open_console()
    await browser.sign_in(agent.key)
    queue = page.get_by_role("table", name="Awaiting quote")
    await expect(queue.locator("tbody tr", has_text=code)).to_contain_text("Involuntary: no penalty")
    await queue.get_by_role("button", name=code).click()
    facts = page.locator("#flow dl")
    await expect(facts).to_contain_text("The airline changed this flight: no penalty may be charged")
    await expect(page.locator("#penalty-hint")).to_contain_text("only a penalty of 0 is accepted")
    waiver = page.get_by_label("Waiver", exact=True)
    await expect(waiver).to_have_value("SCHEDULE_CHANGE")

    penalty = page.get_by_label("Penalty", exact=True)
    await penalty.fill("40")
    await page.get_by_role("button", name="Send quote").click()
    await expect(page.locator("#quote-problem")).to_contain_text("involuntary")
    await expect(page.locator("#penalty-error")).to_contain_text("carries no penalty")
    await expect(penalty).to_have_attribute("aria-invalid", "true")

    await penalty.fill("0")
    await page.get_by_role("button", name="Send quote").click()
    await expect(page.get_by_role("status").filter(has_text="Quote sent")).to_contain_text(code)
    await expect(facts).to_contain_text(re.compile(r"WaiverSchedule change, .*by "))
    info = await (await http.get(f"/v1/cancellations/{code}", headers=partner.headers)).json()
    assert (info["penalty"]["amount"], info["involuntary"], info["waiver"]["code"]) == ("0.00", True, "SCHEDULE_CHANGE")
    assert info["waiver"]["granted_by"] == agent.id


async def test_a_waiver_request_is_shown_and_the_agent_grants_it(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor,
) -> None:
    code, _product_id = await started(http, partner, agent, hotel(),
                                      waiver_request={"code": "BEREAVEMENT", "note": "death in the family"})
    page = browser.page
    await browser.open_console()
    await browser.sign_in(agent.key)
    queue = page.get_by_role("table", name="Awaiting quote")
    await expect(queue.locator("tbody tr", has_text=code)).to_contain_text("Waiver asked: BEREAVEMENT")
    await queue.get_by_role("button", name=code).click()
    await expect(page.locator("#flow dl")).to_contain_text("Waiver asked forBereavement: death in the family")
    waiver = page.get_by_label("Waiver", exact=True)
    await expect(waiver).to_have_value("BEREAVEMENT")
    options = await waiver.locator("option").evaluate_all("(nodes) => nodes.map((n) => n.value)")
    assert options == ["", "MEDICAL", "BEREAVEMENT", "GOODWILL", "SCHEDULE_CHANGE", "OTHER"]

    await page.get_by_label("Penalty", exact=True).fill("50")
    await page.get_by_label("Waiver note", exact=True).fill("certificate seen")
    await page.get_by_role("button", name="Send quote").click()
    await expect(page.get_by_role("status").filter(has_text="Quote sent")).to_contain_text(code)
    info = await (await http.get(f"/v1/cancellations/{code}", headers=partner.headers)).json()
    assert info["penalty"] == {"amount": "50.00", "currency": "EUR"}
    assert {k: info["waiver"][k] for k in ("code", "note", "granted_by")} == {
        "code": "BEREAVEMENT", "note": "certificate seen", "granted_by": agent.id}
    assert info["waiver_request"] == {"code": "BEREAVEMENT", "note": "death in the family"}
