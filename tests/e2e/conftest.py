"""Fixtures for driving ``python -m worker.launch`` as a real process (prefixed ``launcher_``).

Child processes are found by scanning ``/proc/*/stat`` for parent ids, because
``/proc/<pid>/task/*/children`` is missing on kernels built without CONFIG_PROC_CHILDREN.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

POLL_INTERVAL = 0.25


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: runs real processes (Temporal dev server, worker, gateway)")


def wait_until(predicate: Callable[[], bool], timeout: float) -> bool:
    """The one place that polls: true as soon as ``predicate`` holds, false after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL)


def pid_alive(pid: int) -> bool:
    """A zombie counts as dead: it holds no port or file, it only waits for its new parent to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state = stat.rpartition(")")[2].split()[0]
    return state not in ("Z", "X")


def argv_of(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def descendants(root: int) -> dict[int, list[str]]:
    children: dict[int, list[int]] = {}
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = stat_file.read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        # The command name may hold spaces or parentheses: fields start after the last ')'.
        ppid = int(stat.rpartition(")")[2].split()[1])
        children.setdefault(ppid, []).append(int(stat_file.parent.name))
    found: dict[int, list[str]] = {}
    pending = list(children.get(root, []))
    while pending:
        pid = pending.pop()
        found[pid] = argv_of(pid)
        pending.extend(children.get(pid, []))
    return found


def free_ports(count: int) -> list[int]:
    # All sockets are held open together so the kernel hands out distinct ports.
    sockets = [socket.socket() for _ in range(count)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


@dataclass
class LauncherRun:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path
    seen: dict[int, list[str]] = field(default_factory=dict)

    @property
    def temporal_target(self) -> str:
        return f"127.0.0.1:{self.env['AFTERSALES_TEMPORAL_PORT']}"

    def output(self, last: int = 80) -> str:
        lines = self.log.read_text(errors="replace").splitlines()
        return "\n".join(lines[-last:])

    def wait_for_output(self, text: str, timeout: float) -> bool:
        return wait_until(lambda: text in self.log.read_text(errors="replace"), timeout)

    def healthz(self) -> dict[str, object] | None:
        url = f"http://127.0.0.1:{self.env['AFTERSALES_HTTP_PORT']}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return json.loads(answer.read()) if answer.status == 200 else None
        except (OSError, ValueError, http.client.HTTPException):  # refused, 503, timeout, not JSON yet
            return None

    def wait_healthy(self, timeout: float = 90.0) -> None:
        green = {"status": "ok", "temporal": "ok", "database": "ok"}
        healthy = wait_until(lambda: self.process.poll() is not None or self.healthz() == green, timeout)
        assert self.process.poll() is None, f"launcher exited with {self.process.returncode}:\n{self.output()}"
        assert healthy, f"/healthz not green within {timeout:.0f}s (last: {self.healthz()}):\n{self.output()}"

    def parts(self) -> dict[int, list[str]]:
        """The launcher's descendants now, remembered so teardown can clean up after a failure."""
        found = descendants(self.process.pid)
        self.seen.update(found)
        return found

    def stop(self, sig: signal.Signals, timeout: float) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"launcher still running {timeout:.0f}s after {sig.name}:\n{self.output()}")

    @staticmethod
    def survivors(pids: Iterable[int], timeout: float = 0.0) -> list[int]:
        pids = list(pids)
        wait_until(lambda: not any(pid_alive(pid) for pid in pids), timeout)
        return [pid for pid in pids if pid_alive(pid)]


@pytest.fixture
def launcher_cwd() -> Path:
    """The repository root: ``-m worker.launch``, ``-m worker`` and ``-m api`` resolve from there."""
    return Path(__file__).resolve().parents[2]


@pytest.fixture
def launcher_env(tmp_path: Path) -> dict[str, str]:
    """A hermetic environment: own data dir and free ports, nothing inherited from the developer's shell."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AFTERSALES_", "TEMPORAL_"))
    }
    http_port, temporal_port, ui_port = free_ports(3)
    env.update(
        AFTERSALES_ENV="sandbox",
        AFTERSALES_DATA_DIR=str(tmp_path / "data"),
        AFTERSALES_HTTP_PORT=str(http_port),
        AFTERSALES_TEMPORAL_PORT=str(temporal_port),
        AFTERSALES_TEMPORAL_UI_PORT=str(ui_port),
    )
    return env


@pytest.fixture
def launcher_start(tmp_path: Path, launcher_cwd: Path) -> Iterator[Callable[[dict[str, str]], LauncherRun]]:
    """Start launchers; whatever a failed test leaves running is killed at teardown."""
    runs: list[LauncherRun] = []

    def start(env: dict[str, str]) -> LauncherRun:
        log = tmp_path / f"launcher-{len(runs)}.log"
        with log.open("wb") as sink:
            process = subprocess.Popen(
                [sys.executable, "-m", "worker.launch"],
                cwd=launcher_cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        run = LauncherRun(process, env, log)
        runs.append(run)
        return run

    yield start

    for run in runs:
        if run.process.poll() is None:
            run.parts()
            run.process.kill()
            run.process.wait()
        for pid, argv in run.seen.items():
            # Compare the command line so a recycled pid is never hit.
            if pid_alive(pid) and argv_of(pid) == argv:
                os.kill(pid, signal.SIGKILL)
