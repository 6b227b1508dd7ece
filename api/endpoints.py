"""Declared endpoints: one decorator gives a route its roles, its request and answer models.

The same declaration validates requests, checks roles and produces ``/v1/openapi.json``,
so the published contract cannot drift from what the gateway enforces.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from api.problems import Problem, validation_problem
from store.accounts import Principal

# Discriminator tags of request unions: dropped from field paths in 422 answers.
UNION_TAGS = frozenset({"flight", "hotel", "other"})


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


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Problem(400, "malformed_json", f"the body is not valid UTF-8 JSON: {exc}") from None


def parse(model: type[BaseModel], data: Any, prefix: str = "") -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise validation_problem(error, UNION_TAGS, prefix) from None


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


def _bind(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        who = _require(request, endpoint.roles)
        if endpoint.guard is not None:
            await endpoint.guard.check(request, who)
        kwargs: dict[str, Any] = {}
        if endpoint.roles:
            kwargs["who"] = who
        if endpoint.body is not None:
            kwargs["body"] = parse(endpoint.body, await read_json(request))
        if endpoint.query is not None:
            kwargs["query"] = parse(endpoint.query, dict(request.query), prefix="query")
        reply = await endpoint.handler(request, **kwargs)
        return reply.response()

    return handle
