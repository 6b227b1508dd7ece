"""Finding flows over real HTTP, on SQLite and PostgreSQL (docs/api.md#finding-flows): the agents' search by
each kind of term, its filters, keyset paging while flows arrive, what a partner may see, and bad input.

PostgreSQL's database is shared by the whole session, so each test names its partners and travellers with
words of its own (``tag``) and checks only the flows it made.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient

from api.page_cursors import next_cursor
from store.flow_search import FlowFilter, query_words
from store.repositories import Store
from store.schema import flows, partners, reservations
from tests.api.conftest import ADMIN, Actor, flight, hotel, new_partner, reservation_body
from tests.api.test_foundation import problem
from tests.console.conftest import ManualCancellation
from tests.migrating import from_revision

LISTED_FIELDS = {"code", "kind", "status", "partner_id", "partner_name", "reservation_id", "product_id", "product_kind",
                 "travellers", "deadline", "created_at", "updated_at", "finished"}


@pytest.fixture
def tag() -> str:
    """A word no other test uses (letters only: a run of letters and digits is a term of its own)."""
    return "".join(chr(ord("a") + int(c, 16)) for c in uuid.uuid4().hex[:10])


async def book_for(http: TestClient, owner: Actor, *products: dict[str, Any], travellers: list[str]) -> dict[str, Any]:
    body = reservation_body(*products)
    body["travellers"] = [{"traveller_id": f"T{i + 1}", "name": name} for i, name in enumerate(travellers)]
    booked = await http.post("/v1/sandbox/reservations", json=body, headers=owner.headers)
    assert booked.status == 201, await booked.text()
    return await booked.json()


async def special_request(http: TestClient, owner: Actor, product_id: str) -> str:
    """A flow that takes no lock: as many as a test needs on one product."""
    asked = await http.post(f"/v1/products/{product_id}/special-requests", json={"code": "WCHR", "traveller_id": "T1"},
                            headers=owner.headers)
    assert asked.status == 202, await asked.text()
    code: str = (await asked.json())["request_id"]
    return code


async def listed(http: TestClient, who: Actor | dict[str, str], path: str, **params: str | int) -> dict[str, Any]:
    headers = who.headers if isinstance(who, Actor) else who
    answer = await http.get(f"{path}?{urlencode(params)}", headers=headers)
    assert answer.status == 200, await answer.text()
    page: dict[str, Any] = await answer.json()
    return page


async def found(http: TestClient, who: Actor | dict[str, str], q: str, **params: str | int) -> list[str]:
    page = await listed(http, who, "/v1/agent/flows", q=q, limit=200, **params)
    assert page["next"] is None
    return [item["code"] for item in page["items"]]


async def test_an_agent_finds_a_flow_by_code_reservation_product_partner_or_traveller(
    http: TestClient, agent: Actor, tag: str,
) -> None:
    acme = await new_partner(http, f"Acme {tag.capitalize()} Travel")
    other = await new_partner(http, f"Zephyr {tag.capitalize()} Voyages")
    mine = await book_for(http, acme, flight(), travellers=[f"Ada Lovelace{tag}", f"José Müller-Lüdenscheidt {tag}"])
    theirs = await book_for(http, other, flight(), travellers=[f"Grace Hopper {tag}"])
    code = await special_request(http, acme, mine["products"][0]["product_id"])
    their_code = await special_request(http, other, theirs["products"][0]["product_id"])
    product_id, reservation_id = mine["products"][0]["product_id"], mine["reservation_id"]

    suffix = code.split("-")[1]
    for q in (code, code.lower(), f"{code[:7]} {tag}", f"{suffix[:4].lower()} {tag}", suffix, reservation_id,
              f"{reservation_id.lower()[:8]} {tag}", reservation_id.split("-")[1], product_id, product_id.lower(),
              # "acm", not "ac": the other partner's random ids begin with "AC" once in 1,296.
              f"acme {tag}", f"ACME {tag.upper()}", f"acm {tag[:6]}", f"{tag} lovel", f"ADA lovelace{tag}", f"jose {tag}", f"müller {tag}",
              f"MULLER {tag}",
              f"lüdensch {tag}", f"muller-lud {tag}", f"{tag}, ada"):
        assert await found(http, agent, q) == [code], q
    assert await found(http, agent, f"{tag} voyages") == [their_code]
    assert await found(http, agent, tag) == [their_code, code]  # newest first: neither waits for anyone
    assert await found(http, agent, f"{tag} nobody") == []
    assert await found(http, ADMIN, f"grace {tag}") == [their_code]

    item = (await listed(http, agent, "/v1/agent/flows", q=code))["items"][0]
    assert set(item) == LISTED_FIELDS
    assert item | {"created_at": None, "updated_at": None} == {
        "code": code, "kind": "special_request", "status": item["status"], "partner_id": acme.id,
        "partner_name": f"Acme {tag.capitalize()} Travel", "reservation_id": reservation_id, "product_id": product_id,
        "product_kind": "flight", "travellers": [f"Ada Lovelace{tag}", f"José Müller-Lüdenscheidt {tag}"], "deadline": None,
        "created_at": None, "updated_at": None, "finished": item["status"] in ("confirmed", "declined"),
    }
    assert datetime.fromisoformat(item["created_at"]) <= datetime.fromisoformat(item["updated_at"])


async def test_filters_combine_and_the_nearest_deadline_comes_first(
    http: TestClient, quick_gateway: TestClient, agent: Actor, tag: str, manual_cancellation: ManualCancellation,
) -> None:
    acme = await new_partner(http, f"Acme {tag}")
    other = await new_partner(http, f"Other {tag}")
    later = await manual_cancellation(http, acme, reservation_body(hotel()))  # 24 h to quote
    sooner = await manual_cancellation(quick_gateway, acme, reservation_body(hotel()))  # 2 h to quote
    theirs = await manual_cancellation(quick_gateway, other, reservation_body(hotel()))
    booked = await book_for(http, acme, flight(), travellers=["Ada Lovelace"])
    request = await special_request(http, acme, booked["products"][0]["product_id"])

    async def codes(**params: str) -> list[str]:
        page = await listed(http, agent, "/v1/agent/flows", limit=200, **params)
        return [item["code"] for item in page["items"]]

    assert await codes(q=tag) == [sooner["code"], theirs["code"], later["code"], request]
    assert await codes(q=tag, partner_id=acme.id) == [sooner["code"], later["code"], request]
    assert await codes(q=tag, partner_id=acme.id, kind="cancellation") == [sooner["code"], later["code"]]
    assert await codes(q=tag, kind="cancellation", status="awaiting_agent_quote") == [
        sooner["code"], theirs["code"], later["code"]]
    in_3_hours = (datetime.now(timezone.utc) + timedelta(hours=3)).isoformat()
    assert await codes(q=tag, partner_id=acme.id, kind="cancellation", status="awaiting_agent_quote",
                       deadline_before=in_3_hours) == [sooner["code"]]
    assert await codes(q=tag, kind="special_request", status="awaiting_agent_quote") == []
    assert await codes(q=tag, kind="special_request") == [request]
    assert await codes(q=tag, product_id=later["product_id"]) == [later["code"]]
    assert await codes(q=tag, reservation_id=booked["reservation_id"]) == [request]
    # Without words: the same filters over every flow (PostgreSQL's holds other tests' too).
    mine = {sooner["code"], later["code"], request}
    assert [c for c in await codes(status="awaiting_agent_quote") if c in mine] == [sooner["code"], later["code"]]
    everything = await codes(partner_id=acme.id)
    assert everything == [sooner["code"], later["code"], request]
    assert [c for c in await codes(deadline_before=in_3_hours) if c in mine] == [sooner["code"]]

    items = (await listed(http, agent, "/v1/agent/flows", q=tag, partner_id=acme.id))["items"]
    assert [item["deadline"] is not None for item in items] == [True, True, False]
    assert datetime.fromisoformat(items[0]["deadline"]) == datetime.fromisoformat(sooner["quote_deadline"])


async def test_pages_follow_each_other_without_gaps_or_repeats_while_new_flows_arrive(
    http: TestClient, agent: Actor, tag: str, manual_cancellation: ManualCancellation,
) -> None:
    acme = await new_partner(http, f"Acme {tag}")
    # Two flows wait for an agent (the first made has the nearer deadline), five wait for nobody.
    waiting = [(await manual_cancellation(http, acme, reservation_body(hotel())))["code"] for _ in range(2)]
    booked = await book_for(http, acme, flight(), travellers=["Ada Lovelace"])
    product_id = booked["products"][0]["product_id"]
    others = [await special_request(http, acme, product_id) for _ in range(5)]

    for path, who, params in (("/v1/agent/flows", agent, {"q": tag}), ("/v1/flows", acme, {})):
        for limit in (1, 2, 3):
            if path == "/v1/agent/flows":  # deadlines first, nearest first; then newest first
                expected = waiting + others[::-1]
            else:  # a partner's own list: newest first
                expected = others[::-1] + waiting[::-1]
            seen: list[str] = []
            arrived: list[str] = []
            cursor: str | None = None
            while True:
                page = await listed(http, who, path, limit=limit, **params, **({"cursor": cursor} if cursor else {}))
                assert 0 < len(page["items"]) <= limit
                seen += [item["code"] for item in page["items"]]
                if (cursor := page["next"]) is None:
                    break
                arrived.append(await special_request(http, acme, product_id))
            # Every flow that was there is listed once, in order; one that arrived meanwhile may show (a page
            # that starts the flows without a deadline starts at the newest) but never twice.
            assert [code for code in seen if code not in arrived] == expected, (path, limit)
            assert len(seen) == len(set(seen))
            others += arrived


async def test_a_partner_lists_only_its_own_flows_and_agents_list_every_partners(
    http: TestClient, agent: Actor, tag: str,
) -> None:
    acme = await new_partner(http, f"Acme {tag}")
    other = await new_partner(http, f"Other {tag}")
    mine = await book_for(http, acme, flight(), travellers=["Ada Lovelace"])
    theirs = await book_for(http, other, flight(), travellers=["Grace Hopper"])
    my_code = await special_request(http, acme, mine["products"][0]["product_id"])
    their_code = await special_request(http, other, theirs["products"][0]["product_id"])

    own = await listed(http, acme, "/v1/flows", limit=200)
    assert [item["code"] for item in own["items"]] == [my_code] and own["next"] is None
    assert own["items"][0]["partner_name"] == f"Acme {tag}"
    assert (await listed(http, acme, "/v1/flows", kind="special_request", product_id=mine["products"][0]["product_id"],
                         reservation_id=mine["reservation_id"]))["items"][0]["code"] == my_code
    # Another partner's reservation or product, named outright, finds nothing: no hint it exists.
    assert (await listed(http, acme, "/v1/flows", reservation_id=theirs["reservation_id"]))["items"] == []
    assert (await listed(http, acme, "/v1/flows", product_id=theirs["products"][0]["product_id"]))["items"] == []
    await problem(await http.get("/v1/flows?partner_id=" + other.id, headers=acme.headers), 422, "validation_failed")

    assert await found(http, agent, tag) == [their_code, my_code]
    await problem(await http.get(f"/v1/agent/flows?q={tag}", headers=acme.headers), 403, "forbidden")
    await problem(await http.get("/v1/agent/flows"), 401, "unauthorized")
    await problem(await http.get("/v1/flows", headers=agent.headers), 403, "forbidden")

    # A cursor is bound to whoever it was given to.
    await book_for(http, acme, flight(), travellers=["Ada Lovelace"])
    await special_request(http, acme, mine["products"][0]["product_id"])
    cursor = (await listed(http, acme, "/v1/flows", limit=1))["next"]
    assert cursor is not None
    refused = await problem(await http.get(f"/v1/flows?limit=1&cursor={cursor}", headers=other.headers), 422,
                            "validation_failed")
    assert refused["errors"][0]["field"] == "query.cursor"

    # Every partner of the session's database, page after page: the first page holds other tests' "Acme"s too.
    names: list[dict[str, str]] = []
    cursor = None
    while True:
        page = await listed(http, agent, "/v1/agent/partners", limit=200, **({"cursor": cursor} if cursor else {}))
        names += page["items"]
        if (cursor := page["next"]) is None:
            break
    assert {"partner_id": acme.id, "name": f"Acme {tag}"} in names
    await problem(await http.get("/v1/agent/partners", headers=acme.headers), 403, "forbidden")


async def test_agents_page_through_the_partners_by_name(http: TestClient, agent: Actor, tag: str) -> None:
    made = {(await new_partner(http, f"{tag} {letter}")).id for letter in "cab"}
    seen: list[dict[str, str]] = []
    cursor: str | None = None
    while True:
        page = await listed(http, agent, "/v1/agent/partners", limit=2, **({"cursor": cursor} if cursor else {}))
        seen += page["items"]
        if (cursor := page["next"]) is None:
            break
    names = [(p["name"], p["partner_id"]) for p in seen]
    assert names == sorted(names) and len(names) == len(set(names))
    assert [name for name, pid in names if pid in made] == [f"{tag} a", f"{tag} b", f"{tag} c"]


async def test_bad_parameters_and_forged_cursors_are_422_never_500(http: TestClient, agent: Actor, partner: Actor) -> None:
    booked = await book_for(http, partner, flight(), travellers=["Ada Lovelace"])
    for _ in range(2):
        await special_request(http, partner, booked["products"][0]["product_id"])
    cursor = (await listed(http, agent, "/v1/agent/flows", limit=1))["next"]
    scope = {"q": None, "kind": None, "status": None, "reservation_id": None, "product_id": None, "partner_id": None,
             "deadline_before": None, "disruption_id": None, "caller": f"agent:{agent.id}"}
    # Checked as this gateway checks them, but naming no time it could have given: refused all the same.
    huge = next_cursor([10**30, 0, "CAN-00000000"], scope)
    negative = next_cursor([None, -1, "CAN-00000000"], scope)
    not_a_position = next_cursor({"after": 1}, scope)  # type: ignore[arg-type]
    assert cursor is not None
    made_here = next_cursor([None, 0, "CAN-00000000"], scope)  # shows the scope above is the one the gateway checks
    assert (await listed(http, agent, "/v1/agent/flows", cursor=made_here))["next"] is None
    cases = {
        "cursor=forged": "query.cursor",
        f"cursor={cursor}x": "query.cursor",
        f"cursor={cursor[:-2]}": "query.cursor",
        f"cursor={cursor}&kind=change": "query.cursor",  # given for other filters
        f"cursor={huge}": "query.cursor",
        f"cursor={negative}": "query.cursor",
        f"cursor={not_a_position}": "query.cursor",
        "cursor=" + "A" * 201: "query.cursor",
        "limit=0": "query.limit",
        "limit=201": "query.limit",
        "limit=ten": "query.limit",
        "kind=refund": "query.kind",
        "status=lost": "query.status",
        "deadline_before=2030-01-01T00:00:00": "query.deadline_before",
        "deadline_before=0001-01-01T00:00:00%2B01:00": "query.deadline_before",
        "deadline_before=soon": "query.deadline_before",
        "q=" + "+".join("abcdefghi"): "query.q",
        "q=" + "a" * 201: "query.q",
        "q=ada%00": "query.q",
        "partner_id=" + "p" * 41: "query.partner_id",
        "disruption_id=dsr_1": "query.disruption_id",
    }
    for params, field in cases.items():
        body = await problem(await http.get(f"/v1/agent/flows?{params}", headers=agent.headers), 422, "validation_failed")
        assert [error["field"] for error in body["errors"]] == [field], params
    for params in ("cursor=forged", "limit=500", "q=ada", "partner_id=ptn_1", "deadline_before=2030-01-01T00:00:00Z"):
        await problem(await http.get(f"/v1/flows?{params}", headers=partner.headers), 422, "validation_failed")
    await problem(await http.get("/v1/agent/partners?cursor=forged", headers=agent.headers), 422, "validation_failed")
    # Words that are only punctuation narrow nothing: the whole list, as without q.
    assert (await listed(http, agent, "/v1/agent/flows", q=" ,;- ", limit=1))["items"]


async def test_flows_indexed_before_the_search_are_found_after_the_migration(store: Store, tag: str) -> None:
    """Migration 0008 gives the flows already there the terms the running code gives new ones."""
    now = datetime.now(timezone.utc)

    async with from_revision(store, "0007") as conn:
        await conn.execute(partners.insert().values(partner_id=f"ptn_{tag}", name=f"Old {tag} Travel",
                                                    webhook_secret="whsec_x", created_at=now))
        await conn.execute(reservations.insert().values(
            reservation_id=f"RES-{tag.upper()}", partner_id=f"ptn_{tag}", status="confirmed", created_at=now,
            travellers=[{"traveller_id": "T1", "name": f"Émile Zola{tag}"}]))
        code = "CAN-OLD" + tag[:5].upper()
        await conn.execute(flows.insert().values(
            code=code, kind="cancellation", product_id=f"PRD-{tag.upper()}", reservation_id=f"RES-{tag.upper()}",
            partner_id=f"ptn_{tag}", status="cancelled", info={"code": code, "status": "cancelled"}, created_at=now,
            updated_at=now))

    for q in (f"emile zola{tag}", f"old {tag}", f"res-{tag[:4]}", "can-old" + tag[:3], tag[:6]):
        items, _ = await store.flow_search.agents_page(FlowFilter(words=query_words(q)), 50, None)
        assert [item.code for item in items] == [code], q
