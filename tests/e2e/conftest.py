"""Fixtures for driving ``python -m devstack.launcher`` as a real process (prefixed ``launcher_``).

Child processes are found by scanning ``/proc/*/stat`` for parent ids, because
``/proc/<pid>/task/*/children`` is missing on kernels built without CONFIG_PROC_CHILDREN.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: runs real processes (Temporal dev server, worker, gateway)")


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Wait on the process's own exit (a pidfd becomes readable when it ends), not on a poll loop."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(max(0, int(timeout * 1000))))
    finally:
        os.close(fd)


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
    """A launcher whose output a thread copies to ``log`` line by line, waking whoever waits on a line."""

    process: subprocess.Popen[bytes]
    env: dict[str, str]
    log: Path
    seen: dict[int, list[str]] = field(default_factory=dict)
    _lines: list[str] = field(default_factory=list)
    _ended: bool = False
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        threading.Thread(target=self._copy_output, daemon=True).start()

    def _copy_output(self) -> None:
        assert self.process.stdout is not None
        with self.log.open("w") as sink:
            for raw in self.process.stdout:
                line = raw.decode(errors="replace")
                sink.write(line)
                sink.flush()
                with self._changed:
                    self._lines.append(line)
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    @property
    def temporal_target(self) -> str:
        return f"127.0.0.1:{self.env['AFTERSALES_TEMPORAL_PORT']}"

    def output(self, last: int = 80) -> str:
        with self._changed:
            return "".join(self._lines[-last:])

    def wait_for_output(self, text: str, timeout: float) -> bool:
        """True once the launcher has printed ``text``; false at its exit or after ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: self._ended or any(text in line for line in self._lines), timeout)
            return any(text in line for line in self._lines)

    def healthz(self) -> dict[str, object] | None:
        url = f"http://127.0.0.1:{self.env['AFTERSALES_HTTP_PORT']}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                return json.loads(answer.read()) if answer.status == 200 else None
        except (OSError, ValueError, http.client.HTTPException):  # refused, 503, timeout, not JSON yet
            return None

    def wait_healthy(self, timeout: float = 90.0) -> None:
        # The launcher prints its banner once Temporal answers, the worker runs and the gateway
        # listens (after its migrations): from then on /healthz must be green.
        up = self.wait_for_output("aftersales is up", timeout)
        assert self.process.poll() is None, f"launcher exited with {self.process.returncode}:\n{self.output()}"
        assert up, f"no banner within {timeout:.0f}s:\n{self.output()}"
        green = {"status": "ok", "temporal": "ok", "database": "ok"}
        assert self.healthz() == green, f"/healthz not green after the banner:\n{self.output()}"

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
        deadline = time.monotonic() + timeout
        for pid in pids:
            wait_for_exit(pid, deadline - time.monotonic())
        return [pid for pid in pids if pid_alive(pid)]


@pytest.fixture
def launcher_cwd() -> Path:
    """The repository root: ``-m devstack.launcher``, ``-m worker`` and ``-m api`` resolve from there."""
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
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack.launcher"],
            cwd=launcher_cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        run = LauncherRun(process, env, tmp_path / f"launcher-{len(runs)}.log")
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


@dataclass
class AppProcess:
    """``python -m worker`` or ``python -m api`` as a real process; a thread keeps its output, line by line,
    so a test waits on a line instead of sleeping (and a full pipe never blocks the process)."""

    name: str
    process: subprocess.Popen[bytes]
    _lines: list[str] = field(default_factory=list)
    _ended: bool = False
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def __post_init__(self) -> None:
        threading.Thread(target=self._copy_output, daemon=True).start()

    def _copy_output(self) -> None:
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            with self._changed:
                self._lines.append(raw.decode(errors="replace"))
                self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def lines(self) -> list[str]:
        with self._changed:
            return list(self._lines)

    def output(self, last: int = 60) -> str:
        return "".join(self.lines()[-last:])

    def wait_for_line(self, text: str, timeout: float) -> bool:
        """True once the process has printed a line holding ``text``; false at its exit or after ``timeout``."""
        with self._changed:
            self._changed.wait_for(lambda: self._ended or any(text in line for line in self._lines), timeout)
            return any(text in line for line in self._lines)

    def wait_for_exit(self, timeout: float) -> int | None:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None


StartApp = Callable[[str, dict[str, str]], AppProcess]


@pytest.fixture
def app_processes(launcher_cwd: Path) -> Iterator[StartApp]:
    """Start ``python -m <module>`` processes with the given environment (on top of a hermetic one);
    whatever is still running at teardown is killed."""
    started: list[AppProcess] = []
    hermetic = {name: value for name, value in os.environ.items() if not name.startswith(("AFTERSALES_", "TEMPORAL_"))}

    def start(module: str, env: dict[str, str]) -> AppProcess:
        process = subprocess.Popen(
            [sys.executable, "-m", module], cwd=launcher_cwd, env={**hermetic, "PYTHONUNBUFFERED": "1", **env},
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        app = AppProcess(module, process)
        started.append(app)
        return app

    yield start
    for app in started:
        if app.process.poll() is None:
            app.process.kill()
        app.process.wait(timeout=30)
