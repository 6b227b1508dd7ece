"""Credits (docs/api.md#credits, docs/settlement.md#credits): refunds given as vouchers, as partners,
agents and finance read them; what each request checks is ``services.credits``. Credits are issued
and spent by the flows (a cancellation or rescheduling with ``refund_to: credit``, a change paid with
one), never created here.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from api.app_keys import DEPS
from api.endpoints import Reply, Resource
from api.page_cursors import cursor_position, cursor_seq, next_cursor
from domain.credit_ledger import Credit, CreditBalance, CreditState
from domain.input_bounds import Instant
from domain.money import CurrencyCode
from services import credits
from services.requester import Requester
from store.credit_records import CreditFilter

resource = Resource("settlement")

READERS = ("partner", "agent", "admin")


class _ByPartnerAndCurrency(BaseModel):
    model_config = ConfigDict(extra="forbid")

    partner_id: str | None = Field(default=None, min_length=1, max_length=40, description="agents and admins only")
    currency: CurrencyCode | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=400)

    def scope(self, requester: Requester) -> dict[str, Any]:
        """What a cursor is bound to: the filters and the caller."""
        who = requester.principal
        return {**self.model_dump(mode="json", exclude={"limit", "cursor"}), "caller": f"{who.role}:{who.principal_id}"}


class BalancesQuery(_ByPartnerAndCurrency):
    pass


class CreditsQuery(_ByPartnerAndCurrency):
    state: CreditState | None = None
    reservation_id: str | None = Field(default=None, min_length=1, max_length=40)
    flow_code: str | None = Field(default=None, min_length=1, max_length=20, description="the flow that issued it")
    expires_before: Instant | None = Field(default=None, description="credits expiring before this time (RFC 3339 with offset)")


class CreditPage(BaseModel):
    items: list[Credit]
    next: str | None


class BalancePage(BaseModel):
    items: list[CreditBalance]
    next: str | None


def _balance_position(after: Any) -> tuple[str, str]:
    if not (isinstance(after, list) and len(after) == 2 and all(isinstance(part, str) for part in after)):
        raise ValueError("not a position in the totals")
    return after[0], after[1]


@resource.route("GET", "/v1/credits/balances", summary="Credits per partner and currency: issued, redeemed, expired, outstanding",
                roles=READERS, query=BalancesQuery, answers={200: BalancePage})
async def list_balances(request: web.Request, requester: Requester, query: BalancesQuery) -> Reply:
    scope = query.scope(requester)
    after = cursor_position(query.cursor, scope, _balance_position)
    rows = await credits.balances(request.app[DEPS], requester, query.partner_id, query.currency, after, query.limit + 1)
    page = rows[: query.limit]
    more = next_cursor([page[-1].partner_id, page[-1].currency], scope) if len(rows) > query.limit else None
    return Reply(200, BalancePage(items=page, next=more))


@resource.route("GET", "/v1/credits", summary="Credits, in the order they were issued", roles=READERS, query=CreditsQuery,
                answers={200: CreditPage})
async def list_credits(request: web.Request, requester: Requester, query: CreditsQuery) -> Reply:
    scope = query.scope(requester)
    after = cursor_seq(query.cursor, scope)
    where = CreditFilter(partner_id=query.partner_id, reservation_id=query.reservation_id, state=query.state,
                         currency=query.currency, flow_code=query.flow_code, expires_before=query.expires_before)
    rows = await credits.page(request.app[DEPS], requester, where, after, query.limit + 1)
    page = rows[: query.limit]
    more = next_cursor(page[-1][0], scope) if len(rows) > query.limit else None
    return Reply(200, CreditPage(items=[credit for _, credit in page], next=more))


@resource.route("GET", "/v1/credits/{credit_id}", summary="A credit, with its movements", roles=READERS,
                answers={200: Credit})
async def get_credit(request: web.Request, requester: Requester) -> Reply:
    return Reply(200, await credits.credit(request.app[DEPS], requester, request.match_info["credit_id"]))
