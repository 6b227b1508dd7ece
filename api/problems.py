"""RFC 9457 problem details: the one shape every error answer takes."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web
from pydantic import ValidationError

PROBLEM_TYPE = "application/problem+json"

_TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    410: "Gone",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    500: "Internal server error",
    503: "Service unavailable",
}


class Problem(Exception):
    """Raised anywhere in a handler; the error middleware turns it into problem+json."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str = "",
        *,
        errors: list[dict[str, str]] | None = None,
        title: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = errors
        self.title = title or _TITLES.get(status, "Error")

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        body: dict[str, Any] = {
            "type": f"/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail or self.title,
            "code": self.code,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        return web.Response(
            status=self.status, text=json.dumps(body), content_type=PROBLEM_TYPE, headers=headers
        )


def not_found(what: str = "resource") -> Problem:
    return Problem(404, "not_found", f"no such {what}")


def field_path(loc: tuple[int | str, ...], tags: frozenset[str] = frozenset()) -> str:
    """``("products", 0, "flight", "price", "amount")`` → ``products[0].price.amount``.

    Discriminated unions put the tag (``flight``) in the location; a partner never wrote it.
    """
    path = ""
    previous: int | str | None = None
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(previous, int) and part in tags:
            pass
        elif part.startswith(("function-", "tagged-union[")):
            pass
        else:
            path += f".{part}" if path else part
        previous = part
    return path


def validation_problem(error: ValidationError, tags: frozenset[str] = frozenset(), prefix: str = "") -> Problem:
    errors = []
    for item in error.errors(include_url=False, include_input=False):
        path = field_path(tuple(item["loc"]), tags)
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        message = str(item["msg"]).removeprefix("Value error, ")
        errors.append({"field": path or "body", "message": message})
    return Problem(422, "validation_failed", "the request has invalid fields", errors=errors)
