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
            row = (await conn.execute(sa.select(quotes).where(quotes.c.quote_id == quote_id))).first()
            if row is None:
                return None
            newer = (
                await conn.execute(sa.select(quotes.c.traveller_ids)
                                   .where(quotes.c.product_id == row.product_id, quotes.c.seq > row.seq))
            ).scalars().all()
        values = {k: getattr(row, k) for k in Quote.__dataclass_fields__}
        mine = set(row.traveller_ids or ())
        newest = not any(not mine or not travellers or mine & set(travellers) for travellers in newer)
        return Quote(**values), newest
