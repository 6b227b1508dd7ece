"""The payments journal (docs/api.md#settlement, docs/settlement.md#the-payments-journal
"payments" and "confirm payment"): a partner reads its own entries, as JSON or CSV, and confirms them;
agents and admins read every partner's (``services.payments``)."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from api.app_keys import DEPS
from api.endpoints import Reply, Resource
from api.page_cursors import cursor_seq, next_cursor
from domain.input_bounds import Instant
from domain.journal import Category, Payment, PaymentState
from domain.money import format_decimal
from services import payments
from services.requester import Requester
from store.accounts import Principal
from store.payments_journal import PaymentFilter

resource = Resource("settlement")

CSV_COLUMNS = (
    "payment_id", "reservation_id", "partner_id", "product_id", "flow_code", "refund_id", "category", "amount",
    "currency", "vat_rate", "state", "created_at", "invoiced_at", "credit_id", "waiver_code", "penalty_waived",
)  # fmt: skip


class PaymentsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    start_time: Instant | None = Field(default=None, description="entries booked at or after (RFC 3339 with offset)")
    end_time: Instant | None = Field(default=None, description="entries booked before")
    category: Category | None = None
    state: PaymentState | None = None
    reservation_id: str | None = Field(default=None, min_length=1, max_length=40)
    partner_id: str | None = Field(default=None, min_length=1, max_length=40, description="agents and admins only")
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=200)

    @field_validator("end_time")
    @classmethod
    def _not_before_start(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        start = info.data.get("start_time")
        if value is not None and start is not None and start > value:
            raise ValueError("must not be before start_time")
        return value

    def scope(self, who: Principal) -> dict[str, Any]:
        """What a cursor is bound to: the filters and the requester."""
        return {**self.model_dump(mode="json", exclude={"limit", "cursor"}), "caller": f"{who.role}:{who.principal_id}"}


class PaymentPage(BaseModel):
    items: list[Payment]
    next: str | None


class NoBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class CsvReply(Reply):
    """The same rows as the JSON page, as ``text/csv``; the next page's cursor in a ``Link`` header."""

    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    def response(self) -> web.Response:
        return web.Response(status=self.status, text=self.text, content_type="text/csv", charset="utf-8",
                            headers=self.headers)


def _wants_csv(request: web.Request) -> bool:
    accepted = [part.split(";")[0].strip().lower() for part in request.headers.get("Accept", "").split(",")]
    return "text/csv" in accepted and ("application/json" not in accepted
                                       or accepted.index("text/csv") < accepted.index("application/json"))


def _csv(items: list[Payment]) -> str:
    """Money as ``amount,currency`` columns; every cell is ours (ids, categories, decimals, times), never a partner's text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for p in items:
        writer.writerow([
            p.payment_id, p.reservation_id, p.partner_id, p.product_id or "", p.flow_code or "", p.refund_id or "",
            p.category, format_decimal(p.amount.amount), p.amount.currency,
            "" if p.vat_rate is None else format_decimal(p.vat_rate), p.state, p.created_at.isoformat(),
            "" if p.invoiced_at is None else p.invoiced_at.isoformat(), p.credit_id or "", p.waiver_code or "",
            "" if p.penalty_waived is None else format_decimal(p.penalty_waived.amount),
        ])
    return out.getvalue()


@resource.route("GET", "/v1/payments", summary="The payments journal, oldest first (Accept: text/csv for CSV)",
                roles=("partner", "agent", "admin"), query=PaymentsQuery, answers={200: PaymentPage})
async def list_payments(request: web.Request, requester: Requester, query: PaymentsQuery) -> Reply:
    scope = query.scope(requester.principal)
    after = cursor_seq(query.cursor, scope)
    where = PaymentFilter(
        partner_id=query.partner_id, reservation_id=query.reservation_id, category=query.category, state=query.state,
        start_time=query.start_time, end_time=query.end_time,
    )
    rows = await payments.page(request.app[DEPS], requester, where, after, query.limit + 1)
    page = rows[: query.limit]
    more = next_cursor(page[-1][0], scope) if len(rows) > query.limit else None
    return _page(request, [payment for _, payment in page], more)


def _page(request: web.Request, items: list[Payment], more: str | None) -> Reply:
    if not _wants_csv(request):
        return Reply(200, PaymentPage(items=items, next=more))
    headers = {"Content-Disposition": 'attachment; filename="payments.csv"'}
    if more is not None:
        params = {k: v for k, v in request.query.items() if k != "cursor"} | {"cursor": more}
        headers["Link"] = f'<{request.path}?{urlencode(params)}>; rel="next"'
    return CsvReply(200, {}, text=_csv(items), headers=headers)


@resource.route("POST", "/v1/payments/{payment_id}/confirm", summary="Confirm a journal entry: it is invoiced",
                roles=("partner",), body=NoBody, answers={200: Payment})
async def confirm_payment(request: web.Request, requester: Requester, body: NoBody) -> Reply:
    return Reply(200, await payments.confirm(request.app[DEPS], requester, request.match_info["payment_id"]))
