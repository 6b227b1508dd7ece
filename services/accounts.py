"""Who may call (docs/api.md#admin): the admin creates partners, agents and suppliers and manages
every principal's API keys; a partner sets its webhook and rotates its key and its signing secret."""

from __future__ import annotations

from datetime import datetime

import structlog

from domain.refusals import Refusal, Refused, not_found
from ports.webhook_guard import WebhookRefused
from services.bootstrap import Deps
from services.requester import Requester
from store.accounts import IssuedKey, KeyView, Partner, RotatedSecret, UnknownPrincipal
from store.supplier_accounts import NewSupplier, SupplierAccount

log = structlog.get_logger("services.accounts")


async def _checked_webhook(deps: Deps, url: str | None, field: str) -> str | None:
    """``url`` if triggers may go there (docs/triggers.md#where-triggers-may-go); ``field`` names it in the refusal."""
    if url is None:
        return None
    try:
        await deps.webhook_guard.check_registration(url)
    except WebhookRefused as reason:
        raise Refused(Refusal.WEBHOOK_URL_REFUSED, f"this URL may not receive triggers: {reason}",
                      [{"field": field, "message": str(reason)}]) from None
    return url


async def create_partner(deps: Deps, name: str, webhook_url: str | None) -> tuple[Partner, str]:
    """A partner and its API key (which exists in clear only in this answer)."""
    url = await _checked_webhook(deps, webhook_url, "webhook_url")
    return await deps.store.accounts.create_partner(name, url)


async def create_agent(deps: Deps, name: str) -> tuple[str, str]:
    """An agent's id and its API key."""
    return await deps.store.accounts.create_agent(name)


async def register_supplier(deps: Deps, name: str, carriers: list[str]) -> NewSupplier:
    """A supplier that pushes schedule changes for ``carriers``: its key and its signing secret."""
    created = await deps.store.suppliers.create(name, carriers)
    log.info("supplier_created", supplier_id=created.account.supplier_id, carriers=list(created.account.carriers))
    return created


async def supplier_account(deps: Deps, supplier_id: str) -> SupplierAccount | None:
    return await deps.store.suppliers.find(supplier_id)


async def keys_of(deps: Deps, principal_id: str) -> list[KeyView]:
    views = await deps.store.accounts.keys(principal_id)
    if not views:
        raise not_found("principal")
    return views


async def issue_key(deps: Deps, principal_id: str) -> tuple[KeyView, str]:
    try:
        return await deps.store.accounts.issue_key(principal_id)
    except UnknownPrincipal:
        raise not_found("principal") from None


async def revoke_key(deps: Deps, key_id: str) -> KeyView:
    view = await deps.store.accounts.revoke_key(key_id)
    if view is None:
        raise not_found("API key")
    return view


async def revoke_all_keys(deps: Deps, principal_id: str) -> list[KeyView]:
    try:
        return await deps.store.accounts.revoke_all(principal_id)
    except UnknownPrincipal:
        raise not_found("principal") from None


async def set_webhook(deps: Deps, requester: Requester, url: str | None) -> str | None:
    checked = await _checked_webhook(deps, url, "url")
    await deps.store.accounts.set_webhook(requester.principal.principal_id, checked)
    return checked


async def name_of(deps: Deps, requester: Requester) -> str:
    return await deps.store.accounts.name_of(requester.principal)


async def rotate_key(deps: Deps, requester: Requester) -> tuple[IssuedKey, datetime]:
    """A new key for the caller; the key it called with works until the returned time."""
    return await deps.store.accounts.rotate_key(requester.principal)


async def rotate_webhook_secret(deps: Deps, requester: Requester) -> RotatedSecret:
    return await deps.store.accounts.rotate_webhook_secret(requester.principal.principal_id)
