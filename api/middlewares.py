"""Cross-cutting work, once for every route: request id and log line, problem+json, auth, idempotency."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from aiohttp import web

from api.context import SETTINGS, STORE
from api.endpoints import PRINCIPAL, principal
from api.problems import Problem
from store.accounts import Principal
from store.idempotency import StoredResponse

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = structlog.get_logger("api")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 400: "bad_request"}


@web.middleware
async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    incoming = request.headers.get("X-Request-Id", "")
    request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
    started = time.perf_counter()
    structlog.contextvars.bind_contextvars(request_id=request_id)
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = request_id
        return response
    finally:
        who: Principal | None = principal(request)
        log.info(
            "request",
            method=request.method,
            path=request.path,
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            partner_id=who.principal_id if who and who.role == "partner" else None,
            role=who.role if who else None,
        )
        structlog.contextvars.unbind_contextvars("request_id")


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as problem+json; nothing unexpected leaks a trace to the client."""
    try:
        return await handler(request)
    except Problem as problem:
        return problem.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        detail = "the body exceeds 1 MiB" if exc.status == 413 else exc.reason
        return Problem(exc.status, code, detail).response(
            headers={"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        )
    except Exception:
        log.exception("unhandled_error", method=request.method, path=request.path)
        return Problem(500, "internal_error", "something went wrong on our side; the request id identifies it").response()


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the caller from its bearer key; an unknown key is 401 even on a public route."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise Problem(401, "unauthorized", "expected Authorization: Bearer <api key>")
        settings = request.app[SETTINGS]
        if hmac.compare_digest(key.encode(), settings.admin_key.encode()):
            request[PRINCIPAL] = Principal("admin", "admin")
        else:
            found = await request.app[STORE].accounts.principal_for(key)
            if found is None:
                raise Problem(401, "unauthorized", "unknown API key")
            request[PRINCIPAL] = found
            if found.role == "partner":
                structlog.contextvars.bind_contextvars(partner_id=found.principal_id)
    try:
        return await handler(request)
    finally:
        structlog.contextvars.unbind_contextvars("partner_id")


@web.middleware
async def idempotency(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Replay the stored answer for a repeated Idempotency-Key; refuse the key reused for another request."""
    key = request.headers.get("Idempotency-Key")
    if request.method not in ("POST", "PATCH") or key is None:
        return await handler(request)
    if not 1 <= len(key) <= 255:
        raise Problem(
            422, "validation_failed", "Idempotency-Key must be 1 to 255 characters",
            errors=[{"field": "Idempotency-Key", "message": "must be 1 to 255 characters"}],
        )
    who: Principal | None = principal(request)
    owner = f"{who.role}:{who.principal_id}" if who else "anonymous"
    body = await request.read()
    request_hash = hashlib.sha256(request.method.encode() + b" " + request.path_qs.encode() + b"\n" + body).hexdigest()
    records = request.app[STORE].idempotency
    stored = await records.find(owner, key)
    if stored is not None:
        if not hmac.compare_digest(stored.request_hash, request_hash):
            raise Problem(422, "idempotency_key_reused", "this Idempotency-Key was used with a different request")
        content_type = "application/problem+json" if stored.status >= 400 else "application/json"
        return web.Response(
            status=stored.status, text=stored.body, content_type=content_type, headers={"Idempotent-Replayed": "true"}
        )
    try:
        response = await handler(request)
    except Problem as problem:
        response = problem.response()
    if isinstance(response, web.Response) and response.status < 500 and response.text is not None:
        await records.save(owner, key, StoredResponse(request_hash, response.status, response.text))
    return response
