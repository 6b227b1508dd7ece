"""The agent console (docs/console.md): ``GET /console`` and its files, all served by the gateway.

The page is plain HTML, CSS and ES modules read from ``api/static/console/``: no build step, no
CDN, no web font. Every answer carries a Content-Security-Policy that lets the page load and
connect only to the gateway, run no inline script, and write no HTML from strings (Trusted
Types), so a partner's text can only ever be shown as text. The page holds no secret: it asks
for the agent's API key and calls the same ``/v1`` endpoints as any other client.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable

from aiohttp import web

from domain.refusals import not_found

CONSOLE_PATH = "/console"
ASSETS_PATH = "/console/assets"

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
    # No HTML from strings: innerHTML and friends throw, so nothing a partner wrote becomes markup.
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
])

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    # Revalidated on every load, so a gateway upgrade never leaves an agent on an old page.
    "Cache-Control": "no-cache",
}

CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".svg": "image/svg+xml",
}



@dataclass(frozen=True)
class ConsoleFile:
    body: bytes
    content_type: str

    def response(self) -> web.Response:
        return web.Response(body=self.body, content_type=self.content_type, charset="utf-8", headers=HEADERS)


CONSOLE_FILES = web.AppKey("console_files", dict[str, ConsoleFile])


def load_files(folder: Traversable) -> dict[str, ConsoleFile]:
    """Every servable file of the console, read once at start-up, by name (subfolders as ``a/b.js``)."""
    found: dict[str, ConsoleFile] = {}

    def walk(node: Traversable, prefix: str) -> None:
        for child in node.iterdir():
            if child.is_dir():
                walk(child, f"{prefix}{child.name}/")
                continue
            suffix = "." + child.name.rsplit(".", 1)[-1] if "." in child.name else ""
            if suffix in CONTENT_TYPES:
                found[prefix + child.name] = ConsoleFile(child.read_bytes(), CONTENT_TYPES[suffix])

    walk(folder, "")
    return found


async def page(request: web.Request) -> web.Response:
    return request.app[CONSOLE_FILES]["index.html"].response()


async def asset(request: web.Request) -> web.Response:
    # Only names found at start-up are served: a path can never reach outside the folder.
    found: ConsoleFile | None = request.app[CONSOLE_FILES].get(request.match_info["name"])
    if found is None or request.match_info["name"] == "index.html":
        raise not_found("console file")
    return found.response()


async def to_page(request: web.Request) -> web.Response:
    raise web.HTTPPermanentRedirect(CONSOLE_PATH)


def add_console(app: web.Application) -> None:
    app[CONSOLE_FILES] = load_files(files("api").joinpath("static/console"))
    app.router.add_get(CONSOLE_PATH, page)
    app.router.add_get(CONSOLE_PATH + "/", to_page)
    app.router.add_get(ASSETS_PATH + "/{name:.+}", asset)
