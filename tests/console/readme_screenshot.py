"""Take the README's picture of the console: ``python -m tests.console.readme_screenshot [docs/console.png]``.

Starts what the browser tests start (a Temporal dev server, a worker, the gateway on SQLite in a
temporary folder), fills the queues with a few manual cancellations of three partners (one of a
flight the airline then moves), signs in as an agent in Paris, finds the flight's cancellation by
its traveller, opens it with its waiting schedule change flagged and a quote half typed, and saves
a screenshot. Not a test: run it after
a visible change to the console and commit the picture.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from store.repositories import open_store
from tests.api.conftest import ADMIN, flight, hotel, reservation_body
from tests.conftest import binary, make_settings
from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS, recorded
from worker.registry import build_activities, workflow_worker

STAYS = [  # (gateway's quote window, partner, hotel, traveller, days to check-in)
    ("45m", "Acme Travel", "Hotel Lutetia", "Ada Lovelace", 2),
    ("5h", "Globetrotter Reisen", "Pulitzer Amsterdam", "Grace Hopper", 9),
    ("24h", "Sunway Voyages", "Hotel Arts Barcelona", "Alan Turing", 21),
    ("24h", "Acme Travel", "The Balmoral", "Katherine Johnson", 40),
]


async def cancel_manually(http: TestClient, key: str, product: dict[str, Any], traveller: str) -> tuple[str, str]:
    """Book ``product`` for ``traveller`` and ask to cancel it: (flow code, product id)."""
    headers = {"Authorization": f"Bearer {key}"}
    body = reservation_body(product)
    body["travellers"][0]["name"] = traveller
    product_id = (await (await http.post("/v1/sandbox/reservations", json=body, headers=headers)).json())["products"][0]["product_id"]
    quote = await (await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={}, headers=headers)).json()
    started = await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]}, headers=headers)
    code: str = (await started.json())["code"]
    return code, product_id


def stay(name: str, days: int) -> dict[str, Any]:
    product = hotel(days)
    product["hotel"] = name
    return product


def lisbon_flight(days: int) -> dict[str, Any]:
    """Booked in Lisbon's local time (+01:00 in summer): the console shows it so, from any desk."""
    product = flight(days, mode="manual")
    day = (datetime.now(timezone.utc) + timedelta(days=days)).date()
    product["segments"] = [{"origin": "LIS", "destination": "CDG", "flight_number": "ZZ204",
                            "departure": f"{day}T08:00:00+01:00", "arrival": f"{day}T11:35:00+02:00"}]
    return product


async def main(target: Path) -> None:
    from playwright.async_api import async_playwright

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite+aiosqlite:///{folder}/aftersales.db"
        base = make_settings(url)
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=binary("temporal"), data_converter=pydantic_data_converter, dev_server_log_level="error")
        store = await open_store(url)
        try:
            async with workflow_worker(env.client, base.task_queue, build_activities(base, store)):
                gateways = {}
                for window in {w for w, *_ in STAYS}:
                    settings = make_settings(url, AFTERSALES_AGENT_QUOTE_WINDOW=window, AFTERSALES_TASK_QUEUE=base.task_queue)
                    gateways[window] = TestClient(TestServer(create_app(settings, store=store, temporal=env.client)))
                    await gateways[window].start_server()
                http = gateways["24h"]
                admin = {"Authorization": "Bearer sandbox-admin-key"}
                partners = {}
                for name in dict.fromkeys(p for _, p, *_ in STAYS):
                    partners[name] = (await (await http.post("/v1/admin/partners", json={"name": name}, headers=admin)).json())["api_key"]
                agent = await (await http.post("/v1/admin/agents", json={"name": "Grace"}, headers=ADMIN)).json()
                agent_headers = {"Authorization": f"Bearer {agent['api_key']}"}
                codes = [(await cancel_manually(gateways[w], partners[p], stay(h, d), t))[0] for w, p, h, t, d in STAYS]
                quoted, _ = await cancel_manually(http, partners["Sunway Voyages"], stay("Casa Camper Berlin", 14), "Mary Jackson")
                opened, flight_id = await cancel_manually(gateways["5h"], partners["Acme Travel"], lisbon_flight(6), "Grace Hopper")
                for code in [*codes, quoted, opened]:
                    await recorded(http, agent_headers, code)
                await http.post(f"/v1/agent/cancellations/{quoted}/quote", headers=agent_headers,
                                json={"penalty": {"amount": "150.00", "currency": "EUR"},
                                      "refund": {"amount": "450.00", "currency": "EUR"}, "note": "one night charged"})
                # The airline moves the flight while its cancellation waits for a quote: the change waits its turn.
                await http.post("/v1/sandbox/rescheduling/mock", headers={"Authorization": f"Bearer {partners['Acme Travel']}"},
                                json={"product_id": flight_id, "kind": "time_change", "delay_minutes": 95})

                async with async_playwright() as driver:
                    browser = await driver.chromium.launch_persistent_context(
                        user_data_dir=f"{folder}/chromium", executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                        viewport={"width": 1440, "height": 1180}, locale="en-GB", timezone_id="Europe/Paris")
                    page = browser.pages[0]
                    await page.goto(str(http.make_url("/console")))
                    await page.get_by_label("API key", exact=True).fill(agent["api_key"])
                    await page.get_by_role("button", name="Sign in", exact=True).click()
                    await page.get_by_label("Search", exact=True).fill("hop")
                    await page.get_by_role("table", name="Search results").get_by_role("button", name=opened).click()
                    await page.get_by_role("heading", name=f"Cancellation {opened}").wait_for()
                    await page.get_by_role("table", name="Other flows on this product").locator("tr.flag").wait_for()
                    await page.get_by_label("Penalty", exact=True).fill("0")
                    await page.get_by_label("Note", exact=True).fill("Schedule change pending: no fee, as agreed with the airline.")
                    await page.mouse.move(0, 0)
                    await page.screenshot(path=str(target))
                    await browser.close()
                for client in gateways.values():
                    await client.close()
        finally:
            await store.close()
            await env.shutdown()
    print(f"saved {target}")


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/console.png")))
