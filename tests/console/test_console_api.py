"""What the console reads, on both databases: who a key belongs to, the agents' queue in deadline
order with stable paging, and the console's own files with their security headers."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from aiohttp.test_utils import TestClient

from api.console import CONTENT_SECURITY_POLICY
from domain.codes import FlowKind
from domain.flow_info import FlowRecord
from store.flow_index import QueuePosition
from store.repositories import Store
from store.schema import flows
from tests.api.conftest import ADMIN, Actor, hotel, reservation_body
from tests.console.conftest import ManualCancellation
from tests.migrating import from_revision


async def test_me_names_the_owner_of_the_key(http: TestClient, agent: Actor, partner: Actor) -> None:
    assert await (await http.get("/v1/me", headers=agent.headers)).json() == {"role": "agent", "id": agent.id, "name": "Grace"}
    assert await (await http.get("/v1/me", headers=partner.headers)).json() == {
        "role": "partner", "id": partner.id, "name": "Acme Travel"}
    assert (await (await http.get("/v1/me", headers=ADMIN)).json())["role"] == "admin"
    for headers in ({}, {"Authorization": "Bearer ask_nobody"}):
        answer = await http.get("/v1/me", headers=headers)
        assert answer.status == 401 and (await answer.json())["code"] == "unauthorized"
    spec = await (await http.get("/v1/openapi.json")).json()
    assert spec["paths"]["/v1/me"]["get"]["description"] == "Roles: admin, agent, partner."


def _at(text: str | None) -> datetime:
    return datetime.fromisoformat(text) if text else datetime.max.replace(tzinfo=timezone.utc)


async def _pages(http: TestClient, agent: Actor, status: str, limit: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    url = f"/v1/agent/cancellations?status={status}&limit={limit}"
    while True:
        answer = await http.get(url, headers=agent.headers)
        assert answer.status == 200, await answer.text()
        page = await answer.json()
        assert len(page["items"]) <= limit
        items += page["items"]
        if page["next"] is None:
            return items
        url = f"/v1/agent/cancellations?status={status}&limit={limit}&cursor={page['next']}"


async def test_the_agent_queue_lists_the_nearest_quote_deadline_first_page_after_page(
    http: TestClient, quick_gateway: TestClient, agent: Actor, partner: Actor, manual_cancellation: ManualCancellation,
) -> None:
    # Alternating gateways: creation order and deadline order differ (2 h windows before 24 h ones).
    made = [await manual_cancellation(gateway, partner, reservation_body(hotel()))
            for gateway in (http, quick_gateway, http, quick_gateway, http)]
    for info, window in zip(made, (24, 2, 24, 2, 24), strict=True):
        # The deadline the workflow recorded is its first step + the gateway's agent quote window.
        assert _at(info["quote_deadline"]) - _at(info["history"][0]["at"]) == timedelta(hours=window)
    expected = sorted(made, key=lambda info: info["quote_deadline"])
    assert [info["code"] for info in expected] != [info["code"] for info in made]

    mine = {info["code"] for info in made}
    for limit in (2, 5, 200):
        listed = await _pages(http, agent, "awaiting_agent_quote", limit)
        deadlines = [(info["quote_deadline"] is None, _at(info["quote_deadline"])) for info in listed]
        assert deadlines == sorted(deadlines)  # every flow waiting, whoever made it (PostgreSQL's is shared)
        assert len({info["code"] for info in listed}) == len(listed)
        assert [info["code"] for info in listed if info["code"] in mine] == [info["code"] for info in expected]

    bad = await http.get("/v1/agent/cancellations?cursor=CAN-NOTACURSOR", headers=agent.headers)
    assert bad.status == 422
    assert (await bad.json())["errors"][0]["field"] == "query.cursor"


def _record(code: str, deadline: datetime | None, status: str = "awaiting_agent_quote") -> FlowRecord:
    info = {"code": code, "status": status, "quote_deadline": deadline.isoformat() if deadline else None}
    return FlowRecord(code=code, kind=FlowKind.CANCELLATION, product_id=f"PRD-{code}", reservation_id="RES-1",
                      partner_id="ptn_1", status=status, terminal=False, info=info,
                      at=datetime.now(timezone.utc), deadline=deadline)


async def test_queue_order_is_deadline_then_code_with_flows_waiting_for_nobody_last(store: Store) -> None:
    soon = datetime(2030, 1, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    later = soon + timedelta(microseconds=1)
    records = [_record("CAN-00000005", later), _record("CAN-00000004", None), _record("CAN-00000003", soon),
               _record("CAN-00000002", None), _record("CAN-00000001", soon), _record("CAN-00000006", later),
               _record("CAN-00000007", soon, status="awaiting_partner_decision")]
    for record in records:
        assert await store.flows.index(record, {})
    mine = {record.code for record in records}
    expected = ["CAN-00000001", "CAN-00000003", "CAN-00000005", "CAN-00000006", "CAN-00000002", "CAN-00000004"]

    for limit in (1, 2, 4, 50):
        seen: list[str] = []
        after: QueuePosition | None = None
        while True:
            items, after = await store.flows.queue("cancellation", "awaiting_agent_quote", limit, after)
            seen += [item["code"] for item in items if item["code"] in mine]  # PostgreSQL's is shared
            if after is None:
                break
            assert QueuePosition.parse(after.cursor()) == after  # the cursor round-trips exactly
        assert seen == expected
    everything, _ = await store.flows.queue("cancellation", None, 200, None)
    assert [item["code"] for item in everything if item["code"] in mine][:3] == ["CAN-00000001", "CAN-00000003", "CAN-00000007"]


async def test_migration_0004_fills_the_deadline_of_flows_already_waiting(store: Store) -> None:
    deadline = datetime(2030, 5, 6, 7, 8, 9, 10, tzinfo=timezone.utc)
    quoted = _record("CAN-0000000Q", None, status="awaiting_partner_decision")
    quoted.info["decision_deadline"] = deadline.isoformat().replace("+00:00", "Z")
    waiting = _record("CAN-0000000W", None)  # a flow started before quote deadlines were recorded

    async with from_revision(store, "0002") as conn:
        for record in (quoted, waiting):
            await conn.execute(sa.text(
                "INSERT INTO flows (code, kind, product_id, reservation_id, partner_id, status, info, created_at, updated_at)"
                " VALUES (:code, 'cancellation', 'PRD-1', 'RES-1', 'ptn_1', :status, :info, :at, :at)"
            ).bindparams(sa.bindparam("info", type_=sa.JSON), sa.bindparam("at", type_=flows.c.created_at.type)),
                {"code": record.code, "status": record.status, "info": record.info, "at": record.at})
    async with store.engine.connect() as conn:
        found = dict((await conn.execute(
            sa.select(flows.c.code, flows.c.deadline).where(flows.c.code.in_([quoted.code, waiting.code])))).all())
    assert found == {"CAN-0000000Q": deadline, "CAN-0000000W": None}


async def test_migration_0016_fills_the_deadline_of_reschedulings_and_changes_already_waiting(store: Store) -> None:
    deadline = datetime(2030, 5, 6, 7, 8, 9, 10, tzinfo=timezone.utc)
    at = deadline.isoformat().replace("+00:00", "Z")
    rows = [("RS-0000016W", "rescheduling", "awaiting_partner_action", {"decision_deadline": at}),
            ("RS-0000016D", "rescheduling", "auto_accepted", {"decision_deadline": at}),
            ("CF-0000016C", "change", "checkout_issued", {"expires_at": at}),
            ("CF-0000016M", "change", "modified", {"expires_at": at})]

    async with from_revision(store, "0015") as conn:
        for code, kind, status, info in rows:
            await conn.execute(sa.text(
                "INSERT INTO flows (code, kind, product_id, reservation_id, partner_id, status, info, created_at, updated_at)"
                " VALUES (:code, :kind, :product, 'RES-1', 'ptn_1', :status, :info, :at, :at)"
            ).bindparams(sa.bindparam("info", type_=sa.JSON), sa.bindparam("at", type_=flows.c.created_at.type)),
                {"code": code, "kind": kind, "product": f"PRD-{code}", "status": status,
                 "info": {"code": code, "status": status, **info}, "at": deadline})
    async with store.engine.connect() as conn:
        found = dict((await conn.execute(
            sa.select(flows.c.code, flows.c.deadline).where(flows.c.code.in_([row[0] for row in rows])))).all())
    assert found == {"RS-0000016W": deadline, "RS-0000016D": None, "CF-0000016C": deadline, "CF-0000016M": None}


async def test_the_console_is_served_by_the_gateway_under_its_policy(http: TestClient) -> None:
    page = await http.get("/console")
    assert page.status == 200 and page.content_type == "text/html"
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    html = await page.text()
    assert "<label for=\"api-key\">API key</label>" in html and "<script>" not in html and "style=" not in html
    assert "http://" not in html and "https://" not in html

    script = await http.get("/console/assets/console.js")
    assert script.status == 200 and script.content_type == "text/javascript"
    assert script.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    for name in ("console.css", "flow_view.js", "icon.svg"):
        assert (await http.get(f"/console/assets/{name}")).status == 200
    for missing in ("/console/assets/nothing.js", "/console/assets/../app.py", "/console/assets/%2e%2e/app.py",
                    "/console/assets/index.html"):
        answer = await http.get(missing)
        assert answer.status == 404, missing
    redirected = await http.get("/console/", allow_redirects=False)
    assert redirected.status == 308 and redirected.headers["Location"] == "/console"
