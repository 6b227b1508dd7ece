"""Operations endpoints (docs/api.md#operations-endpoints): health, the OpenAPI document and its reading page. No auth."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from importlib.resources import files
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel

from api.app_keys import DEPS
from api.endpoints import Reply, Resource

resource = Resource("operations")
log = structlog.get_logger("api.health")
CHECK_TIMEOUT_S = 3.0
OPENAPI = web.AppKey("openapi", str)


class Health(BaseModel):
    status: str
    temporal: str
    database: str


async def _check(name: str, probe: Awaitable[object]) -> str:
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_S)
        return "ok"
    except Exception as exc:  # any failure of a dependency is a "down", never a 500
        log.warning("health_check_failed", part=name, error=type(exc).__name__)
        return "unavailable"


@resource.route("GET", "/healthz", summary="Liveness and dependencies", answers={200: Health, 503: Health})
async def healthz(request: web.Request) -> Reply:
    temporal, database = await asyncio.gather(
        _check("temporal", request.app[DEPS].temporal.service_client.check_health()),
        _check("database", request.app[DEPS].store.ping()),
    )
    healthy = temporal == database == "ok"
    return Reply(200 if healthy else 503, Health(status="ok" if healthy else "degraded", temporal=temporal, database=database))


async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(text=request.app[OPENAPI], content_type="application/json")


def _static(name: str, content_type: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    # Script and style are files of their own: the page's Content-Security-Policy allows no inline code.
    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=files("api").joinpath(f"static/{name}").read_text(), content_type=content_type)

    return serve


def add_documents(app: web.Application, openapi: dict[str, Any]) -> None:
    app[OPENAPI] = json.dumps(openapi)
    app.router.add_get("/v1/openapi.json", openapi_json)
    app.router.add_get("/docs", _static("docs.html", "text/html"))
    app.router.add_get("/docs.js", _static("docs.js", "text/javascript"))
    app.router.add_get("/docs.css", _static("docs.css", "text/css"))
