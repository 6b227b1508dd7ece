"""Take the README's picture of the console: ``python -m tests.console.readme_screenshot [docs/console.png]``.

Starts what the browser tests start (a Temporal dev server, a worker, the gateway on SQLite in a
temporary folder), fills the queues with a few manual cancellations, signs in as an agent, opens
the most urgent flow with a quote half typed, and saves a screenshot. Not a test: run it after
a visible change to the console and commit the picture.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from store.repositories import open_store
from tests.api.conftest import ADMIN, hotel, reservation_body
from tests.conftest import binary, make_settings
from tests.console.conftest import CHROMIUM, CHROMIUM_ARGS, recorded
from worker.registry import build_activities, workflow_worker

STAYS = [  # (gateway's quote window, hotel, traveller, days to check-in)
    ("45m", "Hotel Lutetia", "Ada Lovelace", 2),
    ("5h", "Pulitzer Amsterdam", "Grace Hopper", 9),
    ("24h", "Hotel Arts Barcelona", "Alan Turing", 21),
    ("24h", "The Balmoral", "Katherine Johnson", 40),
]


async def cancel_manually(http: TestClient, key: str, name: str, traveller: str, days: int) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    body = reservation_body(hotel(days))
    body["products"][0]["hotel"] = name
    body["travellers"][0]["name"] = traveller
    product_id = (await (await http.post("/v1/sandbox/reservations", json=body, headers=headers)).json())["products"][0]["product_id"]
    quote = await (await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={}, headers=headers)).json()
    started = await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]}, headers=headers)
    code: str = (await started.json())["code"]
    return code


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
                partner = await (await http.post("/v1/admin/partners", json={"name": "Acme Travel"}, headers=ADMIN)).json()
                agent = await (await http.post("/v1/admin/agents", json={"name": "Grace"}, headers=ADMIN)).json()
                codes = [await cancel_manually(gateways[w], partner["api_key"], *rest) for w, *rest in STAYS]
                quoted = await cancel_manually(http, partner["api_key"], "Casa Camper Berlin", "Mary Jackson", 14)
                for code in [*codes, quoted]:
                    await recorded(http, {"Authorization": f"Bearer {agent['api_key']}"}, code)
                await http.post(f"/v1/agent/cancellations/{quoted}/quote", headers={"Authorization": f"Bearer {agent['api_key']}"},
                                json={"penalty": {"amount": "150.00", "currency": "EUR"},
                                      "refund": {"amount": "450.00", "currency": "EUR"}, "note": "one night charged"})

                async with async_playwright() as driver:
                    browser = await driver.chromium.launch_persistent_context(
                        user_data_dir=f"{folder}/chromium", executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                        viewport={"width": 1440, "height": 860}, locale="en-GB", timezone_id="Europe/Paris")
                    page = browser.pages[0]
                    await page.goto(str(http.make_url("/console")))
                    await page.get_by_label("API key", exact=True).fill(agent["api_key"])
                    await page.get_by_role("button", name="Sign in", exact=True).click()
                    await page.get_by_role("table", name="Awaiting quote").get_by_role("button", name=codes[0]).click()
                    await page.get_by_label("Penalty", exact=True).fill("200")
                    await page.get_by_label("Note", exact=True).fill("Non-refundable first night, as agreed with the hotel.")
                    await page.get_by_role("heading", name=f"Cancellation {codes[0]}").wait_for()
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
