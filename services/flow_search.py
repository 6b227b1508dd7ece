"""Finding flows (docs/api.md#finding-flows): an agent searches every partner's flows, a partner lists
its own, and an agent sees the partners a search can be narrowed to. How words match and the lists'
order are ``store.flow_search``'s; the roles are the routes' (agents and admins for the first and the
last)."""

from __future__ import annotations

from services.bootstrap import Deps
from services.requester import Requester
from store.flow_search import FlowFilter, ListedFlow, ListPosition


async def agents_page(deps: Deps, requester: Requester, where: FlowFilter, limit: int, after: ListPosition | None
                      ) -> tuple[list[ListedFlow], ListPosition | None]:
    """Every partner's flows ``where`` says, nearest deadline first, then newest: a page, and where it ends
    when more follow."""
    return await deps.store.flow_search.agents_page(where, limit, after)


async def partners_page(deps: Deps, requester: Requester, where: FlowFilter, limit: int, after: ListPosition | None
                        ) -> tuple[list[ListedFlow], ListPosition | None]:
    """The requester's own flows, newest first: another partner's reservation or product, named in
    ``where``, finds nothing (no hint that it exists)."""
    return await deps.store.flow_search.partners_page(requester.principal.principal_id, where, limit, after)


async def partner_names(deps: Deps, requester: Requester, limit: int, after: tuple[str, str] | None
                        ) -> tuple[list[tuple[str, str]], tuple[str, str] | None]:
    """(partner id, name) of every partner, by name: a page, and where it ends when more follow."""
    return await deps.store.flow_search.partner_names(limit, after)
