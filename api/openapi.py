"""OpenAPI 3.1 document generated from the declared endpoints and their pydantic models."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from api.endpoints import MAX_PATH_ID, Endpoint
from api.middlewares import IDEMPOTENCY_KEY_PATTERN, IDEMPOTENT_METHODS
from domain.event_catalogue import EVENT_MODELS, EVENT_TYPES
from domain.signature import SIGNATURE_HEADER

_PROBLEM = {
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "code": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}


def _query_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A query field's schema as a parameter: no title, and an optional field is simply absent (never null)."""
    found = {key: value for key, value in schema.items() if key not in ("title", "anyOf")}
    options = [option for option in schema.get("anyOf", []) if option.get("type") != "null"]
    if len(options) == 1:
        found.update(options[0])
    elif options:
        found["anyOf"] = options
    if found.get("default", 0) is None:
        del found["default"]
    return found


def _webhooks(ref: Callable[[type[BaseModel]], dict[str, Any]]) -> dict[str, Any]:
    """The ``webhooks`` section: what is POSTed to a partner's webhook, one operation per event type,
    each body the model that event is made from (domain.event_catalogue; docs/triggers.md)."""
    return {
        name: {"post": {
            "summary": f"`{name}`: {EVENT_TYPES[name].sent_when}",
            "operationId": f"on_{name.replace('.', '_')}",
            "tags": ["triggers"],
            "parameters": [{"name": SIGNATURE_HEADER, "in": "header", "required": True, "schema": {"type": "string"},
                            "description": "t=<unix seconds>,v1=<hex HMAC-SHA256(webhook_secret, \"<t>.<raw body>\")>, "
                                           "one v1= per secret during a rotation (docs/triggers.md#verifying-the-signature)"}],
            "requestBody": {"required": True, "content": {"application/json": {"schema": ref(model)}}},
            "responses": {"2XX": {"description": "Delivered. Anything else, or no answer within 10 s, is retried."}},
        }}
        for name, model in EVENT_MODELS.items()
    }


def build_openapi(endpoints: list[Endpoint], version: str) -> dict[str, Any]:
    models: set[type[BaseModel]] = set(EVENT_MODELS.values())
    for endpoint in endpoints:
        models.update(m for m in (endpoint.body, endpoint.query, *endpoint.answers.values()) if m is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    keyed, schema = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}"
    )
    components = dict(schema.get("$defs", {}))
    components["Problem"] = _PROBLEM

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        return keyed[(model, "validation")]

    # operationId is unique in a document: a handler name two resources share gets its tag in front.
    names = [endpoint.handler.__name__ for endpoint in endpoints]
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in endpoints:
        name = endpoint.handler.__name__
        operation_id = name if names.count(name) == 1 else f"{endpoint.tag.replace('-', '_')}_{name}"
        operation: dict[str, Any] = {
            "summary": endpoint.summary,
            "tags": [endpoint.tag],
            "operationId": operation_id,
            "responses": {},
        }
        parameters: list[dict[str, Any]] = [
            {"name": name, "in": "path", "required": True,
             "schema": {"type": "string", "minLength": 1, "maxLength": MAX_PATH_ID}}
            for name in re.findall(r"{(\w+)}", endpoint.path)
        ]
        if endpoint.query is not None:
            # Each query parameter with its field's own schema (type, bounds), as the query model validates it.
            properties = endpoint.query.model_json_schema(ref_template="#/components/schemas/{model}")["properties"]
            for name, info in endpoint.query.model_fields.items():
                parameters.append({"name": name, "in": "query", "required": info.is_required(),
                                   "schema": _query_schema(properties[name])})
        if endpoint.method in IDEMPOTENT_METHODS:
            parameters.append({"name": "Idempotency-Key", "in": "header", "required": False,
                               "schema": {"type": "string", "minLength": 1, "maxLength": 255,
                                          "pattern": IDEMPOTENCY_KEY_PATTERN}})
        if endpoint.guard is not None:
            parameters.append({"name": endpoint.guard.header, "in": "header", "required": True,
                               "description": endpoint.guard.description, "schema": {"type": "string"}})
        if parameters:
            operation["parameters"] = parameters
        if endpoint.body is not None:
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref(endpoint.body)}}}
        if endpoint.roles:
            operation["security"] = [{"bearer": []}]
            operation["description"] = f"Roles: {', '.join(sorted(endpoint.roles))}."
        for status, model in endpoint.answers.items():
            content = {"application/json": {"schema": ref(model)}} if model is not None else None
            operation["responses"][str(status)] = {"description": "OK" if status < 300 else "", **({"content": content} if content else {})}
        operation["responses"]["default"] = {
            "description": "An error (RFC 9457 problem details)",
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {"title": "Aftersales", "version": version, "description": "After-sales orchestrator for travel partners."},
        "paths": paths,
        "webhooks": _webhooks(ref),
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
