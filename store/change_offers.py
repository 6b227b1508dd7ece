"""Change alternatives as they were offered (docs/api.md#changes): an ``itinerary_id`` names one priced itinerary
of one product, valid until ``expires_at``, and only against the product version it was priced on."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from store.db import Repository
from store.schema import change_offers


@dataclass(frozen=True)
class ChangeOffer:
    itinerary_id: str
    product_id: str
    partner_id: str
    base_fingerprint: str
    itinerary: dict[str, Any]  # the product as the change makes it, JSON mode (Money as decimal strings)
    fare_difference: dict[str, str]
    change_fee: dict[str, str]
    total_due: dict[str, str]
    created_at: datetime
    expires_at: datetime


class ChangeOffers(Repository):
    async def save(self, offers: list[ChangeOffer]) -> None:
        if not offers:
            return
        async with self._writing() as conn:
            # A retry under the same Idempotency-Key offers the same itinerary ids: kept once.
            known = await conn.execute(
                sa.select(change_offers.c.itinerary_id).where(change_offers.c.itinerary_id == offers[0].itinerary_id)
            )
            if known.first() is None:
                await conn.execute(change_offers.insert(), [offer.__dict__ for offer in offers])

    async def offer(self, itinerary_id: str) -> ChangeOffer | None:
        async with self._reading() as conn:
            row = (
                await conn.execute(sa.select(change_offers).where(change_offers.c.itinerary_id == itinerary_id))
            ).first()
        if row is None:
            return None
        return ChangeOffer(**{name: getattr(row, name) for name in ChangeOffer.__dataclass_fields__})
