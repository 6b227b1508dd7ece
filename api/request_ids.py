"""What names a request among its retries (docs/api.md#idempotency): the caller, its
Idempotency-Key and the route, hashed into the seed its ids are drawn from (``services.requester``)."""

from __future__ import annotations

import hashlib

from aiohttp import web

from services.requester import Requester
from store.accounts import Principal


def requester_of(request: web.Request, who: Principal) -> Requester:
    """``who`` and, when the request carries an Idempotency-Key, its seed: a retry draws the same ids."""
    key = request.headers.get("Idempotency-Key")
    if not key:
        return Requester(who)
    named = f"{who.role}:{who.principal_id}\n{key}\n{request.method} {request.path}"
    return Requester(who, hashlib.sha256(named.encode()).digest())
