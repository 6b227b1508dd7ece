"""A working day at the console in Debian's Chromium (docs/console.md): finding flows and their addresses,
a schedule change waiting behind a flow, refunds settled together, the keyboard, times from another zone,
the queue in the tab's title and desktop notifications."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import Actor, flight, new_partner, reservation_body
from tests.console.conftest import Browser, ManualCancellation
from tests.console.test_console_browser import ledger_in, manual_hotel

expect = pytest.importorskip(
    "playwright.async_api", reason="the playwright package is not installed: `make test` installs the test extra"
).expect


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """On SQLite, like the other browser tests: the endpoints are checked on both databases in test_flow_search_api.py."""
    return f"sqlite+aiosqlite:///{tmp_path / 'aftersales.db'}"


def flow_address(code: str) -> re.Pattern[str]:
    return re.compile(rf"/console#/flows/{re.escape(code)}$")


async def test_a_flow_found_by_search_has_an_address_that_survives_a_reload_and_the_back_button(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor, manual_cancellation: ManualCancellation,
) -> None:
    ada = await manual_cancellation(http, partner, manual_hotel("Hotel Lutetia", "Ada Lovelace"))
    grace = await manual_cancellation(http, partner, manual_hotel("Pulitzer Amsterdam", "Grace Hopper"))
    body = reservation_body(flight())
    body["travellers"][0]["name"] = "Alan Turing"
    booked = await http.post("/v1/sandbox/reservations", json=body, headers=partner.headers)
    product_id = (await booked.json())["products"][0]["product_id"]
    quote = await (await http.post(f"/v1/products/{product_id}/cancellation-quotes", json={}, headers=partner.headers)).json()
    done = await http.post(f"/v1/products/{product_id}/cancellations", json={"quote_id": quote["quote_id"]}, headers=partner.headers)
    finished = (await done.json())["code"]

    page = browser.page
    await page.set_viewport_size({"width": 1024, "height": 900})
    await browser.open_console()
    await browser.sign_in(agent.key)
    search = page.get_by_label("Search", exact=True)
    results = page.get_by_role("table", name="Search results")
    await search.fill("LOVEL")
    await expect(results.locator("tbody tr th")).to_have_text([ada["code"]])
    row = results.locator("tbody tr", has_text=ada["code"])
    await expect(row).to_contain_text("Acme Travel")
    await expect(row).to_contain_text("Ada Lovelace")
    await expect(row).to_contain_text("Hotel")
    await row.get_by_role("button", name=ada["code"]).click()
    await expect(page).to_have_url(flow_address(ada["code"]))
    heading = page.get_by_role("heading", name=f"Cancellation {ada['code']}")
    await expect(heading).to_be_visible()
    # 1024 px wide: everything fits, nothing scrolls sideways.
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= 1024

    await page.reload()
    await expect(heading).to_be_visible()

    await search.fill("hopper")
    await results.get_by_role("button", name=grace["code"]).click()
    await expect(page.get_by_role("heading", name=f"Cancellation {grace['code']}")).to_be_visible()
    await page.go_back()
    await expect(page).to_have_url(flow_address(ada["code"]))
    await expect(heading).to_be_visible()
    await page.go_back()  # the desk as it was before any flow was opened
    await expect(page.locator("#flow")).to_be_hidden()
    await page.go_forward()
    await expect(heading).to_be_visible()

    # A finished flow is found and opened like any other; the address can be given to a colleague.
    await search.fill(finished)
    await expect(results.locator("tbody tr.finished th")).to_have_text([finished])
    await page.goto(f"{browser.origin}/console#/flows/{grace['code']}")
    await expect(page.get_by_role("heading", name=f"Cancellation {grace['code']}")).to_be_visible()
    await page.goto(f"{browser.origin}/console#/flows/{finished}")
    await expect(page.locator("#flow-status")).to_have_text("Cancelled")

    # Filters narrow the same list, and expired or finished flows are one choice away.
    await search.fill("")
    await page.get_by_label("Status", exact=True).select_option("cancelled")
    await expect(results.locator("tbody tr th")).to_have_text([finished])
    await page.get_by_label("Status", exact=True).select_option("awaiting_agent_quote")
    await expect(results.locator("tbody tr th")).to_have_text([ada["code"], grace["code"]])
    await page.get_by_label("Partner", exact=True).select_option(label="Acme Travel")
    await page.get_by_label("Kind", exact=True).select_option("change")
    await expect(results.locator("tbody tr")).to_have_text(["No flow matches."])


async def test_a_schedule_change_waiting_behind_a_cancellation_is_flagged_among_the_other_flows_of_its_product(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor, manual_cancellation: ManualCancellation,
) -> None:
    cancellation = await manual_cancellation(http, partner, reservation_body(flight(mode="manual")))
    pushed = await http.post("/v1/sandbox/rescheduling/mock", headers=partner.headers,
                             json={"product_id": cancellation["product_id"], "kind": "time_change", "delay_minutes": 90})
    assert pushed.status == 202, await pushed.text()
    reservation = await (await http.get(f"/v1/reservations/{cancellation['reservation_id']}", headers=partner.headers)).json()
    [rescheduling] = [flow["code"] for flow in reservation["flows"] if flow["kind"] == "rescheduling"]

    page = browser.page
    await browser.open_console()
    await browser.sign_in(agent.key)
    await page.get_by_role("table", name="Awaiting quote").get_by_role("button", name=cancellation["code"]).click()
    others = page.get_by_role("table", name="Other flows on this product")
    flagged = others.locator("tbody tr.flag")
    await expect(flagged.locator("th")).to_have_text([rescheduling])
    await expect(flagged).to_contain_text("schedule change waiting")
    await expect(flagged).to_contain_text("Waiting: another flow holds the product")
    await expect(page.locator("#flow-warning")).to_contain_text(f"The airline changed this flight ({rescheduling}): that schedule change waits")

    await flagged.get_by_role("button", name=rescheduling).click()
    await expect(page.get_by_role("heading", name=f"Rescheduling {rescheduling}")).to_be_visible()
    await expect(page).to_have_url(flow_address(rescheduling))
    await expect(others.locator("tbody tr th")).to_have_text([cancellation["code"]])
    await expect(others.locator("tbody tr.flag")).to_have_count(0)
    await expect(page.locator("#flow-facts")).to_contain_text("The flight's times changed")


async def test_draft_refunds_are_posted_together_and_rejected_together(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor,
) -> None:
    if not await ledger_in(http):
        pytest.skip("the refunds ledger (/v1/refunds) is not in /v1/openapi.json on this branch yet")
    booked = await http.post("/v1/sandbox/reservations", json=manual_hotel(), headers=partner.headers)
    reservation_id = (await booked.json())["reservation_id"]
    drafts = []
    for amount in ("10.00", "20.00", "30.00", "40.00"):
        created = await http.post("/v1/refunds", headers=agent.headers, json={
            "reservation_id": reservation_id, "amount": {"amount": amount, "currency": "EUR"}, "state": "draft",
            "reason": "goodwill"})
        assert created.status == 201, await created.text()
        drafts.append(await created.json())

    page = browser.page
    await browser.open_console()
    await browser.sign_in(agent.key)
    table = page.get_by_role("table", name="Draft refunds")
    await expect(table.locator("tbody tr[data-refund-id]")).to_have_count(4)
    post_selected = page.get_by_role("button", name="Post selected")
    await expect(post_selected).to_be_disabled()
    for draft in drafts[:2]:
        await page.get_by_label(f"Select refund {draft['reference_number']}", exact=True).check()
    await expect(page.get_by_text("2 selected")).to_be_visible()
    await post_selected.click()
    await expect(table.locator("tbody tr[data-refund-id]")).to_have_count(2)
    status = page.locator("#draft-refunds-done")
    for draft in drafts[:2]:
        await expect(status).to_contain_text(f"Refund {draft['reference_number']} posted as number")

    await page.get_by_label("Select every draft refund shown", exact=True).check()
    await page.get_by_role("button", name="Reject selected").click()
    await page.get_by_label("Reason for rejecting the 2 selected refunds", exact=True).fill("duplicates of the posted ones")
    await page.get_by_role("button", name="Confirm rejection").click()
    await expect(table.locator("tbody tr")).to_have_text(["No draft refund."])

    states = [await (await http.get(f"/v1/refunds/{d['refund_id']}", headers=agent.headers)).json() for d in drafts]
    assert [s["state"] for s in states] == ["posted", "posted", "rejected", "rejected"]
    assert int(states[1]["number"]) == int(states[0]["number"]) + 1  # one after the other, each its own number
    assert {s["rejection_reason"] for s in states[2:]} == {"duplicates of the posted ones"}


async def test_the_keyboard_moves_through_the_current_list_and_opens_a_flow(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor, manual_cancellation: ManualCancellation,
) -> None:
    made = [await manual_cancellation(http, partner, manual_hotel(traveller=name)) for name in
            ("Ada Lovelace", "Alan Turing", "Grace Hopper")]
    codes = [info["code"] for info in made]

    page = browser.page
    await browser.open_console()
    await browser.sign_in(agent.key)
    await expect(page.get_by_role("table", name="Awaiting quote").locator("tbody tr th")).to_have_text(codes)
    await expect(page.get_by_text("j and k next and previous flow in the list")).to_be_visible()

    focused = "() => document.activeElement?.textContent"
    for key, expected in (("j", codes[0]), ("j", codes[1]), ("j", codes[2]), ("j", codes[2]), ("k", codes[1])):
        await page.keyboard.press(key)
        assert await page.evaluate(focused) == expected, key
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(flow_address(codes[1]))
    await expect(page.get_by_role("heading", name=f"Cancellation {codes[1]}")).to_be_visible()

    await page.keyboard.press("/")
    search = page.get_by_label("Search", exact=True)
    await expect(search).to_be_focused()
    await page.keyboard.type("jk a")  # typed into the search: no shortcut fires
    await expect(search).to_have_value("jk a")
    await search.fill("a")
    results = page.get_by_role("table", name="Search results")
    await expect(results.locator("tbody tr th")).to_have_count(3)
    await page.locator("#search-title").click()  # out of the field: the search results are the list now
    await page.keyboard.press("j")
    await page.keyboard.press("j")
    first_two = await results.locator("tbody tr th").all_inner_texts()
    assert await page.evaluate(focused) == first_two[1]
    await page.keyboard.press("Enter")
    await expect(page).to_have_url(flow_address(first_two[1]))


@pytest.mark.parametrize("browser_timezone", ["America/New_York"])
async def test_travel_times_keep_the_place_s_offset_and_deadlines_are_in_the_agent_s_zone(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor, manual_cancellation: ManualCancellation,
) -> None:
    day = (datetime.now(timezone.utc) + timedelta(days=40)).date()
    product = flight(mode="manual")
    product["segments"] = [{"origin": "LIS", "destination": "MAD", "flight_number": "ZZ101",
                            "departure": f"{day}T08:00:00+01:00", "arrival": f"{day}T10:05:00+01:00"}]
    flow = await manual_cancellation(http, partner, reservation_body(product))

    page = browser.page
    await browser.open_console()
    await browser.sign_in(agent.key)
    await page.get_by_role("table", name="Awaiting quote").get_by_role("button", name=flow["code"]).click()
    facts = page.locator("#flow-facts")
    when = f"{day.day} {day.strftime('%b')} {day.year}"
    await expect(facts).to_contain_text(f"ZZ101 LIS → MAD, departs {when}, 08:00 +01:00, arrives {when}, 10:05 +01:00")
    await expect(facts).to_contain_text(f"Starts{when}, 08:00 +01:00 (in ")

    # The deadline is an instant: in New York's time, and it says so.
    deadline = datetime.fromisoformat(flow["quote_deadline"]).astimezone(ZoneInfo("America/New_York"))
    zone = await page.evaluate("""(at) => new Intl.DateTimeFormat('en-GB', {timeZone: 'America/New_York', timeZoneName: 'short'})
        .formatToParts(new Date(at)).find((part) => part.type === 'timeZoneName').value""", flow["quote_deadline"])
    assert zone in ("EST", "EDT", "GMT-5", "GMT-4")
    in_new_york = f"{deadline.day} {deadline.strftime('%b')} {deadline.year}, {deadline:%H:%M} {zone}"
    await expect(facts).to_contain_text(f"Quote by{in_new_york} (")
    queue_row = page.get_by_role("table", name="Awaiting quote").locator("tbody tr", has_text=flow["code"])
    await expect(queue_row).to_contain_text(in_new_york)
    await expect(page.locator("#desk-zone")).to_have_text("America/New_York")


async def test_a_partner_name_with_markup_is_shown_as_text(
    http: TestClient, browser: Browser, agent: Actor, manual_cancellation: ManualCancellation,
) -> None:
    name = "<img src=x onerror=alert(1)>"
    hostile = await new_partner(http, name)
    flow = await manual_cancellation(http, hostile, manual_hotel())
    page = browser.page
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: dialogs.append(dialog.message))
    await browser.open_console()
    await browser.sign_in(agent.key)
    queue_row = page.get_by_role("table", name="Awaiting quote").locator("tbody tr", has_text=flow["code"])
    await expect(queue_row).to_contain_text(name)
    await page.get_by_label("Search", exact=True).fill("img")
    results = page.get_by_role("table", name="Search results")
    await expect(results.locator("tbody tr", has_text=flow["code"])).to_contain_text(name)
    await expect(page.get_by_label("Partner", exact=True).locator("option", has_text=name)).to_have_count(1)
    await results.get_by_role("button", name=flow["code"]).click()
    await expect(page.locator("#flow-facts")).to_contain_text(f"Partner{name}")

    assert await page.locator("#desk img").count() == 0
    assert dialogs == []
    assert not [url for url in browser.requests if url.endswith("/x")]


FAKE_NOTIFICATIONS = """
window.shownNotifications = [];
window.permissionAsked = 0;
window.Notification = class {
  static permission = "default";
  static requestPermission() {
    window.permissionAsked += 1;
    window.Notification.permission = "granted";
    return Promise.resolve("granted");
  }
  constructor(title, options) { window.shownNotifications.push({ title, body: options.body }); }
  close() {}
};
"""


async def test_the_title_counts_the_queue_and_notifications_come_only_once_asked_for(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor, manual_cancellation: ManualCancellation,
    quick_gateway: TestClient,
) -> None:
    """The Notification API is the browser's, not ours: a stand-in records what the console shows."""
    first = await manual_cancellation(http, partner, manual_hotel("Hotel One"))
    page = browser.page
    await page.add_init_script(FAKE_NOTIFICATIONS)
    await page.clock.install()
    await browser.open_console()
    await browser.sign_in(agent.key)
    await expect(page).to_have_title("(1) Agent console · Aftersales")
    assert await page.evaluate("() => window.permissionAsked") == 0  # never on load

    notify = page.get_by_role("button", name="Notify me")
    await notify.click()
    await expect(page.get_by_role("button", name="Notifications on")).to_have_attribute("aria-pressed", "true")
    assert await page.evaluate("() => window.permissionAsked") == 1
    await page.clock.run_for(11_000)  # the first refresh after turning them on: what is there is known
    await expect(page.get_by_role("table", name="Awaiting quote").locator("tbody tr th")).to_have_text([first["code"]])
    assert await page.evaluate("() => window.shownNotifications") == []

    # quick_gateway gives agents 2 h to quote: this one comes, and comes due, sooner.
    soon = await manual_cancellation(quick_gateway, partner, manual_hotel("Hotel Two"))
    await page.clock.run_for(11_000)
    await expect(page).to_have_title("(2) Agent console · Aftersales")
    shown = await page.evaluate("() => window.shownNotifications")
    assert shown == [{"title": f"New flow awaiting a quote: {soon['code']}", "body": "From Acme Travel"}]

    await page.clock.fast_forward("01:05:00")  # less than an hour left on the quick one
    await page.clock.run_for(11_000)
    await page.wait_for_function("() => window.shownNotifications.length >= 2")
    last: dict[str, Any] = (await page.evaluate("() => window.shownNotifications"))[-1]
    assert last["title"] == f"Less than an hour to quote {soon['code']}"
    await page.clock.run_for(11_000)
    assert len(await page.evaluate("() => window.shownNotifications")) == 2  # said once

    await page.get_by_role("button", name="Notifications on").click()
    await expect(page.get_by_role("button", name="Notify me")).to_have_attribute("aria-pressed", "false")
