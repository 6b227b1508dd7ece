"""Partners, agents and their API keys (stored as SHA-256 hashes, never in clear).

A key is valid until it is revoked (``revoked_at``) or, once rotated, until its grace period ends
(``expires_at``). Looking a key up is cached per process for :data:`AUTH_CACHE_TTL`, which is
therefore how long a revoked key may still work on another gateway process
(docs/api.md#authentication-and-roles).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.codes import AGENT_ID, KEY_ID, PARTNER_ID
from store.db import Repository
from store.schema import agents, api_keys, partners

# How long a looked-up key is trusted without asking the database again (per process).
AUTH_CACHE_TTL = timedelta(seconds=30)
AUTH_CACHE_SIZE = 10_000
# How long a key replaced by a partner's rotation, and a rotated webhook secret, keep working.
KEY_ROTATION_GRACE = timedelta(hours=24)
SECRET_ROTATION_GRACE = timedelta(hours=24)


def hash_key(api_key: str) -> str:
    return hashlib.sha256(api_key.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(timezone.utc)


def new_api_key() -> str:
    return "ask_" + secrets.token_urlsafe(32)


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    role: str  # partner | agent | admin (and any role a key is issued for)
    principal_id: str
    key_id: str | None = None  # the key the caller authenticated with (None for the admin's configured key)


@dataclass(frozen=True)
class Partner:
    partner_id: str
    name: str
    webhook_url: str | None
    webhook_secret: str


@dataclass(frozen=True)
class KeyView:
    """An API key as the admin sees it: its public id and its life, never the key."""

    key_id: str
    role: str
    principal_id: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active" if self.expires_at is None else "expiring"


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    api_key: str  # in clear only in this answer


@dataclass(frozen=True)
class RotatedSecret:
    webhook_secret: str
    previous_secret_expires_at: datetime


class UnknownPrincipal(LookupError):
    """No key was ever issued to this principal id."""


@dataclass
class _Cached:
    principal: Principal
    trusted_until: float  # monotonic
    expires_at: datetime | None


def key_row(api_key: str, role: str, principal_id: str, now: datetime) -> dict[str, Any]:
    """The api_keys row of a new key (stored hashed); every key of every role is inserted so."""
    return {
        "key_hash": hash_key(api_key), "key_id": KEY_ID.secure(), "role": role,
        "principal_id": principal_id, "created_at": now,
    }


def _view(row: Any) -> KeyView:
    return KeyView(row.key_id, row.role, row.principal_id, row.created_at, row.expires_at, row.revoked_at)


class Accounts(Repository):
    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        self._cache: OrderedDict[str, _Cached] = OrderedDict()

    # --- creating principals ---------------------------------------------------------------

    async def create_partner(self, name: str, webhook_url: str | None) -> tuple[Partner, str]:
        """Create a partner; return it with its API key, which exists in clear only in this answer."""
        partner = Partner(
            partner_id=PARTNER_ID.secure(), name=name, webhook_url=webhook_url, webhook_secret=_new_secret()
        )
        api_key = new_api_key()
        now = _now()
        async with self._writing() as conn:
            await conn.execute(partners.insert().values(**partner.__dict__, created_at=now))
            await conn.execute(api_keys.insert().values(**key_row(api_key, "partner", partner.partner_id, now)))
        return partner, api_key

    async def create_agent(self, name: str) -> tuple[str, str]:
        agent_id = AGENT_ID.secure()
        api_key = new_api_key()
        now = _now()
        async with self._writing() as conn:
            await conn.execute(agents.insert().values(agent_id=agent_id, name=name, created_at=now))
            await conn.execute(api_keys.insert().values(**key_row(api_key, "agent", agent_id, now)))
        return agent_id, api_key

    # --- authentication ----------------------------------------------------------------------

    def recognised(self, api_key: str) -> Principal | None:
        """Whose key this process last found valid, however long ago (None: never, or forgotten since).

        Never touches the database, and says nothing about the key being valid now: the gateway uses
        it to charge the lookup :meth:`principal_for` may make to the account it will most likely
        confirm, so only keys never seen valid are charged to the caller's address.
        """
        cached = self._cache.get(hash_key(api_key))
        return None if cached is None else cached.principal

    async def principal_for(self, api_key: str) -> Principal | None:
        """The key's principal if the key is valid now; cached for :data:`AUTH_CACHE_TTL`."""
        key_hash = hash_key(api_key)
        cached = self._cache.get(key_hash)
        if cached is not None:
            self._cache.move_to_end(key_hash)
            if time.monotonic() < cached.trusted_until and (cached.expires_at is None or _now() < cached.expires_at):
                return cached.principal
        async with self._reading() as conn:
            row = (await conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash))).first()
        if row is None or not secrets.compare_digest(row.key_hash, key_hash) or row.revoked_at is not None \
                or (row.expires_at is not None and row.expires_at <= _now()):
            self._cache.pop(key_hash, None)
            return None
        found = Principal(role=row.role, principal_id=row.principal_id, key_id=row.key_id)
        # Only valid keys are kept (past their trust too, for :meth:`recognised`): unknown keys must
        # not fill the memory of the process; the least recently used go first.
        self._cache[key_hash] = _Cached(found, time.monotonic() + AUTH_CACHE_TTL.total_seconds(), row.expires_at)
        self._cache.move_to_end(key_hash)
        if len(self._cache) > AUTH_CACHE_SIZE:
            self._cache.popitem(last=False)
        return found

    def _forget(self, *, principal_id: str | None = None, key_id: str | None = None) -> None:
        """Drop cached lookups at once in this process (others catch up within the cache's TTL)."""
        for key_hash, cached in list(self._cache.items()):
            if cached.principal.principal_id == principal_id or (key_id and cached.principal.key_id == key_id):
                self._cache.pop(key_hash, None)

    # --- keys: the admin's view, revocation and rotation ------------------------------------

    async def keys(self, principal_id: str) -> list[KeyView]:
        async with self._reading() as conn:
            rows = (
                await conn.execute(
                    sa.select(api_keys).where(api_keys.c.principal_id == principal_id).order_by(api_keys.c.created_at)
                )
            ).all()
        return [_view(row) for row in rows]

    async def issue_key(self, principal_id: str) -> tuple[KeyView, str]:
        """A new key for a principal that already had one (its role is the one its keys carry)."""
        now = _now()
        api_key = new_api_key()
        async with self._writing() as conn:
            role = (
                await conn.execute(sa.select(api_keys.c.role).where(api_keys.c.principal_id == principal_id).limit(1))
            ).scalar_one_or_none()
            if role is None:
                raise UnknownPrincipal(principal_id)
            row = key_row(api_key, role, principal_id, now)
            await conn.execute(api_keys.insert().values(**row))
        return KeyView(row["key_id"], role, principal_id, now, None, None), api_key

    async def revoke_key(self, key_id: str) -> KeyView | None:
        """Revoke one key now; revoking it again changes nothing. None when no such key."""
        now = _now()
        async with self._writing() as conn:
            await conn.execute(
                api_keys.update().where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None)).values(revoked_at=now)
            )
            row = (await conn.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id))).first()
        self._forget(key_id=key_id)
        return None if row is None else _view(row)

    async def revoke_all(self, principal_id: str) -> list[KeyView]:
        """Revoke every key of a principal (a leaked account); raises :class:`UnknownPrincipal`."""
        now = _now()
        async with self._writing() as conn:
            await conn.execute(
                api_keys.update()
                .where(api_keys.c.principal_id == principal_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
        self._forget(principal_id=principal_id)
        found = await self.keys(principal_id)
        if not found:
            raise UnknownPrincipal(principal_id)
        return found

    async def rotate_key(self, principal: Principal) -> tuple[IssuedKey, datetime]:
        """A new key for the caller; the key it called with works until the returned time."""
        if principal.key_id is None:
            raise UnknownPrincipal(principal.principal_id)
        now = _now()
        api_key = new_api_key()
        row = key_row(api_key, principal.role, principal.principal_id, now)
        async with self._writing() as conn:
            await conn.execute(api_keys.insert().values(**row))
            # A key already counting down keeps the earlier end: rotating never extends a key's life.
            await conn.execute(
                api_keys.update()
                .where(
                    api_keys.c.key_id == principal.key_id,
                    sa.or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > now + KEY_ROTATION_GRACE),
                )
                .values(expires_at=now + KEY_ROTATION_GRACE)
            )
            expires_at = (
                await conn.execute(sa.select(api_keys.c.expires_at).where(api_keys.c.key_id == principal.key_id))
            ).scalar_one()
        self._forget(key_id=principal.key_id)
        return IssuedKey(row["key_id"], api_key), expires_at

    # --- partners and their webhook -----------------------------------------------------------

    async def name_of(self, who: Principal) -> str:
        """The name a partner or an agent was created with; the role for the admin key."""
        if who.role == "partner":
            query = sa.select(partners.c.name).where(partners.c.partner_id == who.principal_id)
        elif who.role == "agent":
            query = sa.select(agents.c.name).where(agents.c.agent_id == who.principal_id)
        else:
            return who.role
        async with self._reading() as conn:
            name = (await conn.execute(query)).scalar_one_or_none()
        return name or who.principal_id

    async def partner(self, partner_id: str) -> Partner | None:
        async with self._reading() as conn:
            row = (await conn.execute(sa.select(partners).where(partners.c.partner_id == partner_id))).first()
        if row is None:
            return None
        return Partner(row.partner_id, row.name, row.webhook_url, row.webhook_secret)

    async def set_webhook(self, partner_id: str, url: str | None) -> None:
        async with self._writing() as conn:
            await conn.execute(partners.update().where(partners.c.partner_id == partner_id).values(webhook_url=url))

    async def rotate_webhook_secret(self, partner_id: str) -> RotatedSecret:
        """A new signing secret; the current one keeps signing too until the grace period ends.

        Only two secrets sign at once: rotating again during an overlap ends the older one now.
        """
        now = _now()
        secret = _new_secret()
        ends = now + SECRET_ROTATION_GRACE
        async with self._writing() as conn:
            # In one statement: the right-hand side reads the row as it was (the current secret).
            await conn.execute(
                partners.update()
                .where(partners.c.partner_id == partner_id)
                .values(previous_webhook_secret=partners.c.webhook_secret, previous_secret_expires_at=ends,
                        webhook_secret=secret)
            )
        return RotatedSecret(secret, ends)
