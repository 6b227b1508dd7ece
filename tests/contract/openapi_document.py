"""The gateway's OpenAPI document as a sandbox gateway publishes it (every route, the sandbox's too),
built from the declared endpoints without a server, and a walk over the schemas its answers use."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import Any

from api.app import VERSION, resources
from api.openapi import build_openapi
from config.settings import load_settings

# Properties that hold a time, by name: each must say `format: date-time` (a date says `format: date`).
TIME_NAME = re.compile(r"(^|_)(at|deadline|start|end|departure|arrival|until|limit)$|^(start|end)s_at$")
DATE_FORMATS = {"date-time", "date"}


@cache
def document() -> dict[str, Any]:
    settings = load_settings({"AFTERSALES_ENV": "sandbox"})
    return build_openapi([endpoint for resource in resources(settings) for endpoint in resource.endpoints], VERSION)


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    found: dict[str, Any] = document()
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return found


def answer_schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every schema an answer of the API or a webhook's body uses, named by where it is used."""
    spec = document()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status == "default":
                    continue
                for media in response.get("content", {}).values():
                    yield f"{method.upper()} {path} {status}", media["schema"]
    for name, operations in spec.get("webhooks", {}).items():
        yield f"webhook {name}", operations["post"]["requestBody"]["content"]["application/json"]["schema"]


def untyped(schema: dict[str, Any], where: str, seen: set[str] | None = None) -> Iterator[str]:
    """Where a schema leaves a value untyped: a free-form object (no properties, or any additional
    property), a value of no type at all, or a time without ``format: date-time``."""
    seen = set() if seen is None else seen
    ref = schema.get("$ref")
    if ref is not None:
        if ref in seen:
            return
        seen.add(ref)
        yield from untyped(resolve(schema), f"{where} ({ref.rsplit('/', 1)[-1]})", seen)
        return
    options = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
    if options is not None:
        for option in options:
            yield from untyped(option, where, seen)
        return
    kind = schema.get("type")
    if kind is None and "const" not in schema and "enum" not in schema:
        yield f"{where}: a value of any type"
    elif kind == "object":
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        if not properties and not isinstance(extra, dict):
            yield f"{where}: an object with no declared properties"
        if extra is True:
            yield f"{where}: an object that allows any other property"
        if isinstance(extra, dict):
            yield from untyped(extra, f"{where}.*", seen)
        for name, inner in properties.items():
            leaf = _leaf(inner)
            named_a_time = TIME_NAME.search(name) and leaf.get("type") == "string" and not {"enum", "const"} & set(leaf)
            if named_a_time and leaf.get("format") not in DATE_FORMATS:
                yield f"{where}.{name}: a time without format: date-time"
            yield from untyped(inner, f"{where}.{name}", seen)
    elif kind == "array":
        yield from untyped(schema.get("items", {}), f"{where}[]", seen)


def _leaf(schema: dict[str, Any]) -> dict[str, Any]:
    """A property's own schema: the non-null option of a nullable one, resolved."""
    options = [option for option in schema.get("anyOf", []) if option.get("type") != "null"]
    return resolve(options[0]) if len(options) == 1 else resolve(schema)
