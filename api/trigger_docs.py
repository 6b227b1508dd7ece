"""Writes the event catalogue of docs/triggers.md from ``domain.event_catalogue``, the models the events
are made from and the OpenAPI ``webhooks`` section is built from, so the page cannot drift from what
is sent: ``python -m api.trigger_docs`` rewrites the section between its two markers, and
``tests/contract/test_trigger_docs.py`` fails while the committed section differs from what this writes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from domain.event_catalogue import CATALOGUE

TRIGGERS_PAGE = Path(__file__).resolve().parent.parent / "docs" / "triggers.md"
BEGIN = "<!-- event catalogue: written by `python -m api.trigger_docs` from domain/event_catalogue.py; do not edit by hand -->"
END = "<!-- end of the event catalogue -->"
SOURCES = {"cancellation": "cancellation", "change": "change", "rescheduling": "rescheduling",
           "special_request": "special request", "settlement": "settlement"}


def _type_of(schema: dict[str, Any]) -> str:
    """A field's JSON schema in a few words: ``Money``, ``time``, ``list of Segment``, ``"a" | "b"``, …"""
    if "$ref" in schema:
        return str(schema["$ref"].rsplit("/", 1)[-1])
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return " or ".join(_type_of(option) for option in options)
    if "enum" in schema:
        return " \\| ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type")
    if kind == "array":
        return f"list of {_type_of(schema.get('items', {}))}"
    if kind == "string" and schema.get("format") in ("date-time", "date"):
        return {"date-time": "time", "date": "date"}[schema["format"]]
    return str(kind)


def _fields(model: type[BaseModel]) -> list[str]:
    properties = model.model_json_schema()["properties"]
    rows = ["| field | type |", "|---|---|"]
    for name, field in model.model_fields.items():
        said = f": {field.description}" if field.description else ""
        rows.append(f"| `{name}` | {_type_of(properties[name])}{said} |")
    return rows


def catalogue() -> str:
    """The section as docs/triggers.md holds it, markers included."""
    lines = [BEGIN, "", "| type | flow | sent when (`data.status`) | useful fields in `data` |", "|---|---|---|---|"]
    for entry in CATALOGUE:
        useful = ", ".join(f"`{field}`" for field in entry.useful_fields)
        lines.append(f"| `{entry.name}` | {SOURCES.get(entry.source, entry.source)} | {entry.sent_when} | {useful} |")
    lines += ["", "What `data` carries, by the model each type's events are made from (the OpenAPI document's",
              "`webhooks` section has the full schema of each type, `components.schemas` these models):", ""]
    models = list(dict.fromkeys(entry.data for entry in CATALOGUE))
    for model in models:
        types = ", ".join(f"`{entry.name}`" for entry in CATALOGUE if entry.data is model)
        lines += [f"**`{model.__name__}`** ({types}):", "", *_fields(model), ""]
    return "\n".join([*lines, END])


def rewritten(page: str) -> str:
    """``page`` with its catalogue section replaced by :func:`catalogue`."""
    start, end = page.index(BEGIN), page.index(END) + len(END)
    return page[:start] + catalogue() + page[end:]


if __name__ == "__main__":
    TRIGGERS_PAGE.write_text(rewritten(TRIGGERS_PAGE.read_text()))
    print(f"wrote the event catalogue of {TRIGGERS_PAGE}", file=sys.stderr)
