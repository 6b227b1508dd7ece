"""services.flow_search called directly, without HTTP, on SQLite and PostgreSQL: a partner's list holds its
own flows only, whatever it names; an agent's finds every partner's (docs/api.md#finding-flows)."""

from __future__ import annotations

from services import flow_search, special_requests
from services.bootstrap import Deps
from services.requester import Requester
from store.flow_search import FlowFilter, query_words
from tests.api.conftest import flight
from tests.services.conftest import Book, agent, book, deps, new_partner  # noqa: F401  (fixtures)


async def test_a_partner_lists_its_own_flows_and_an_agent_finds_everyones(
    deps: Deps, book: Book, agent: Requester,  # noqa: F811
) -> None:
    acme = await new_partner(deps, "Acme Service Travel")
    other = await new_partner(deps, "Other Service Travel")
    mine = await book(acme, flight())
    theirs = await book(other, flight())
    mine_id, theirs_id = mine["products"][0]["product_id"], theirs["products"][0]["product_id"]
    my_code = (await special_requests.ask(deps, acme, mine_id, "WCHR", "T1", None)).request_id
    their_code = (await special_requests.ask(deps, other, theirs_id, "WCHR", "T1", None)).request_id

    own, end = await flow_search.partners_page(deps, acme, FlowFilter(), 50, None)
    assert [flow.code for flow in own] == [my_code] and end is None
    for named in (FlowFilter(product_id=theirs_id), FlowFilter(reservation_id=theirs["reservation_id"])):
        assert (await flow_search.partners_page(deps, acme, named, 50, None))[0] == []
    # Another partner named outright is no wider view: a partner's list is its own, whatever it says.
    asked_for_theirs = FlowFilter(partner_id=other.principal.principal_id)
    assert [flow.code for flow in (await flow_search.partners_page(deps, acme, asked_for_theirs, 50, None))[0]] == [my_code]

    found, _ = await flow_search.agents_page(deps, agent, FlowFilter(words=query_words("service travel")), 50, None)
    assert {flow.code for flow in found} >= {my_code, their_code}
    assert {flow.partner_name for flow in found if flow.code in (my_code, their_code)} == {
        "Acme Service Travel", "Other Service Travel"}
