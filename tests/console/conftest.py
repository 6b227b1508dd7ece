"""The console in a real browser: Debian's Chromium, headless, driven by Playwright for Python.

Each test gets the gateway on a loopback port (with a worker), its own Chromium with a fresh
profile, and a record of every request the page made. When Chromium or Playwright is missing
the browser tests are skipped with the reason (``make test`` installs Chromium with apt-get
when it can). A failing test leaves a screenshot in ``tests/console/failures/``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp.test_utils import TestClient, TestServer

from api.app_keys import DEPS
from tests.api.conftest import ADMIN, Actor, agent, book, new_partner, partner  # noqa: F401  (fixtures)

CHROMIUM = Path(os.environ.get("AFTERSALES_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
FAILURES = Path(__file__).resolve().parent / "failures"
# Playwright's auto-waiting bound for every expectation and action.
WAIT_MS = 15_000
RECORDED_WAIT_S = 15.0


def _browser_missing() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed: run `make test`, which installs the test extra"
    if not CHROMIUM.exists():
        return f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium package when apt-get is there"
    return None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[Any]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


@dataclass
class Browser:
    """One page of a fresh Chromium, pointed at the gateway, with every request it made."""

    page: Any
    origin: str
    requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    csp_violations: list[str] = field(default_factory=list)

    async def open_console(self) -> None:
        await self.page.goto(f"{self.origin}/console")

    async def sign_in(self, key: str) -> None:
        await self.page.get_by_label("API key", exact=True).fill(key)
        await self.page.get_by_role("button", name="Sign in", exact=True).click()

    def outside(self) -> list[str]:
        return [url for url in self.requests if not (url == self.origin or url.startswith(self.origin + "/"))]


@pytest_asyncio.fixture(scope="session")
async def playwright_driver() -> AsyncIterator[Any]:
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from playwright.async_api import async_playwright

    async with async_playwright() as driver:
        yield driver


@pytest.fixture
def browser_timezone() -> str:
    """The desk's time zone; a test parametrizes it to see the console from elsewhere."""
    return "UTC"


@pytest_asyncio.fixture
async def browser(playwright_driver: Any, http: TestClient, tmp_path: Path, request: pytest.FixtureRequest,
                  browser_timezone: str) -> AsyncIterator[Browser]:
    from playwright.async_api import expect

    expect.set_options(timeout=WAIT_MS)
    context = await playwright_driver.chromium.launch_persistent_context(
        user_data_dir=str(tmp_path / "chromium-profile"),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1440, "height": 1000},
        locale="en-GB",
        timezone_id=browser_timezone,
    )
    context.set_default_timeout(WAIT_MS)
    origin = str(http.make_url("")).rstrip("/")
    page = context.pages[0] if context.pages else await context.new_page()
    opened = Browser(page, origin)
    # Every request of the page and of anything it starts (workers, prefetches), not only fetches.
    context.on("request", lambda req: opened.requests.append(req.url))
    page.on("pageerror", lambda error: opened.page_errors.append(str(error)))
    page.on("console", lambda message: opened.csp_violations.append(message.text)
            if "Content Security Policy" in message.text or "Trusted Type" in message.text else None)
    try:
        yield opened
    finally:
        if request.node.stash.get(_FAILED, False):
            FAILURES.mkdir(exist_ok=True)
            await page.screenshot(path=str(FAILURES / f"{request.node.name}.png"), full_page=True)
        await context.close()
    assert not opened.page_errors, f"the page threw: {opened.page_errors}"
    assert not opened.csp_violations, f"the page broke its CSP: {opened.csp_violations}"
    assert not opened.outside(), f"the page reached outside the gateway: {opened.outside()}"


async def recorded(http: TestClient, headers: dict[str, str], code: str) -> dict[str, Any]:
    """The flow info once its quote deadline is recorded, within a bound. No polling: the flow's
    Temporal history is long-polled, and the store is read again at each new event (the record
    is a local activity, in the store before its marker is in the history)."""

    async def read() -> dict[str, Any]:
        info: dict[str, Any] = await (await http.get(f"/v1/cancellations/{code}", headers=headers)).json()
        return info

    async def settled() -> dict[str, Any]:
        history = http.server.app[DEPS].temporal.get_workflow_handle(code).fetch_history_events(wait_new_event=True)
        async for _event in history:
            if (info := await read()).get("quote_deadline") is not None:
                return info
        raise AssertionError(f"{code} ended without recording its quote deadline: {await read()}")

    try:
        return await asyncio.wait_for(settled(), RECORDED_WAIT_S)
    except TimeoutError:
        raise AssertionError(f"{code} never recorded its quote deadline: {await read()}") from None


ManualCancellation = Callable[..., Awaitable[dict[str, Any]]]


@pytest.fixture
def manual_cancellation(agent: Actor) -> ManualCancellation:  # noqa: F811
    """Book a manual product for ``owner`` through ``http`` and cancel it: the flow info once its
    quote deadline is recorded (it then waits in the agents' queue)."""

    async def start(http: TestClient, owner: Actor, reservation: dict[str, Any]) -> dict[str, Any]:
        booked = await http.post("/v1/sandbox/reservations", json=reservation, headers=owner.headers)
        assert booked.status == 201, await booked.text()
        product_id = (await booked.json())["products"][0]["product_id"]
        quote = await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={}, headers=owner.headers)
        assert quote.status == 201, await quote.text()
        started = await http.post(f"/v1/products/{product_id}/cancellations",
                                  json={"quote_id": (await quote.json())["quote_id"]}, headers=owner.headers)
        assert started.status == 202, await started.text()
        code = (await started.json())["code"]
        return await recorded(http, agent.headers, code)

    return start


@pytest_asyncio.fixture
async def quick_gateway(http: TestClient, settings: Any, store: Any, temporal_env: Any) -> AsyncIterator[TestClient]:
    """A second gateway on the same store, Temporal and worker that gives agents 2 h to quote:
    its flows have nearer deadlines than the main gateway's 24 h ones."""
    from api.app import create_app
    from tests.conftest import make_settings

    quick = make_settings(settings.database_url, AFTERSALES_AGENT_QUOTE_WINDOW="2h", AFTERSALES_TASK_QUEUE=settings.task_queue)
    async with TestClient(TestServer(create_app(quick, store=store, temporal=temporal_env.client))) as client:
        yield client
