"""Cancellation quotes as they were given (docs/api.md#cancellations): only the newest quote of a
product can be used, until it expires."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from domain.flow_info import Resolution
from store.db import Repository, insert_once
from store.schema import quotes

# A quote with the travellers of each newer quote of its product, in one statement (a row per newer
# quote; one with NULLs when there is none): the cancellation's start reads it before opening the flow.
_NEWER = quotes.alias("newer")
_QUOTE_AND_NEWER = (
    sa.select(quotes, _NEWER.c.seq.label("newer_seq"), _NEWER.c.traveller_ids.label("newer_travellers"))
    .select_from(quotes.outerjoin(_NEWER, sa.and_(_NEWER.c.product_id == quotes.c.product_id,
                                                  _NEWER.c.seq > quotes.c.seq)))
    .where(quotes.c.quote_id == sa.bindparam("quote_id"))
)


@dataclass(frozen=True)
class Quote:
    quote_id: str
    product_id: str
    partner_id: str
    resolution: Resolution
    paid: dict[str, str]
    penalty: dict[str, str] | None
    refund: dict[str, str] | None
    created_at: datetime
    expires_at: datetime
    # The travellers it cancels (docs/api.md#partial-cancellation); None for quotes given before they were named.
    traveller_ids: list[str] | None = None
    involuntary: bool = False
    waiver: dict[str, Any] | None = None
    waiver_request: dict[str, Any] | None = None
    policy_penalty: dict[str, str] | None = None


class Quotes(Repository):
    async def save(self, quote: Quote) -> Quote:
        """Keep ``quote``; if a quote with its id exists already (a retry under the same
        Idempotency-Key), keep that one: what the first attempt answered is the quote."""
        async with self._writing() as conn:
            if await insert_once(conn, quotes, quote.__dict__, key=("quote_id",)):
                return quote
            row = (await conn.execute(sa.select(quotes).where(quotes.c.quote_id == quote.quote_id))).one()
        return Quote(**{k: getattr(row, k) for k in Quote.__dataclass_fields__})

    async def quote(self, quote_id: str) -> tuple[Quote, bool] | None:
        """The quote and whether it is still the newest of its product for its travellers: only the
        newest can be used, and a newer quote naming any of the same travellers (or the whole product)
        supersedes it, while quotes for different travellers of the product stand side by side
        (docs/api.md#partial-cancellation)."""
        async with self._reading() as conn:
            rows = (await conn.execute(_QUOTE_AND_NEWER, {"quote_id": quote_id})).all()
        if not rows:
            return None
        row = rows[0]
        values = {k: getattr(row, k) for k in Quote.__dataclass_fields__}
        mine = set(row.traveller_ids or ())
        newer = [r.newer_travellers for r in rows if r.newer_seq is not None]
        newest = not any(not mine or not travellers or mine & set(travellers) for travellers in newer)
        return Quote(**values), newest
