"""Every event the suite makes is checked against the ``webhooks`` section of ``/v1/openapi.json``
(docs/triggers.md#event-types): a pytest plugin (registered by tests/conftest.py).

Events are collected where the product makes them: every row the store writes into the ``events``
outbox (a listener on every SQLAlchemy engine of this process: the flows' transitions, settlement's
``refund.posted``, and whatever a later branch writes there the same way), and every event the
in-memory store of the workflow tests records from a flow's transition. Rows a test writes itself
with ``.values(...)`` (deliberately partial bodies, to test the delivery machinery) are not events the
product made, and are left out.

At the end of the session each one is validated against the schema its ``type`` has in the published
document, as a receiver would, formats included; an event of a type the document does not know fails
too. The summary says how many events of how many types were checked, and which types none of the
tests produced. ``tests/contract/test_event_contract.py`` proves the listener sees what the store
writes and that the check fails on a bad event, so it cannot pass by validating nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import jsonschema_rs
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from tests.contract.openapi_document import document

OUTBOX = "events"
# Each event as it was made, with where it was seen, until the session ends.
COLLECTED: list[tuple[str, dict[str, Any]]] = []


def collect(body: object, where: str) -> None:
    # A copy in JSON form: what is validated is what a receiver would get.
    COLLECTED.append((where, json.loads(json.dumps(body, default=str))))


def _outbox_rows(conn: Any, clause: Any, multiparams: Any, params: Any, execution_options: Any) -> None:
    if not (isinstance(clause, sa.Insert) and clause.table.name == OUTBOX):
        return
    rows = multiparams if isinstance(multiparams, list | tuple) else [multiparams]
    for row in [*rows, params]:
        if isinstance(row, dict) and isinstance(row.get("payload"), dict):
            collect(row["payload"], "the store's outbox")


def validators() -> dict[str, Any]:
    """One validator per event type, from the published document (formats checked)."""
    spec = document()
    found = {}
    for name, operations in spec["webhooks"].items():
        schema = operations["post"]["requestBody"]["content"]["application/json"]["schema"]
        found[name] = jsonschema_rs.Draft202012Validator({**schema, "components": spec["components"]}, validate_formats=True)
    return found


def problems(events: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """Why each event that does not match its type's schema fails it."""
    checks = validators()
    found = []
    for where, body in events:
        check = checks.get(str(body.get("type")))
        if check is None:
            found.append(f"{body.get('id')} ({where}): type {body.get('type')!r} is not in the webhooks section")
            continue
        for error in check.iter_errors(body):
            path = ".".join(str(part) for part in error.instance_path) or "(the event)"
            found.append(f"{body.get('id')} {body.get('type')} ({where}): {path}: {error.message}")
    return found


def pytest_configure(config: pytest.Config) -> None:
    sa.event.listen(Engine, "before_execute", _outbox_rows)


def pytest_unconfigure(config: pytest.Config) -> None:
    sa.event.remove(Engine, "before_execute", _outbox_rows)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    found = problems(COLLECTED)
    session.config.stash[_PROBLEMS] = found
    if found and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_PROBLEMS = pytest.StashKey[list[str]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    if not COLLECTED:
        return
    types = Counter(str(body.get("type")) for _, body in COLLECTED)
    unseen = sorted(set(document()["webhooks"]) - set(types))
    terminalreporter.write_line(
        f"event contract: {len(COLLECTED)} events of {len(types)} types validated against the webhooks section"
        + (f" (no test produced: {', '.join(unseen)})" if unseen else "")
    )
    found = config.stash.get(_PROBLEMS, [])
    if found:
        terminalreporter.write_line(f"event contract: {len(found)} events do not match their schema:", red=True)
        for line in found[:50]:
            terminalreporter.write_line(f"  {line}", red=True)
