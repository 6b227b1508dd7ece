"""The ids a request creates, drawn so that a retry creates the same ones (docs/api.md#idempotency).

A request that carries an ``Idempotency-Key`` draws its ids (flow code, quote id, reservation id,
update id, …) from a generator seeded by the caller, the key and the route: a retry whose first
answer was lost in a crash draws the same ids in the same order, so it finds what its first attempt
created instead of creating it twice. Without a key, ids come from the system's secure random.
"""

from __future__ import annotations

import hashlib
import random
import secrets

from aiohttp import web

from api.endpoints import principal
from domain.codes import IdShape

_SECURE = secrets.SystemRandom()
_IDS = web.RequestKey("ids", random.Random)
_SEED = web.RequestKey("idempotency_seed", bytes)  # b"": the request has no key


def request_ids(request: web.Request) -> random.Random:
    """The request's id generator (one per request, so its draws follow one sequence)."""
    if _IDS not in request:
        seed = idempotency_seed(request)
        request[_IDS] = _SECURE if seed is None else random.Random(seed)
    return request[_IDS]


def idempotency_seed(request: web.Request) -> bytes | None:
    """What names this request among its retries: the caller, its Idempotency-Key and the route
    (worked out once per request)."""
    if _SEED not in request:
        key = request.headers.get("Idempotency-Key")
        who = principal(request)
        request[_SEED] = (
            b"" if not key or who is None
            else hashlib.sha256(f"{who.role}:{who.principal_id}\n{key}\n{request.method} {request.path}".encode()).digest()
        )
    return request[_SEED] or None


def token(request: web.Request, shape: IdShape) -> str:
    """A new id of ``shape`` (``QUOTE_ID``, ``ITINERARY_ID``, …) from the request's ids."""
    return shape.new(request_ids(request))


def update_id(request: web.Request) -> str | None:
    """The id a workflow update is sent with: Temporal answers a retry with the same id from the
    first update's outcome instead of running it again. None without an Idempotency-Key."""
    seed = idempotency_seed(request)
    return None if seed is None else "upd-" + seed.hex()[:40]
