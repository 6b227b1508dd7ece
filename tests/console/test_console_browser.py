"""The agent console in Debian's Chromium: what an agent sees and does (docs/console.md)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.api.conftest import Actor, hotel, reservation_body
from tests.console.conftest import Browser, ManualCancellation

expect = pytest.importorskip(
    "playwright.async_api", reason="the playwright package is not installed: `make test` installs the test extra"
).expect


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """The browser tests run on SQLite: what they check is the page. The endpoints it reads are
    checked on both databases in test_console_api.py."""
    return f"sqlite+aiosqlite:///{tmp_path / 'aftersales.db'}"


async def test_sign_in_says_when_the_key_is_wrong_and_keeps_the_key_in_the_tab_only(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor
) -> None:
    page = browser.page
    await browser.open_console()
    problem = page.get_by_role("alert").filter(has_text=re.compile(".+"))

    await browser.sign_in("ask_not-a-key-anyone-was-given")
    await expect(problem).to_have_text(re.compile("Wrong API key"))
    await expect(page.get_by_role("table", name="Awaiting quote")).to_be_hidden()

    await browser.sign_in(partner.key)
    await expect(problem).to_have_text(re.compile("the console is for agents"))

    await browser.sign_in(agent.key)
    await expect(page.get_by_text("Signed in as Grace")).to_be_visible()
    await expect(page.get_by_role("table", name="Awaiting quote")).to_be_visible()
    await expect(page.get_by_label("API key", exact=True)).to_be_hidden()
    stored: dict[str, Any] = await page.evaluate(
        "() => ({session: {...sessionStorage}, local: localStorage.length, cookie: document.cookie, url: location.href})"
    )
    assert list(stored["session"].values()) == [agent.key]
    assert stored["local"] == 0 and stored["cookie"] == ""
    assert agent.key not in stored["url"] and not any(agent.key in url for url in browser.requests)

    await page.reload()  # the same tab: still signed in
    await expect(page.get_by_text("Signed in as Grace")).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("API key", exact=True)).to_be_visible()
    assert await page.evaluate("() => sessionStorage.length") == 0


def manual_hotel(name: str = "Hotel Lutetia", traveller: str = "Ada Lovelace", days_ahead: int = 30) -> dict[str, Any]:
    body = reservation_body(hotel(days_ahead))
    body["products"][0]["hotel"] = name
    body["travellers"][0]["name"] = traveller
    return body


async def codes_in(table: Any) -> list[str]:
    return [text.strip() for text in await table.locator("tbody tr th").all_inner_texts()]


async def test_queue_lists_the_nearest_deadline_first_counts_down_and_refreshes_on_its_own(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor, manual_cancellation: ManualCancellation,
    quick_gateway: TestClient,
) -> None:
    # quick_gateway gives agents 2 h to quote instead of 24 h: its flow's deadline is the nearest.
    first = await manual_cancellation(http, partner, manual_hotel("Hotel One"))
    nearest = await manual_cancellation(quick_gateway, partner, manual_hotel("Hotel Two"))
    last = await manual_cancellation(http, partner, manual_hotel("Hotel Three"))
    assert nearest["quote_deadline"] < first["quote_deadline"] < last["quote_deadline"]

    page = browser.page
    await page.clock.install()
    await browser.open_console()
    await browser.sign_in(agent.key)
    queue = page.get_by_role("table", name="Awaiting quote")
    await expect(queue.locator("tbody tr th")).to_have_text([nearest["code"], first["code"], last["code"]])
    nearest_row = queue.locator("tbody tr", has_text=nearest["code"])
    await expect(nearest_row.locator("td.time-left")).to_have_text(re.compile(r"^1 h 5\d min$"))
    await expect(queue.locator("tbody tr", has_text=first["code"]).locator("td.time-left")).to_have_text(
        re.compile(r"^23 h 5\d min$"))

    # A new flow with a still nearer deadline appears at the top at the next refresh, unasked.
    newest = await manual_cancellation(quick_gateway, partner, manual_hotel("Hotel Four"))
    await page.clock.run_for(11_000)
    await expect(queue.locator("tbody tr th")).to_have_text(
        [nearest["code"], newest["code"], first["code"], last["code"]])

    # Two hours on, the quick flows are overdue and marked so, in words and in colour.
    await page.clock.fast_forward("02:05:00")
    await expect(nearest_row.locator("td.time-left")).to_have_text(re.compile(r"^overdue by \d+ min \d+ s$"))
    await expect(nearest_row).to_have_class(re.compile(r"\boverdue\b"))
    await expect(queue.locator("tbody tr", has_text=first["code"])).not_to_have_class(re.compile(r"\boverdue\b"))


async def test_a_refused_quote_shows_the_problem_by_the_form_and_an_accepted_one_leaves_the_queue(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor, manual_cancellation: ManualCancellation,
) -> None:
    flow = await manual_cancellation(http, partner, manual_hotel("Hotel Lutetia", "Ada Lovelace"))
    code = flow["code"]
    page = browser.page
    await browser.open_console()
    await browser.sign_in(agent.key)
    queue = page.get_by_role("table", name="Awaiting quote")
    await queue.get_by_role("button", name=code).click()

    details = page.locator("#flow")
    await expect(details.get_by_role("heading", name=f"Cancellation {code}")).to_be_visible()
    await expect(details.locator("dl")).to_contain_text(flow["reservation_id"])
    await expect(details.locator("dl")).to_contain_text("Hotel Lutetia")
    await expect(details.locator("dl")).to_contain_text("Ada Lovelace")
    await expect(details.locator("dl")).to_contain_text("600.00 EUR")
    await expect(details.locator("dl")).to_contain_text("Manual: the agent quotes the penalty")
    await expect(details.get_by_role("listitem")).to_contain_text(["Awaiting an agent's quote"])

    penalty = page.get_by_label("Penalty", exact=True)
    refund = page.locator("output#refund")
    await expect(refund).to_have_text("600.00 EUR")
    await penalty.fill("1.234")  # more decimals than EUR has: said at once, nothing sent
    await page.get_by_role("button", name="Send quote").click()
    await expect(page.locator("#penalty-error")).to_contain_text("at most 2 decimals for EUR")

    await penalty.fill("700")  # more than was paid: the gateway refuses it
    await expect(refund).to_have_text("-100.00 EUR (more than was paid)")
    await page.get_by_role("button", name="Send quote").click()
    await expect(page.locator("#quote-problem")).to_have_text("the quote does not add up")
    await expect(page.locator("#refund-error")).to_have_text("must not be negative")
    await expect(penalty).to_have_attribute("aria-invalid", "true")
    await expect(queue.get_by_role("button", name=code)).to_be_visible()  # still waiting

    await penalty.fill("100.5")
    await expect(refund).to_have_text("499.50 EUR")
    await page.get_by_label("Note", exact=True).fill("late cancellation fee")
    await page.get_by_role("button", name="Send quote").click()
    await expect(page.get_by_role("status").filter(has_text="Quote sent")).to_contain_text(
        f"{code} now awaits the partner's decision")
    await expect(page.locator("#quote-problem")).to_be_empty()
    await expect(queue.get_by_role("button", name=code)).to_have_count(0)
    partner_table = page.get_by_role("table", name="Awaiting the partner")
    row = partner_table.locator("tbody tr", has_text=code)
    await expect(row).to_contain_text("100.50 EUR")
    await expect(row).to_contain_text("499.50 EUR")
    await expect(row.locator("td.time-left")).to_have_text(re.compile(r"^(2 d 23 h|3 d 0 h)$"))
    await expect(page.get_by_label("Penalty", exact=True)).to_be_hidden()

    info = await (await http.get(f"/v1/cancellations/{code}", headers=partner.headers)).json()
    assert info["status"] == "awaiting_partner_decision"
    assert info["penalty"] == {"amount": "100.50", "currency": "EUR"}
    assert info["refund"] == {"amount": "499.50", "currency": "EUR"}
    assert info["agent_note"] == "late cancellation fee"


async def test_partner_and_agent_text_is_shown_as_text_never_as_html(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor, manual_cancellation: ManualCancellation,
) -> None:
    hotel_name = "<script>window.pwned = 'hotel'</script>Hotel"
    traveller = '<img src="/x" onerror="window.pwned = \'traveller\'">'
    note = "<script>window.pwned = 'note'</script> fee <b>waived</b>?"
    flow = await manual_cancellation(http, partner, manual_hotel(hotel_name, traveller))
    page = browser.page
    await browser.open_console()
    await browser.sign_in(agent.key)
    await page.get_by_role("table", name="Awaiting quote").get_by_role("button", name=flow["code"]).click()
    facts = page.locator("#flow dl")
    await expect(facts).to_contain_text(hotel_name)
    await expect(facts).to_contain_text(traveller)
    await page.get_by_label("Penalty", exact=True).fill("0")
    await page.get_by_label("Note", exact=True).fill(note)
    await page.get_by_role("button", name="Send quote").click()
    await expect(facts).to_contain_text(f"Agent's note{note}")

    assert await page.evaluate("() => window.pwned") is None
    assert await page.locator("#desk script, #desk img, #desk b").count() == 0
    assert not [url for url in browser.requests if url.endswith("/x")]


async def test_the_page_makes_no_request_outside_the_gateway(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor, manual_cancellation: ManualCancellation,
) -> None:
    """Every file, fetch and icon comes from the gateway, under a CSP that would refuse anything else
    (the ``browser`` fixture also checks every other test's requests the same way)."""
    flow = await manual_cancellation(http, partner, manual_hotel())
    page = browser.page
    served = await page.goto(f"{browser.origin}/console")
    assert served is not None and served.ok
    policy = (await served.all_headers())["content-security-policy"]
    for directive in ("default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
                      "img-src 'self'", "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"):
        assert directive in policy
    await browser.sign_in(agent.key)
    await page.get_by_role("table", name="Awaiting quote").get_by_role("button", name=flow["code"]).click()
    await page.get_by_label("Penalty", exact=True).fill("60")
    await page.get_by_role("button", name="Send quote").click()
    await expect(page.get_by_role("table", name="Awaiting the partner").get_by_role("button", name=flow["code"])).to_be_visible()
    await page.get_by_role("button", name="Sign out").click()
    await expect(page.get_by_label("API key", exact=True)).to_be_visible()

    paths = {url.removeprefix(browser.origin).split("?")[0] for url in browser.requests}
    assert {"/console", "/console/assets/console.js", "/console/assets/console.css", "/console/assets/icon.svg",
            "/v1/me", "/v1/agent/cancellations", f"/v1/cancellations/{flow['code']}",
            f"/v1/agent/cancellations/{flow['code']}/quote"} <= paths
    assert browser.outside() == []
    # Were HTML ever written from a string, or an inline script added, the policy refuses both.
    refused = await page.evaluate("""() => new Promise((resolve) => {
        let html = null;
        try { document.body.innerHTML = '<b>x</b>'; } catch (error) { html = error.name; }
        document.addEventListener('securitypolicyviolation', (e) => resolve({html, script: e.violatedDirective}), {once: true});
        const script = document.createElement('script');
        script.append(document.createTextNode('window.inline = 1'));
        document.body.append(script);
    })""")
    assert refused["html"] == "TypeError" and refused["script"] in ("script-src-elem", "require-trusted-types-for")
    assert await page.evaluate("() => window.inline") is None
    browser.csp_violations.clear()  # the one provoked on purpose just above


async def ledger_in(http: TestClient) -> bool:
    spec = await (await http.get("/v1/openapi.json")).json()
    return "/v1/refunds" in spec["paths"]


async def test_draft_refunds_are_posted_and_rejected_with_a_reason(
    http: TestClient, browser: Browser, agent: Actor, partner: Actor,
) -> None:
    if not await ledger_in(http):
        pytest.skip("the refunds ledger (/v1/refunds) is not in /v1/openapi.json on this branch yet")
    booked = await http.post("/v1/sandbox/reservations", json=manual_hotel(), headers=partner.headers)
    reservation_id = (await booked.json())["reservation_id"]
    drafts = []
    for amount, notes in (("40.00", "goodwill for the noisy room"), ("25.50", "<b>duplicate</b> claim")):
        created = await http.post("/v1/refunds", headers=agent.headers, json={
            "reservation_id": reservation_id, "amount": {"amount": amount, "currency": "EUR"},
            "state": "draft", "reason": "goodwill", "notes": notes})
        assert created.status == 201, await created.text()
        drafts.append(await created.json())
    to_post, to_reject = drafts

    page = browser.page
    await browser.open_console()
    await browser.sign_in(agent.key)
    table = page.get_by_role("table", name="Draft refunds")
    post_row = table.locator("tbody tr", has_text=to_post["reference_number"]).filter(has_text="40.00 EUR")
    reject_row = table.locator("tbody tr", has_text=to_reject["reference_number"]).filter(has_text="25.50 EUR")
    await expect(reject_row).to_contain_text("<b>duplicate</b> claim")

    await post_row.get_by_role("button", name="Post", exact=True).click()
    await expect(post_row).to_have_count(0)
    await expect(page.get_by_role("status").filter(has_text="posted")).to_contain_text(
        f"Refund {to_post['reference_number']} posted as number")

    await reject_row.get_by_role("button", name="Reject", exact=True).click()
    await reject_row.get_by_role("textbox").fill("the partner withdrew the claim")
    await reject_row.get_by_role("button", name="Confirm", exact=True).click()
    await expect(reject_row).to_have_count(0)

    posted = await (await http.get(f"/v1/refunds/{to_post['refund_id']}", headers=agent.headers)).json()
    assert posted["state"] == "posted" and posted["number"]
    rejected = await (await http.get(f"/v1/refunds/{to_reject['refund_id']}", headers=agent.headers)).json()
    assert rejected["state"] == "rejected" and rejected["rejection_reason"] == "the partner withdrew the claim"


async def test_the_refund_is_paid_minus_penalty_in_the_currency_minor_units(http: TestClient, browser: Browser) -> None:
    """The console's own arithmetic (money.js), as the page runs it: whole minor units, never a float."""
    await browser.open_console()
    cases = [
        ({"amount": "600.00", "currency": "EUR"}, "100.5", {"penalty": "100.50", "refund": "499.50", "negative": False}),
        ({"amount": "0.30", "currency": "EUR"}, "0.1", {"penalty": "0.10", "refund": "0.20", "negative": False}),
        ({"amount": "1200", "currency": "JPY"}, "200", {"penalty": "200", "refund": "1000", "negative": False}),
        ({"amount": "1.250", "currency": "KWD"}, "0.5", {"penalty": "0.500", "refund": "0.750", "negative": False}),
        ({"amount": "600.00", "currency": "EUR"}, "700", {"penalty": "700.00", "refund": "-100.00", "negative": True}),
        ({"amount": "99999999999999999.99", "currency": "EUR"}, "0.01",
         {"penalty": "0.01", "refund": "99999999999999999.98", "negative": False}),
    ]
    for paid, typed, expected in cases:
        got = await browser.page.evaluate(
            "([paid, typed]) => import('/console/assets/money.js').then((m) => m.refundFor(paid, typed))", [paid, typed])
        assert got == expected, (paid, typed)
    for paid, typed in (({"amount": "1200", "currency": "JPY"}, "1.5"), ({"amount": "600.00", "currency": "EUR"}, "1e2"),
                        ({"amount": "600.00", "currency": "EUR"}, "-5"), ({"amount": "600.00", "currency": "EUR"}, " ")):
        got = await browser.page.evaluate(
            "([paid, typed]) => import('/console/assets/money.js').then((m) => m.refundFor(paid, typed))", [paid, typed])
        assert set(got) == {"error"}, (paid, typed, got)
