"""``make run`` as a developer meets it: the whole stack comes up green and goes away completely."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

if TYPE_CHECKING:  # the fixtures live in conftest; only their types are needed here
    from tests.e2e.conftest import LauncherRun

    StartLauncher = Callable[[dict[str, str]], LauncherRun]

pytestmark = pytest.mark.e2e

# No worker polls this queue, so a workflow started on it stays RUNNING: a cheap marker of
# what the dev server has persisted.
PROBE_QUEUE = "launcher-persistence-probe"
T = TypeVar("T")


def in_own_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run`` in a thread: in the main thread it would unset the current event loop
    for the async tests that run after this one."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def assert_all_parts(parts: dict[int, list[str]]) -> None:
    commands = [" ".join(argv) for argv in parts.values()]
    assert any("temporal" in command and "start-dev" in command for command in commands), commands
    assert any(argv[-2:] == ["-m", "worker"] for argv in parts.values()), commands
    assert any(argv[-2:] == ["-m", "api"] for argv in parts.values()), commands


async def start_probe(target: str) -> str:
    client = await Client.connect(target)
    workflow_id = f"launcher-probe-{uuid.uuid4()}"
    await client.start_workflow("LauncherPersistenceProbe", id=workflow_id, task_queue=PROBE_QUEUE)
    return workflow_id


async def probe_status(target: str, workflow_id: str) -> WorkflowExecutionStatus | None:
    client = await Client.connect(target)
    return (await client.get_workflow_handle(workflow_id).describe()).status


def test_sigterm_stops_every_part(launcher_env: dict[str, str], launcher_start: StartLauncher) -> None:
    run = launcher_start(launcher_env)
    run.wait_healthy()
    parts = run.parts()
    assert_all_parts(parts)

    assert run.stop(signal.SIGTERM, timeout=15) == 0, run.output()

    # The launcher has reaped its children before exiting: nothing may be left, not even briefly.
    assert run.survivors(parts) == [], run.output()
    assert "temporal | " in run.output(last=10_000)


def test_sigkill_leaves_no_orphan_and_a_relaunch_keeps_the_data(
    launcher_env: dict[str, str], launcher_start: StartLauncher
) -> None:
    first = launcher_start(launcher_env)
    first.wait_healthy()
    parts = first.parts()
    assert_all_parts(parts)
    workflow_id = in_own_loop(start_probe(first.temporal_target))

    first.process.kill()
    first.process.wait(timeout=5)
    # Relaunched at once, while the old parts may still be letting go of the ports and files.
    second = launcher_start(launcher_env)
    # PR_SET_PDEATHSIG turns the launcher's death into a SIGTERM for each part.
    assert first.survivors(parts, timeout=15) == [], first.output()

    second.wait_healthy()
    assert in_own_loop(probe_status(second.temporal_target, workflow_id)) == WorkflowExecutionStatus.RUNNING
    assert second.stop(signal.SIGTERM, timeout=15) == 0, second.output()


def test_a_busy_port_is_waited_for_not_fatal(launcher_env: dict[str, str], launcher_start: StartLauncher) -> None:
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", int(launcher_env["AFTERSALES_TEMPORAL_PORT"])))
    squatter.listen()
    try:
        run = launcher_start(launcher_env)
        assert run.wait_for_output("to be released", timeout=30), run.output()
    finally:
        squatter.close()
    run.wait_healthy()
    assert run.stop(signal.SIGTERM, timeout=15) == 0, run.output()


def test_a_bad_setting_stops_the_launch_before_anything_starts(
    launcher_env: dict[str, str], launcher_cwd: Path
) -> None:
    env = {**launcher_env, "AFTERSALES_DECISION_WINDOW": "soon"}

    done = subprocess.run(
        [sys.executable, "-m", "worker.launch"],
        cwd=launcher_cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "AFTERSALES_DECISION_WINDOW" in lines[0], done.stderr
    assert not Path(env["AFTERSALES_DATA_DIR"]).exists()
