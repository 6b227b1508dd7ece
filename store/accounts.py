"""Partners, agents and their API keys (stored as SHA-256 hashes, never in clear)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from store.schema import agents, api_keys, partners


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


@dataclass(frozen=True)
class Principal:
    role: str  # partner | agent | admin
    principal_id: str


@dataclass(frozen=True)
class Partner:
    partner_id: str
    name: str
    webhook_url: str | None
    webhook_secret: str


class Accounts:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def create_partner(self, name: str, webhook_url: str | None) -> tuple[Partner, str]:
        """Create a partner; return it with its API key, which exists in clear only in this answer."""
        partner = Partner(
            partner_id="ptn_" + secrets.token_hex(8),
            name=name,
            webhook_url=webhook_url,
            webhook_secret="whsec_" + secrets.token_urlsafe(32),
        )
        api_key = "ask_" + secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc)
        async with self._engine.begin() as conn:
            await conn.execute(partners.insert().values(**partner.__dict__, created_at=now))
            await conn.execute(
                api_keys.insert().values(
                    key_hash=hash_key(api_key), role="partner", principal_id=partner.partner_id, created_at=now
                )
            )
        return partner, api_key

    async def create_agent(self, name: str) -> tuple[str, str]:
        agent_id = "agt_" + secrets.token_hex(8)
        api_key = "ask_" + secrets.token_urlsafe(32)
        now = datetime.now(timezone.utc)
        async with self._engine.begin() as conn:
            await conn.execute(agents.insert().values(agent_id=agent_id, name=name, created_at=now))
            await conn.execute(
                api_keys.insert().values(key_hash=hash_key(api_key), role="agent", principal_id=agent_id, created_at=now)
            )
        return agent_id, api_key

    async def principal_for(self, api_key: str) -> Principal | None:
        key_hash = hash_key(api_key)
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash))).first()
        if row is None or not secrets.compare_digest(row.key_hash, key_hash):
            return None
        return Principal(role=row.role, principal_id=row.principal_id)

    async def name_of(self, who: Principal) -> str:
        """The name a partner or an agent was created with; the role for the admin key."""
        if who.role == "partner":
            query = sa.select(partners.c.name).where(partners.c.partner_id == who.principal_id)
        elif who.role == "agent":
            query = sa.select(agents.c.name).where(agents.c.agent_id == who.principal_id)
        else:
            return who.role
        async with self._engine.connect() as conn:
            name = (await conn.execute(query)).scalar_one_or_none()
        return name or who.principal_id

    async def partner(self, partner_id: str) -> Partner | None:
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(partners).where(partners.c.partner_id == partner_id))).first()
        if row is None:
            return None
        return Partner(row.partner_id, row.name, row.webhook_url, row.webhook_secret)

    async def set_webhook(self, partner_id: str, url: str | None) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(partners.update().where(partners.c.partner_id == partner_id).values(webhook_url=url))
