"""A partner's developer generates a Python client from /v1/openapi.json (openapi-python-client, the
version pinned in pyproject.toml) and gets a typed model for every answer: no model that is only a
bag of ``additional_properties``, and no field typed ``Any`` or ``dict``. Generic: any answer a later
change adds is held to the same."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.contract.openapi_document import answer_schemas, document

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
GENERATE_BOUND_S = 300
# Every generated model holds unknown properties in this field, typed loosely by design; it is not a field of ours.
CATCH_ALL = "additional_properties"
UNTYPED = {"Any", "dict", "Dict", "object"}


def _refs(schema: Any) -> Iterator[str]:
    if isinstance(schema, dict):
        if "$ref" in schema:
            yield schema["$ref"].rsplit("/", 1)[-1]
        for value in schema.values():
            yield from _refs(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _refs(value)


def answer_models() -> set[str]:
    """The component schemas an answer or a webhook's body reaches, directly or through others."""
    components = document()["components"]["schemas"]
    found: set[str] = set()
    pending = [name for _where, schema in answer_schemas() for name in _refs(schema)]
    while pending:
        name = pending.pop()
        if name not in found:
            found.add(name)
            pending.extend(_refs(components[name]))
    return found


def generated_fields(models: Path) -> dict[str, dict[str, str]]:
    """Each generated class and its annotated fields, as written in the generated source."""
    classes: dict[str, dict[str, str]] = {}
    for module in models.glob("*.py"):
        for node in ast.parse(module.read_text()).body:
            if isinstance(node, ast.ClassDef):
                classes[node.name] = {
                    item.target.id: ast.unparse(item.annotation) for item in node.body
                    if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name)
                }
    return classes


def untyped_fields(classes: dict[str, dict[str, str]], names: set[str]) -> list[str]:
    found = []
    for name in sorted(names):
        fields = classes.get(name)
        if fields is None:
            found.append(f"{name}: no model generated")
            continue
        own = {field: annotation for field, annotation in fields.items() if field != CATCH_ALL}
        if not own and CATCH_ALL in fields:
            found.append(f"{name}: an untyped dict (additional_properties only)")
        for field, annotation in own.items():
            words = set(annotation.replace("[", " ").replace("]", " ").replace("|", " ").replace(",", " ").split())
            if words & UNTYPED:
                found.append(f"{name}.{field}: {annotation}")
    return found


def test_a_generated_client_types_every_answer(tmp_path: Path) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(document()))
    config = tmp_path / "config.yaml"
    config.write_text("post_hooks: []\n")  # the generator's own formatting step is not what is checked
    generated = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(spec), "--output-path", str(tmp_path / "client"), "--meta", "none",
         "--config", str(config)],
        capture_output=True, text=True, timeout=GENERATE_BOUND_S, check=False,
    )
    assert generated.returncode == 0 and "Warning" not in generated.stdout + generated.stderr, generated.stdout + generated.stderr

    classes = generated_fields(tmp_path / "client" / "models")
    answers = answer_models()

    assert len(answers) > 50 and {"Reservation", "EventPage", "CancellationQuotedEvent", "RefundPage"} <= answers
    assert untyped_fields(classes, answers) == []


def test_the_check_finds_untyped_models() -> None:
    classes = {"Loose": {CATCH_ALL: "dict[str, Any]"}, "Mixed": {"a": "str", "b": "list[dict[str, Any]]", CATCH_ALL: "x"},
               "Vague": {"c": "Any | Unset"}, "Fine": {"d": "list[Money] | None", CATCH_ALL: "dict[str, Any]"}}

    assert untyped_fields(classes, {"Loose", "Mixed", "Vague", "Fine", "Missing"}) == [
        "Loose: an untyped dict (additional_properties only)", "Missing: no model generated",
        "Mixed.b: list[dict[str, Any]]", "Vague.c: Any | Unset",
    ]
