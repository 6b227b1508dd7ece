"""``make run`` as a developer meets it: the whole stack comes up green and goes away completely."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pytest
from temporalio.client import Client, WorkflowExecutionStatus

from config.settings import load_settings
from devstack import launcher as launch
from tests.api.conftest import flight, reservation_body
from tests.e2e.conftest import LauncherRun, free_ports

if TYPE_CHECKING:  # the fixtures live in conftest; only their types are needed here
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
        [sys.executable, "-m", "devstack.launcher"],
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


def ports_with_ui_offset(count: int) -> list[int]:
    """Free ports ``p`` whose ``p + 1000`` (the derived UI port) is free too."""
    found: list[int] = []
    while len(found) < count:
        candidates = [p for p in free_ports(8) if p + 1000 <= 65535 and p not in found]
        for port in candidates:
            with socket.socket() as probe:
                try:
                    probe.bind(("127.0.0.1", port + 1000))
                except OSError:
                    continue
            found.append(port)
            if len(found) == count:
                break
    return found


def test_two_stacks_on_different_ports_run_side_by_side(
    launcher_env: dict[str, str], launcher_start: StartLauncher, tmp_path: Path
) -> None:
    runs = []
    first_port, second_port = ports_with_ui_offset(2)
    http_ports = free_ports(2)
    for name, temporal_port, http_port in (("a", first_port, http_ports[0]), ("b", second_port, http_ports[1])):
        env = {key: value for key, value in launcher_env.items() if key != "AFTERSALES_TEMPORAL_UI_PORT"}
        env.update(AFTERSALES_DATA_DIR=str(tmp_path / name), AFTERSALES_TEMPORAL_PORT=str(temporal_port),
                   AFTERSALES_HTTP_PORT=str(http_port))
        runs.append(launcher_start(env))

    for run in runs:
        run.wait_healthy()
    for run in runs:
        # Both still up together, each with its UI where the Temporal CLI would put it.
        assert run.healthz() == {"status": "ok", "temporal": "ok", "database": "ok"}, run.output()
        ui_port = int(run.env["AFTERSALES_TEMPORAL_PORT"]) + 1000
        assert f"Temporal UI  http://127.0.0.1:{ui_port}" in run.output(last=10_000)
        with socket.create_connection(("127.0.0.1", ui_port), timeout=5):
            pass
    for run in runs:
        assert run.stop(signal.SIGTERM, timeout=15) == 0, run.output()


def http_json(run: LauncherRun, method: str, path: str, body: dict[str, Any] | None = None,
              key: str = "sandbox-admin-key") -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{run.env['AFTERSALES_HTTP_PORT']}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def automatic_cancellation_completes(run: LauncherRun) -> None:
    status, partner = http_json(run, "POST", "/v1/admin/partners", {"name": "Restarted"})
    assert status == 201, partner
    key = partner["api_key"]
    status, booked = http_json(run, "POST", "/v1/sandbox/reservations", reservation_body(flight()), key)
    assert status == 201, booked
    product_id = booked["products"][0]["product_id"]
    status, quote = http_json(run, "POST", f"/v1/products/{product_id}/cancellation-quotes", {}, key)
    assert status == 201, quote
    status, done = http_json(run, "POST", f"/v1/products/{product_id}/cancellations", {"quote_id": quote["quote_id"]}, key)
    assert (status, done["status"]) == (200, "cancelled"), (status, done, run.output())


def part_pid(run: LauncherRun, module: str) -> int:
    [pid] = [pid for pid, argv in run.parts().items() if argv[-2:] == ["-m", module]]
    return pid


def test_a_part_that_dies_is_restarted_and_the_others_stay_up(
    launcher_env: dict[str, str], launcher_start: StartLauncher
) -> None:
    run = launcher_start(launcher_env)
    run.wait_healthy()
    temporal = [pid for pid, argv in run.parts().items() if "start-dev" in argv]
    gateway = part_pid(run, "api")

    os.kill(part_pid(run, "worker"), signal.SIGKILL)
    assert run.wait_for_output("worker   | [restarted", timeout=60), run.output()
    assert "worker   | [was killed by SIGKILL; restarting in 1s" in run.output(last=10_000)
    automatic_cancellation_completes(run)
    assert part_pid(run, "api") == gateway and run.survivors(temporal) == temporal

    os.kill(gateway, signal.SIGKILL)
    assert run.wait_for_output("api      | [restarted", timeout=60), run.output()
    assert run.healthz() == {"status": "ok", "temporal": "ok", "database": "ok"}, run.output()
    automatic_cancellation_completes(run)
    assert run.process.poll() is None and run.survivors(temporal) == temporal
    assert run.stop(signal.SIGTERM, timeout=15) == 0, run.output()


async def test_a_part_that_keeps_dying_is_given_up_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(launch, "RESTART_BACKOFF_FIRST", 0.01)
    started = launch.Launch(load_settings({"AFTERSALES_DATA_DIR": str(tmp_path)}), binary=None)
    started.up = True
    await started._spawn(launch.PartSpec("flaky", [sys.executable, "-c", "print('up'); raise SystemExit(3)"]))

    await asyncio.wait_for(started.wake.wait(), 60)

    assert started.failure == f"flaky exited with code 3 after {launch.RESTARTS_PER_MINUTE} restarts within 60s; giving up"
    await started._stop()  # also lets the relays copy the last lines
    out = capfd.readouterr().out
    assert out.count("flaky    | up") == launch.RESTARTS_PER_MINUTE + 1
    assert out.count("[restarted") == launch.RESTARTS_PER_MINUTE
    assert "flaky    | [exited with code 3; restarting in 0s (restart 1 of at most 5 a minute)]" in out


async def test_the_relay_prefixes_whole_lines_written_in_chunks() -> None:
    stream = asyncio.StreamReader()
    sink = io.BytesIO()
    relay = asyncio.create_task(launch.relay_lines("api", stream, sink))
    stream.feed_data(b"first line\nsecond ")
    stream.feed_data(b"line\r\nthird\n" + b"x" * (launch.LINE_LIMIT + 10))
    stream.feed_data(b"\nlast without newline")
    stream.feed_eof()
    await asyncio.wait_for(relay, 10)
    lines = sink.getvalue().split(b"\n")
    assert lines[:3] == [b"api      | first line", b"api      | second line", b"api      | third"]
    assert lines[3].startswith(b"api      | xxx") and len(lines[3]) > launch.LINE_LIMIT
    assert lines[-2:] == [b"api      | last without newline", b""]
