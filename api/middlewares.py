"""Cross-cutting work, once for every route: request id and log line, problem+json (dependency outages
included), auth, the body's read deadline, idempotency, and the security headers of every answer."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta

import sqlalchemy as sa
import structlog
from aiohttp import web
from temporalio.service import RPCError, RPCStatusCode

from api.app_keys import DEPS
from api.endpoints import PRINCIPAL, endpoint_of, principal
from api.problems import ANSWERED, Problem, as_problem
from api.rate_limits import MONITORING_PATHS, RATE_LIMITER, admit
from config.settings import Settings
from store.accounts import Principal
from store.idempotency import Claim, InProgress, StoredResponse

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
log = structlog.get_logger("api")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")
# What an API key can look like at all (ours are ask_ + URL-safe base64): anything else is refused
# before it is hashed, compared or could end up in an error's traceback.
_KEY_SHAPE = re.compile(r"^[\x21-\x7e]{1,512}$")
_HTTP_CODES = {404: "not_found", 405: "method_not_allowed", 413: "payload_too_large", 400: "bad_request"}
# Nginx's convention for "the client closed the connection before we could answer".
CLIENT_CLOSED = 499
# How long a client should wait before retrying after a dependency outage.
RETRY_AFTER_S = 5
# The methods that honour Idempotency-Key (docs/api.md#idempotency); PUT and GET are safe to repeat as they are.
IDEMPOTENT_METHODS = frozenset({"POST", "PATCH"})
# docs/api.md#idempotency: 1 to 255 printable ASCII characters (spaces allowed).
IDEMPOTENCY_KEY_PATTERN = r"^[\x20-\x7e]{1,255}$"
IDEMPOTENCY_KEY = re.compile(IDEMPOTENCY_KEY_PATTERN)
# Modules whose OSError is the database being unreachable (asyncpg raises ConnectionRefusedError unwrapped).
_DATABASE_MODULES = ("sqlalchemy", "asyncpg", "aiosqlite", "store.")


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
            # Control characters escaped: a path cannot forge a line of the log.
            path=_UNPRINTABLE.sub(lambda found: f"\\x{ord(found.group()):02x}", request.path)[:300],
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
            partner_id=who.principal_id if who and who.role == "partner" else None,
            role=who.role if who else None,
        )
        structlog.contextvars.unbind_contextvars("request_id")


def _raised_in(exc: BaseException, modules: tuple[str, ...]) -> bool:
    traceback = exc.__traceback__
    while traceback is not None:
        if str(traceback.tb_frame.f_globals.get("__name__", "")).startswith(modules):
            return True
        traceback = traceback.tb_next
    return False


def outage(exc: BaseException) -> Problem | None:
    """The 503 for a dependency that is down (docs/api.md#errors), or None when ``exc`` is not one."""
    temporal_down = (
        isinstance(exc, RPCError)
        and exc.status in (RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.RESOURCE_EXHAUSTED)
    ) or (isinstance(exc, RuntimeError) and str(exc).startswith("Failed client connect"))
    if temporal_down:
        return Problem(503, "temporal_unavailable", "the workflow engine is unavailable; retry later")
    database_down = isinstance(
        exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.DisconnectionError | sa.exc.TimeoutError
    ) or (isinstance(exc, OSError) and _raised_in(exc, _DATABASE_MODULES))
    if database_down or (isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated):
        return Problem(503, "database_unavailable", "the database is unavailable; retry later")
    return None


def _answer(problem: Problem) -> web.Response:
    # A 503 is always worth retrying, and says when; so does a refusal for now only.
    retry_after = problem.retry_after or (RETRY_AFTER_S if problem.status == 503 else None)
    return problem.response(headers={"Retry-After": str(retry_after)} if retry_after is not None else None)


@web.middleware
async def problems(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error leaves as problem+json; nothing unexpected leaks a trace to the client."""
    try:
        return await handler(request)
    except ANSWERED as raised:
        return _answer(as_problem(raised))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        detail = "the body exceeds 1 MiB" if exc.status == 413 else exc.reason
        return Problem(exc.status, code, detail).response(
            headers={"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        )
    except Exception as exc:
        down = outage(exc)
        if down is not None:
            # A warning, not an error with a trace: the dependency's own monitoring says why.
            log.warning(down.code, method=request.method, path=request.path, error=type(exc).__name__)
            return _answer(down)
        log.exception("unhandled_error", method=request.method, path=request.path)
        return Problem(500, "internal_error", "something went wrong on our side; the request id identifies it").response()


@web.middleware
async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve the caller from its bearer key; an unknown key is 401 even on a public route.

    Each request spends from a budget (api/rate_limits.py) before any database work: its account's,
    or its address's when there is no key to go by or the key was never seen valid here (so a
    flood of made-up keys stops before it reaches the database). Neither the header nor the key
    ever reaches a log line or an answer.
    """
    limiter = request.app[RATE_LIMITER]
    monitoring = request.path in MONITORING_PATHS
    if monitoring:
        await admit(request, limiter.for_monitoring(request))
    header = request.headers.get("Authorization")
    key = _bearer_key(header)
    if key is None:
        if not monitoring:
            await admit(request, limiter.for_address(request))
        if header is not None:
            raise Problem(401, "unauthorized", "expected Authorization: Bearer <api key>")
        return await handler(request)
    paid = monitoring
    if hmac.compare_digest(key.encode(), request.app[DEPS].settings.admin_key.encode()):
        found = Principal("admin", "admin")
    else:
        accounts = request.app[DEPS].store.accounts
        recognised = accounts.recognised(key)
        if not paid:
            await admit(request, limiter.for_account(recognised) if recognised else limiter.for_address(request))
        looked_up = await accounts.principal_for(key)
        if looked_up is None:
            raise Problem(401, "unauthorized", "unknown, revoked or expired API key")
        found, paid = looked_up, paid or looked_up == recognised
    request[PRINCIPAL] = found
    if not paid:
        await admit(request, limiter.for_account(found))
    if found.role == "partner":
        structlog.contextvars.bind_contextvars(partner_id=found.principal_id)
    try:
        return await handler(request)
    finally:
        structlog.contextvars.unbind_contextvars("partner_id")


def _bearer_key(header: str | None) -> str | None:
    """The key of ``Bearer <key>`` when it can be a key at all; None otherwise."""
    if header is None:
        return None
    scheme, _, key = header.partition(" ")
    key = key.strip()
    return key if scheme.lower() == "bearer" and _KEY_SHAPE.match(key) else None


@web.middleware
async def read_body(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Read the whole body within ``AFTERSALES_HTTP_BODY_TIMEOUT``, before anything parses it.

    A client that trickles its body is cut off with 408; one that hangs up mid-upload is logged as
    ``upload_aborted`` (it is not our error, and nobody is left to answer).
    """
    if not request.can_read_body:
        return await handler(request)
    timeout = request.app[DEPS].settings.http_body_timeout.total_seconds()
    try:
        await asyncio.wait_for(request.read(), timeout)
    except TimeoutError:
        log.info("body_timeout", method=request.method, path=request.path, timeout_s=timeout)
        response = Problem(408, "request_timeout", f"the body did not arrive within {timeout:g} s").response()
        response.force_close()
        return response
    except ConnectionResetError:
        log.info("upload_aborted", method=request.method, path=request.path)
        return web.Response(status=CLIENT_CLOSED)
    return await handler(request)


def claim_lease(settings: Settings) -> timedelta:
    """How long a claimed key stays with a request that has not answered: past it, a retry may take
    the key over (its first request died in a crash). A claimed request is cut off before its lease
    ends (``_run_claimed``), so a key is never held by two live requests (docs/api.md#idempotency)."""
    return max(timedelta(seconds=30), settings.sync_wait * 3)


# A claimed request answers 503 this long before its lease ends, at the latest.
LEASE_MARGIN = timedelta(seconds=5)


def twin_wait(settings: Settings) -> float:
    """How long a concurrent twin waits for the first request's answer before 409."""
    return settings.sync_wait.total_seconds() + 5


# Answer fields that hold a secret shown once (docs/api.md#idempotency): never kept for a replay.
SECRET_FIELDS = frozenset({"api_key", "webhook_secret"})


def _storable(text: str) -> str:
    """The answer as it may be kept: a secret it shows is replaced by null, so the database never
    holds a key or a signing secret in clear."""
    if not any(f'"{name}"' in text for name in SECRET_FIELDS):
        return text
    body = json.loads(text)
    if isinstance(body, dict):
        body.update({name: None for name in SECRET_FIELDS if name in body})
    return json.dumps(body)


def _replay(stored: StoredResponse) -> web.Response:
    content_type = "application/problem+json" if stored.status >= 400 else "application/json"
    return web.Response(
        status=stored.status, text=stored.body, content_type=content_type, headers={"Idempotent-Replayed": "true"}
    )


@web.middleware
async def idempotency(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Run a POST or PATCH once per Idempotency-Key (docs/api.md#idempotency).

    The key is claimed before the handler runs; a concurrent twin waits for the first answer, and
    gets 409 ``idempotency_key_in_use`` if it does not come in time. Requests that will be refused
    for who sends them (no key, wrong role, unknown route) never touch the records.
    """
    keys = request.headers.getall("Idempotency-Key", [])
    if request.method not in IDEMPOTENT_METHODS or not keys:
        return await handler(request)
    who = principal(request)
    endpoint = endpoint_of(request)
    if who is None or endpoint is None or who.role not in endpoint.roles:
        return await handler(request)
    # Two keys on one request: neither can be honoured without guessing which the client meant.
    refusal = ("must be sent once" if len(keys) > 1 else
               "" if IDEMPOTENCY_KEY.match(keys[0]) else "must be 1 to 255 printable ASCII characters")
    if refusal:
        raise Problem(422, "validation_failed", f"Idempotency-Key {refusal}",
                      errors=[{"field": "Idempotency-Key", "message": refusal}])
    key = keys[0]
    owner = f"{who.role}:{who.principal_id}"
    body = await request.read()
    request_hash = hashlib.sha256(request.method.encode() + b" " + request.path_qs.encode() + b"\n" + body).hexdigest()
    records = request.app[DEPS].store.idempotency
    settings = request.app[DEPS].settings
    loop = asyncio.get_running_loop()
    deadline = loop.time() + twin_wait(settings)
    delay = 0.05
    found = await records.claim(owner, key, request_hash, claim_lease(settings))
    while not isinstance(found, Claim):
        if not hmac.compare_digest(found.request_hash, request_hash):
            raise Problem(422, "idempotency_key_reused", "this Idempotency-Key was used with a different request")
        if isinstance(found, StoredResponse):
            return _replay(found)
        if loop.time() >= deadline:
            raise Problem(409, "idempotency_key_in_use",
                          "a request with this Idempotency-Key is still running; retry later for its answer")
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)
        polled: StoredResponse | InProgress | None = await records.find(owner, key)
        found = polled if polled is not None else await records.claim(owner, key, request_hash, claim_lease(settings))
    if found.took_over:
        log.warning("idempotency_claim_taken_over", method=request.method, path=request.path)
    return await _run_claimed(request, handler, owner, key, found)


async def _run_claimed(request: web.Request, handler: Handler, owner: str, key: str, claim: Claim) -> web.StreamResponse:
    records = request.app[DEPS].store.idempotency
    saved = False
    try:
        try:
            async with asyncio.timeout((claim_lease(request.app[DEPS].settings) - LEASE_MARGIN).total_seconds()):
                response = await handler(request)
        except ANSWERED as raised:
            response = _answer(as_problem(raised))
        except TimeoutError:
            # Flow starts and creations draw their ids from the key, so the retry finds what this did.
            log.warning("idempotent_request_cut_off", method=request.method, path=request.path)
            response = _answer(Problem(503, "request_too_long", "the request took too long; retry with the same "
                                       "Idempotency-Key"))
        # Not stored: a 5xx, nor an answer that says to retry later (a refusal for now only, with
        # Retry-After): the retry runs again and gets the answer of that later moment.
        final = response.status < 500 and "Retry-After" not in response.headers
        if isinstance(response, web.Response) and final and response.text is not None:
            saved = await records.save(owner, key, claim, response.status, _storable(response.text))
        return response
    finally:
        if not saved:
            try:
                # Shielded: a request cancelled mid-way still gives its key back.
                await asyncio.shield(records.release(owner, key, claim))
            except Exception as exc:  # the database is down: the lease frees the key later
                log.warning("idempotency_release_failed", error=type(exc).__name__)


# Every answer (docs/api.md#conventions): no MIME sniffing, no framing, no referrer, no server version.
_ALWAYS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Server": "aftersales",
}
# HTML may run the gateway's own scripts and styles and nothing else (no inline code, no other origin).
HTML_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the headers every answer carries, whatever produced it."""
    response.headers.update(_ALWAYS)
    if "Authorization" in request.headers or "Cache-Control" not in response.headers:
        # Answers to a key are the caller's alone; nothing the gateway answers is meant to be cached.
        response.headers["Cache-Control"] = "no-store"
    if response.content_type == "text/html":
        # A page with a stricter policy of its own (the agent console) keeps it.
        response.headers.setdefault("Content-Security-Policy", HTML_POLICY)
    if not request.app[DEPS].settings.sandbox:
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
