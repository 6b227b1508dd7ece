"""Declared endpoints: one decorator gives a route its roles, its request and answer models.

The same declaration validates requests, checks roles and produces ``/v1/openapi.json``,
so the published contract cannot drift from what the gateway enforces.
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from api.problems import Problem, validation_problem
from api.request_ids import requester_of
from domain.input_bounds import FROM_REQUEST
from store.accounts import Principal

# Discriminator tags of request unions: dropped from field paths in 422 answers.
UNION_TAGS = frozenset({"flight", "hotel", "other"})

# Bounds checked before any parsing (docs/api.md#conventions): no legitimate body nests deeper
# than a handful of levels or needs a number longer than a money amount.
MAX_JSON_DEPTH = 32
MAX_JSON_NUMBER = 40
# Any string in a body or a query, whatever its field: longer ones are refused before validation.
MAX_STRING = 10_000
# A path id longer than this, or with a control character, names nothing: 404 without a lookup.
MAX_PATH_ID = 100
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_STRING_LITERAL = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


@dataclass(frozen=True)
class Reply:
    """What a handler returns: a status and a pydantic model (or plain JSON-able data)."""

    status: int
    body: BaseModel | dict[str, Any]

    def response(self) -> web.Response:
        text = self.body.model_dump_json() if isinstance(self.body, BaseModel) else json.dumps(self.body)
        return web.Response(status=self.status, text=text, content_type="application/json")


Handler = Callable[..., Awaitable[Reply]]


@dataclass(frozen=True)
class RequestGuard:
    """A check a route makes on the raw request once its roles pass and before its body is parsed
    (a signature over the raw body: nothing unauthenticated is parsed). ``header`` is the request
    header it reads, published in the OpenAPI document."""

    header: str
    description: str
    check: Callable[[web.Request, Principal | None], Awaitable[None]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    tag: str
    roles: frozenset[str]
    body: type[BaseModel] | None
    answers: dict[int, type[BaseModel] | None]
    query: type[BaseModel] | None
    handler: Handler
    guard: RequestGuard | None = None


PRINCIPAL = web.RequestKey("principal", Principal)


def principal(request: web.Request) -> Principal | None:
    return request.get(PRINCIPAL)


def _require(request: web.Request, roles: frozenset[str]) -> Principal | None:
    if not roles:
        return None
    who = principal(request)
    if who is None:
        raise Problem(401, "unauthorized", "send Authorization: Bearer <api key>")
    if who.role not in roles:
        raise Problem(403, "forbidden", f"this endpoint is for the {' or '.join(sorted(roles))} role")
    return who


def json_depth(raw: bytes) -> int:
    """How deep the brackets of a JSON text nest, strings aside; counted without recursion."""
    brackets = _STRING_LITERAL.sub(b"", raw).translate(None, _BRACKETS)
    if not brackets:
        return 0
    return max(accumulate(1 if b in b"[{" else -1 for b in brackets))


def _number(text: str) -> Any:
    if len(text) > MAX_JSON_NUMBER:
        raise ValueError(f"a JSON number longer than {MAX_JSON_NUMBER} characters")
    return float(text) if any(c in text for c in ".eE") else int(text)


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


async def read_json(request: web.Request) -> Any:
    """The body as JSON, refused with 400 ``malformed_json`` before parsing when it nests too deep,
    and while parsing when a number is absurdly long (``int()`` of 900,000 digits is a CPU bomb)."""
    raw = await request.read()
    if not raw.strip():
        return {}
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise Problem(400, "malformed_json", f"the body nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        return json.loads(raw.decode("utf-8"), parse_int=_number, parse_float=_number, parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(400, "malformed_json", f"the body is not valid UTF-8 JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise Problem(400, "malformed_json", f"the body is not acceptable JSON: {exc}") from None


def _string_errors(data: Any, path: str) -> list[dict[str, str]]:
    """NUL characters and over-long strings anywhere in ``data`` (keys included): the database
    cannot hold the first (PostgreSQL) and no field needs the second."""
    found: list[dict[str, str]] = []
    if isinstance(data, str):
        if "\x00" in data:
            found.append({"field": path or "body", "message": "must not contain NUL characters"})
        elif len(data) > MAX_STRING:
            found.append({"field": path or "body", "message": f"must be at most {MAX_STRING} characters"})
    elif isinstance(data, dict):
        for key, value in data.items():
            inner = f"{path}.{key}" if path else str(key)
            found += _string_errors(key, inner) or _string_errors(value, inner)
    elif isinstance(data, list):
        for index, value in enumerate(data):
            found += _string_errors(value, f"{path}[{index}]")
    return found


def parse(model: type[BaseModel], data: Any, prefix: str = "") -> Any:
    errors = _string_errors(data, prefix)
    if errors:
        raise Problem(422, "validation_failed", "the request has invalid fields", errors=errors[:20])
    try:
        # As a request: the bounds of domain.input_bounds apply (amounts, years).
        return model.model_validate(data, context=FROM_REQUEST)
    except ValidationError as error:
        raise validation_problem(error, UNION_TAGS, prefix) from None


def check_path_ids(request: web.Request) -> None:
    """A path id no object can have (a control character, absurd length) answers 404 like an unknown one."""
    for value in request.match_info.values():
        if len(value) > MAX_PATH_ID or _CONTROL.search(value):
            raise Problem(404, "not_found", "no such resource")


@dataclass
class Resource:
    """A RouteTableDef that also records what each route accepts and answers."""

    tag: str
    endpoints: list[Endpoint] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        *,
        summary: str,
        roles: tuple[str, ...] = (),
        body: type[BaseModel] | None = None,
        query: type[BaseModel] | None = None,
        answers: dict[int, type[BaseModel] | None],
        guard: RequestGuard | None = None,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(method, path, summary, self.tag, frozenset(roles), body, answers, query, handler, guard)
            )
            return handler

        return register

    def add_to(self, app: web.Application) -> None:
        for endpoint in self.endpoints:
            app.router.add_route(endpoint.method, endpoint.path, _bind(endpoint))


# The declared endpoint behind each bound handler, for the middlewares (idempotency asks which roles a route takes).
_DECLARED: weakref.WeakKeyDictionary[Callable[..., Any], Endpoint] = weakref.WeakKeyDictionary()


def endpoint_of(request: web.Request) -> Endpoint | None:
    """The declared endpoint the request was routed to; None for anything else (404, 405, documents)."""
    try:
        return _DECLARED.get(request.match_info.handler)
    except TypeError:  # a handler that cannot be weakly referenced is not one of ours
        return None


def _bind(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        who = _require(request, endpoint.roles)
        check_path_ids(request)
        if endpoint.guard is not None:
            await endpoint.guard.check(request, who)
        kwargs: dict[str, Any] = {}
        if who is not None:  # a route with roles: its handler is given who calls, and the ids it may create
            kwargs["requester"] = requester_of(request, who)
        if endpoint.body is not None:
            kwargs["body"] = parse(endpoint.body, await read_json(request))
        if endpoint.query is not None:
            kwargs["query"] = parse(endpoint.query, dict(request.query), prefix="query")
        reply = await endpoint.handler(request, **kwargs)
        return reply.response()

    _DECLARED[handle] = endpoint
    return handle
