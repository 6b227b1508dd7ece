"""Every recorded history must replay against today's workflow code: a non-deterministic change fails here."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from tests.workflows.record_histories import HISTORIES, SCENARIOS
from worker.registry import WORKFLOW_RUNNER, WORKFLOWS

RECORDED = sorted(HISTORIES.glob("*.json"))


def _workflow_type(path: Path) -> str:
    return WorkflowHistory.from_json(path.stem, path.read_text()).events[0].workflow_execution_started_event_attributes.workflow_type.name


# One history of each workflow type, the first by name.
ONE_PER_WORKFLOW = sorted({_workflow_type(path): path for path in reversed(RECORDED)}.values())


def test_every_main_path_has_a_history() -> None:
    assert RECORDED, f"no histories in {HISTORIES}: run python -m tests.workflows.record_histories"
    assert {path.stem for path in RECORDED} >= set(SCENARIOS)


@pytest.mark.parametrize("path", RECORDED, ids=[path.stem for path in RECORDED])
async def test_history_replays(path: Path) -> None:
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=WORKFLOW_RUNNER)

    await replayer.replay_workflow(history)  # raises on non-determinism


@pytest.mark.parametrize("path", ONE_PER_WORKFLOW, ids=[path.stem for path in ONE_PER_WORKFLOW])
async def test_history_replays_in_the_sdks_default_sandbox(path: Path) -> None:
    """The worker's runner passes our modules through the sandbox; the SDK's default one re-imports them
    in it. There too, the activity modules a workflow references (aiohttp, SQLAlchemy beneath them) must
    come from outside (``workflow.unsafe.imports_passed_through``): imported inside, they are refused."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=SandboxedWorkflowRunner())

    await replayer.replay_workflow(history)


@pytest.mark.parametrize("path", RECORDED, ids=[path.stem for path in RECORDED])
async def test_history_replays_with_the_tracing_interceptor(path: Path) -> None:
    """A traced worker (docs/operations.md#traces) runs every workflow under Temporal's TracingInterceptor:
    it must add no command, so histories recorded without it (and with it) replay either way."""
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter, workflow_runner=WORKFLOW_RUNNER,
                        interceptors=[TracingInterceptor()])

    await replayer.replay_workflow(history)
