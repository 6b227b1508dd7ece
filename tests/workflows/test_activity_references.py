"""Workflows call activities by reference to their methods, never by a string name, and the names the
activities are registered under never change (docs/workflows.md#calling-activities).

A string name is checked by nothing until a worker runs it; a reference is checked by mypy (the
method exists, its result type is the workflow's) and names the activity its decorator registered.
The registered names themselves are what recorded histories and already scheduled activities carry:
a new worker must still run an activity an older one scheduled.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from tests.workflows.fakes import FakeSupplier, InMemoryStore
from tests.workflows.record_histories import HISTORIES
from worker.registry import activities_over

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"
# The workflow functions that take an activity by name (a string) as well as by reference.
BY_NAME_OR_REFERENCE = {"execute_activity", "start_activity", "execute_local_activity", "start_local_activity"}
BY_REFERENCE = {f"{name}_method" for name in BY_NAME_OR_REFERENCE}
LOCAL_ACTIVITY_MARKER = "core_local_activity"

# Every name a worker of this project has ever registered: histories and scheduled activities carry them.
REGISTERED_NAMES = {
    "record_flow",
    "acquire_product",
    "open_waiting",
    "cancel_at_supplier",
    "reschedule_at_supplier",
    "apply_change",
    "submit_special_request",
    "ask_special_request",
    "deliver_event",
    "mark_event_failed",
    "expire_credit",
    "start_disruption_batch",
}


def activity_calls_by_name(source: str) -> list[str]:
    """Each call in ``source`` that could name an activity by a string, as ``line: call``."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
        first = node.args[0] if node.args else None
        by_string = isinstance(first, ast.JoinedStr) or (isinstance(first, ast.Constant) and isinstance(first.value, str))
        if called in BY_NAME_OR_REFERENCE or (called in BY_REFERENCE and by_string):
            found.append(f"{node.lineno}: {ast.unparse(node.func)}")
    return found


def test_the_scan_finds_a_call_by_name() -> None:
    source = (
        "async def run():\n"
        "    await workflow.execute_activity('record_flow', record)\n"
        "    await execute_local_activity(RECORD_FLOW, record)\n"
        "    await workflow.execute_activity_method(f'{kind}', record)\n"
        "    await workflow.execute_activity_method(FlowActivities.record_flow, record)\n"
    )
    assert activity_calls_by_name(source) == [
        "2: workflow.execute_activity",
        "3: execute_local_activity",
        "4: workflow.execute_activity_method",
    ]


def test_no_workflow_calls_an_activity_by_name() -> None:
    modules = sorted(WORKFLOWS.glob("*.py"))
    assert modules
    by_name = {path.name: calls for path in modules if (calls := activity_calls_by_name(path.read_text()))}
    assert by_name == {}


def _registered_names() -> set[str]:
    store = InMemoryStore()
    return {activity._Definition.must_from_callable(fn).name for fn in activities_over(store, FakeSupplier(), store, store)}


def _names_in(history: WorkflowHistory) -> set[str]:
    names: set[str] = set()
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            names.add(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == LOCAL_ACTIVITY_MARKER:
                names.add(json.loads(marker.details["data"].payloads[0].data)["activity_type"])
    return names


def test_activity_names_never_change() -> None:
    assert _registered_names() == REGISTERED_NAMES


def test_every_activity_a_history_ran_is_registered() -> None:
    ran: set[str] = set()
    for path in sorted(HISTORIES.glob("*.json")):
        ran |= _names_in(WorkflowHistory.from_json(path.stem, path.read_text()))
    assert ran, "the histories name no activity"
    assert ran <= _registered_names()
